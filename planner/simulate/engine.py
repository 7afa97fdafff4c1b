"""An iteration-level discrete-event simulation of one continuous-batching engine replica.

Each iteration the engine builds a batch the way its scheduler does (catalogs/engines.yaml):
- mixed engines (vLLM V1, TensorRT-LLM): every running sequence in decode gets one token; the rest of the
  step's token budget goes to prompts, running ones first then newly admitted, in arrival order, in
  chunks (or whole prompts when the engine does not chunk);
- prefill-first engines (SGLang): when prompts wait and a slot is free, the step is a prefill batch of up
  to the budget in prompt tokens; otherwise it is a decode step.
Admission stops at the batch cap (max_num_seqs) and at the KV cache: paged engines admit while the tokens
held fit and preempt the newest sequence (recompute) when decoding outgrows the cache; reserve-max engines
admit only when a sequence's whole input + output fits.

The step's duration is `StepCost.seconds`, the same function the closed form reads; a request's first
token comes at the end of the step that finishes its prompt, the others one per step after, or with
speculative decoding 1 + the drafts accepted, each accepted with the workload's rate given the ones before
it were (drawn from the seeded generator).

Prefix caching: a request starts with its cached prompt tokens already in the cache and prefills the rest,
attending over them; a prefix every request shares is held once, so a sequence's own KV leaves it out.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

from planner.perf.serving import ReplicaProfile
from planner.simulate.trace import Request


@dataclass
class _Seq:
    req: Request
    index: int
    prefilled: int = 0
    generated: int = 0
    first_token_s: float | None = None
    first_step_s: float = 0.0  # duration of the step that produced the first token
    target: int = 0  # tokens to prefill: the prompt, or after a preemption everything held (recompute)

    def __post_init__(self) -> None:
        self.target = self.target or self.req.input_tokens

    @property
    def held(self) -> int:
        """KV tokens in the cache: what is prefilled, plus the tokens generated since."""
        done = self.prefilled >= self.target
        return self.prefilled + (self.generated - (self.target - self.req.input_tokens) if done else 0)


@dataclass
class RequestTiming:
    arrival_s: float
    ttft_s: float
    e2e_s: float
    output_tokens: int
    first_step_s: float = 0.0
    request: Request | None = None

    @property
    def tpot_s(self) -> float:
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1) if self.output_tokens > 1 else 0.0


@dataclass
class ReplicaRun:
    timings: list[RequestTiming] = field(default_factory=list)
    steps: int = 0
    busy_s: float = 0.0
    end_s: float = 0.0
    running_time_sum: float = 0.0  # integral of decoding sequences over time
    preemptions: int = 0


def run_replica(profile: ReplicaProfile, requests: list[Request], max_steps: int = 5_000_000,
                seed: int = 0) -> ReplicaRun:
    """Simulate `requests` (sorted by arrival) on one replica configured as `profile`."""
    eng = profile.engine
    cost = profile.cost
    cap = max(1, profile.slots)
    kv_capacity = profile.kv_capacity_tokens
    overhead = eng.request_overhead_s
    features = profile.features
    spec = features.speculation
    rng = random.Random(seed)

    def cached(req: Request) -> int:
        return max(0, min(features.cached_tokens, req.input_tokens - 1))

    def shared(s: _Seq) -> int:
        return min(features.shared_prefix_tokens, cached(s.req))

    def gained() -> int:
        """Tokens one verification step yields a sequence: 1, plus the drafts accepted in a row."""
        if spec is None:
            return 1
        accepted = 0
        while accepted < spec.draft_tokens and rng.random() < spec.acceptance_rate:
            accepted += 1
        return 1 + accepted

    pending = deque(sorted(requests, key=lambda r: r.arrival_s))
    waiting: deque[_Seq] = deque()
    running: list[_Seq] = []
    run = ReplicaRun()
    now = 0.0
    counter = 0

    def reserved(s: _Seq) -> int:
        if eng.kv_admission == "reserve_max":
            return s.req.input_tokens + s.req.output_tokens - shared(s)
        return max(s.held, s.target) - shared(s)

    while (pending or waiting or running) and run.steps < max_steps:
        while pending and pending[0].arrival_s + overhead <= now:
            req = pending.popleft()
            waiting.append(_Seq(req, counter, prefilled=cached(req)))
            counter += 1
        if not waiting and not running:
            now = pending[0].arrival_s + overhead
            continue
        # Without chunked prefill the budget is raised to hold a whole prompt: the longest still to be prefilled,
        # admitted or waiting (an admitted prompt left out would wait for the next arrival to be prefilled).
        unprefilled = (s.req.input_tokens for s in (*waiting, *running) if s.prefilled < s.target)
        budget = eng.step_budget(max(unprefilled, default=1), cap) * cost.schedulers

        # Admission: slots and KV cache (paged: the prompt must fit now; reserve-max: input + output).
        in_use = sum(reserved(s) for s in running)
        while waiting and len(running) < cap:
            s = waiting[0]
            # A preempted sequence comes back needing everything it held (recompute), not just its prompt.
            need = reserved(s) if eng.kv_admission == "reserve_max" else s.target - shared(s)
            if in_use + need > kv_capacity and running:
                break
            waiting.popleft()
            running.append(s)
            in_use += need

        decoding = [s for s in running if s.prefilled >= s.target]
        prefilling = [s for s in running if s.prefilled < s.target]
        chunks: list[tuple[_Seq, int]] = []
        if eng.mixed_prefill or not prefilling:
            room = budget - (len(decoding) * cost.decode_tokens_per_seq if eng.mixed_prefill else 0)
        else:
            decoding, room = [], budget  # a prefill-only step pauses decoding
        for s in prefilling:
            if room <= 0:
                break
            remaining = s.target - s.prefilled
            take = int(min(remaining, room)) if eng.chunked_prefill else (remaining if remaining <= room else 0)
            if take <= 0:
                break
            chunks.append((s, take))
            room -= take
        if not decoding and not chunks:
            if pending:
                now = max(now, pending[0].arrival_s + overhead)
                continue
            break  # nothing can make progress (a prompt larger than the budget without chunking)

        context = sum(s.req.input_tokens + s.generated for s in decoding)
        prefill_tokens = sum(t for _, t in chunks)
        pairs = sum(t * (s.prefilled + t / 2.0) for s, t in chunks)
        dt = cost.seconds(len(decoding), context, prefill_tokens, pairs)
        now += dt
        run.steps += 1
        run.busy_s += dt
        run.running_time_sum += len(decoding) * dt

        finished: list[_Seq] = []
        for s in decoding:
            s.generated = min(s.req.output_tokens, s.generated + gained())
            if s.generated >= s.req.output_tokens:
                finished.append(s)
        for s, t in chunks:
            s.prefilled += t
            if s.prefilled >= s.target and s.first_token_s is None:
                s.first_token_s = now
                s.first_step_s = dt
                s.generated = 1
                if s.generated >= s.req.output_tokens:
                    finished.append(s)
        for s in finished:
            running.remove(s)
            run.timings.append(RequestTiming(s.req.arrival_s, s.first_token_s - s.req.arrival_s,
                                             now - s.req.arrival_s, s.req.output_tokens, s.first_step_s, s.req))
        if eng.kv_admission == "paged":
            # Decoding grew the cache: preempt the newest sequences until it fits (vLLM recompute).
            held = sum(s.held - shared(s) for s in running)
            while held > kv_capacity and len(running) > 1:
                victim = max(running, key=lambda x: x.index)
                running.remove(victim)
                held -= victim.held - shared(victim)
                # Its prompt's cached prefix stays in the cache; the rest is recomputed.
                victim.target, victim.prefilled = victim.req.input_tokens + victim.generated, cached(victim.req)
                waiting.appendleft(victim)
                run.preemptions += 1
    run.end_s = now
    return run


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
