"""Check the closed-form serving model by simulation: `simulate(profile, requests, replicas)`.

Requests are dispatched to replicas at random (each replica then sees a Poisson stream at its share of
the rate, the closed form's assumption) and each replica is simulated iteration by iteration
(`planner.simulate.engine`). Statistics cover the requests that arrive between the first and the last
tenth of the trace, so start-up and drain do not bias the steady state.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass

from planner.perf.serving import ReplicaProfile
from planner.simulate.engine import RequestTiming, percentile, run_replica
from planner.simulate.trace import Request, load_trace, poisson_requests

__all__ = ["SimulationResult", "Stats", "simulate", "simulate_pools", "poisson_requests", "load_trace", "Request"]


@dataclass(frozen=True)
class Stats:
    mean: float
    p50: float
    p90: float
    p99: float

    @classmethod
    def of(cls, values_s: list[float]) -> "Stats":
        ms = [v * 1000 for v in values_s]
        return cls(statistics.fmean(ms), percentile(ms, 0.5), percentile(ms, 0.9), percentile(ms, 0.99))

    def as_dict(self) -> dict:
        return {k: round(v, 3) for k, v in (("mean", self.mean), ("p50", self.p50), ("p90", self.p90),
                                            ("p99", self.p99))}


@dataclass(frozen=True)
class SimulationResult:
    ttft_ms: Stats
    tpot_ms: Stats
    e2e_ms: Stats
    tokens_per_s: float  # output tokens per second, all replicas, over the measured arrivals
    makespan_s: float  # first arrival to last completion: the duration a finite benchmark run divides by
    requests: int
    measured: int
    replicas: int
    mean_running_batch: float  # per replica, while measured
    preemptions: int
    steps: int
    wall_s: float

    def as_dict(self) -> dict:
        return {"ttft_ms": self.ttft_ms.as_dict(), "tpot_ms": self.tpot_ms.as_dict(), "e2e_ms": self.e2e_ms.as_dict(),
                "tokens_per_s": round(self.tokens_per_s, 3), "makespan_s": round(self.makespan_s, 3),
                "requests": self.requests,
                "measured_requests": self.measured, "replicas": self.replicas,
                "mean_running_batch": round(self.mean_running_batch, 3), "preemptions": self.preemptions,
                "steps": self.steps}  # no wall-clock time: the same input gives the same JSON


@dataclass
class _PoolRun:
    timings: list[RequestTiming]
    steps: int = 0
    preemptions: int = 0
    running: float = 0.0  # sum over replicas of each one's mean running batch


def _dispatch(profile: ReplicaProfile, requests: list[Request], replicas: int, seed: int) -> _PoolRun:
    rng = random.Random(seed)
    shares: list[list[Request]] = [[] for _ in range(replicas)]
    for req in requests:
        shares[rng.randrange(replicas)].append(req)
    out = _PoolRun([])
    for index, share in enumerate(shares):
        if not share:
            continue
        run = run_replica(profile, share, seed=seed * 1009 + index)
        out.timings += run.timings
        out.steps += run.steps
        out.preemptions += run.preemptions
        out.running += run.running_time_sum / run.end_s if run.end_s > 0 else 0.0
    return out


def simulate(profile: ReplicaProfile, requests: list[Request], replicas: int = 1, seed: int = 0,
             trim: float = 0.1) -> SimulationResult:
    started = time.perf_counter()
    run = _dispatch(profile, requests, replicas, seed)
    return _result(requests, run.timings, run, replicas, started, trim)


def simulate_pools(prefill: ReplicaProfile, transfer_s: float, decode: ReplicaProfile, requests: list[Request],
                   prefill_replicas: int, decode_replicas: int, seed: int = 0, trim: float = 0.1) -> SimulationResult:
    """A disaggregated plan: each request is prefilled on a prefill replica (its first token ends the prompt's step
    there), its KV cache arrives at a decode replica `transfer_s` later, and the decode replica, whose prompts
    arrive cached, produces every output token (the first too, unless the prefill side sent it). Its TTFT and end-to-end times run from the arrival at the
    prefill pool; the running batch reported is the decode pool's."""
    started = time.perf_counter()
    first = [Request(r.arrival_s, r.input_tokens, 1) for r in requests]
    index = {id(q): i for i, q in enumerate(first)}
    prefilled = _dispatch(prefill, first, prefill_replicas, seed)
    handed = {}
    for t in prefilled.timings:
        origin = requests[index[id(t.request)]]
        ready = t.ttft_s + transfer_s
        handed[id(origin)] = (origin, ready)
    second = [Request(origin.arrival_s + ready, origin.input_tokens, origin.output_tokens)
              for origin, ready in handed.values()]
    back = {id(q): handed_item for q, handed_item in zip(second, handed.values())}
    decoded = _dispatch(decode, second, decode_replicas, seed + 1)
    timings = []
    # Where the prefill side sampled the first token, it streams as soon as the decode side takes the request in.
    own_step = 0.0 if decode.features.first_token_sent else 1.0
    for t in decoded.timings:
        origin, ready = back[id(t.request)]
        first = ready + t.ttft_s - (1.0 - own_step) * t.first_step_s
        timings.append(RequestTiming(origin.arrival_s, first, ready + t.e2e_s, t.output_tokens, t.first_step_s, origin))
    run = _PoolRun(timings, prefilled.steps + decoded.steps, prefilled.preemptions + decoded.preemptions,
                   decoded.running)
    return _result(requests, timings, run, decode_replicas, started, trim)


def _result(requests: list[Request], timings: list[RequestTiming], run: _PoolRun, replicas: int, started: float,
            trim: float) -> SimulationResult:
    arrivals = sorted(r.arrival_s for r in requests)
    lo = arrivals[int(trim * (len(arrivals) - 1))]
    hi = arrivals[int((1 - trim) * (len(arrivals) - 1))]
    kept = [t for t in timings if lo <= t.arrival_s <= hi] or timings
    span = max(hi - lo, 1e-9)
    tokens = sum(t.output_tokens for t in kept)
    multi = [t for t in kept if t.output_tokens > 1] or kept
    return SimulationResult(
        ttft_ms=Stats.of([t.ttft_s for t in kept]), tpot_ms=Stats.of([t.tpot_s for t in multi]),
        e2e_ms=Stats.of([t.e2e_s for t in kept]), tokens_per_s=tokens / span if hi > lo else 0.0,
        makespan_s=max((t.arrival_s + t.e2e_s for t in timings), default=0.0) - (arrivals[0] if arrivals else 0.0),
        requests=len(requests), measured=len(kept), replicas=replicas, mean_running_batch=run.running / replicas,
        preemptions=run.preemptions, steps=run.steps, wall_s=time.perf_counter() - started)
