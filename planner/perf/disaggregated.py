"""Disaggregated serving: a prefill pool and a decode pool, the prompt's KV cache moved between them.

A request is prefilled on a prefill replica, its KV cache sent over the network to a decode replica, which
produces every output token (vLLM's NixlConnector and SGLang's PD mode both stream the reply from the decode
side). So, for one request:

    TTFT = prefill pool's wait + the prompt's prefill + KV transfer + decode pool's wait for a slot + one step
           (no step where the prefill side samples the first token and sends it with the cache: SGLang,
           TensorRT-LLM)
    TPOT = the decode pool's step, with no prompt tokens in it: what disaggregation buys
    E2E  = the prefill side's TTFT + the decode side's whole life

Prefill pool (`PrefillProfile`): steps carry whole or chunked prompts up to the engine's token budget, no
decoding sequences. At a rate lambda, a step carries the prompts that arrived during the one before
(E[N | N >= 1], a fixed point, since the step's length depends on what it carries), each prompt takes
s = prompt tokens x step time / step tokens of GPU time, and utilisation is lambda x s. The wait is the residual
of the step under way or the M/D/1 queue for prompt work, whichever is longer, with an exponential tail beyond
an atom at zero (as the aggregated model's prompts, `perf.serving`).

KV transfer (all of it after the prefill, as vLLM's NixlConnector; or, where the engine sends each chunk's
cache after its forward, as SGLang, only the last chunk's after the prefill): each prefill rank sends its shard of the prompt's cache (GQA heads split over TP, a latent cache
whole on every rank) to the decode pool on another node, over the scale-out fabric (one rank's share of the NICs
each, in parallel: NIXL and Mooncake move it by RDMA) or, inside a rack-scale NVLink domain, over NVLink. It is charged after the prefill, not overlapped
layer by layer, which is how vLLM's NixlConnector sends it (once the request finishes prefill); pools placed
inside one node would use NVLink and be faster.

Decode pool: the aggregated replica model (`perf.serving.ReplicaProfile`) with every prompt token arriving
cached (`ServingFeatures.kv_transferred`): no prefill work, each sequence holding its prompt and half its
output.

The two sides' latencies add per request, which a per-row rate cannot express; the solver splits each
cross-pool limit at a share the spec's split groups fix (`split_options`), and the checker judges the sums.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

from planner.catalog.schema import Accelerator, DeviceFamily, System
from planner.catalog.topology import group_link, scaleup_domain
from planner.perf.comm import p2p_s
from planner.perf.serving import (
    EngineParams,
    Latencies,
    ReplicaProfile,
    ServingFeatures,
    _cap_free_parts,
    kv_bytes_per_token_per_device,
    replica_profile,
)
from planner.perf.shapes import LLMFootprint
from planner.perf.types import MemoryBreakdown, Parallel, Prediction

# Shares of a cross-pool latency limit the decode side may take: of TTFT (its slot wait and first step), and of
# the end-to-end p99 (its whole life). Two shares each: a split group is one of each; the solver picks the group.
TTFT_DECODE_SHARES = (0.1, 0.3)
E2E_DECODE_SHARES = (0.7, 0.9)


@dataclass(frozen=True)
class Split:
    """The shares of the TTFT and end-to-end limits the decode side of a prefill/decode pair may use."""

    ttft_decode: float = 0.0
    e2e_decode: float = 0.0

    def share(self, role: str, metric: str) -> float:
        decode = self.e2e_decode if metric.startswith("e2e") else self.ttft_decode
        return decode if role == "decode" else 1.0 - decode


def split_options(has_ttft: bool, has_e2e: bool) -> list[Split]:
    """The split groups a spec's limits need (one when no limit spans both pools)."""
    ttft = TTFT_DECODE_SHARES if has_ttft else (0.0,)
    e2e = E2E_DECODE_SHARES if has_e2e else (0.0,)
    return [Split(t, e) for t in ttft for e in e2e]


def kv_transfer_s(fp: LLMFootprint, precision: str, par: Parallel, engine: EngineParams, system: System,
                  input_tokens: int, efficiency: float) -> float | None:
    """Seconds to move one prompt's KV cache from a prefill replica to a decode replica over the scale-out
    fabric; None when the catalog cannot route it (see `pools_apart_problem`)."""
    if pools_apart_problem(system) is not None:
        return None
    per_device = kv_bytes_per_token_per_device(fp, precision, par, engine) * fp.kv_share(input_tokens) * input_tokens
    # The pools sit on different nodes: the path to the next node's device is NVLink inside a rack-scale domain
    # (GB200 NVL72), the scale-out fabric elsewhere.
    link = group_link(system, 2, stride=system.devices_per_node)
    return p2p_s(link, per_device, efficiency)


def pools_apart_problem(system: System) -> str | None:
    """Why the catalog cannot place a prefill and a decode pool of this system on different nodes, if it cannot."""
    if system.scaleout is None and scaleup_domain(system) <= system.devices_per_node:
        return f"{system.id} has no scale-out network in the catalog to send the KV cache between pools"
    if system.scaleup.link_gb_per_s is None:
        return f"{system.id}: its scale-up bandwidth is not in the catalog, so its topology cannot be routed"
    return None


def pool_vendor_problem(engine, device: Accelerator) -> str | None:
    """Why the engine's KV connector is not planned on this device's memory, if it is not (catalogs/engines.yaml)."""
    if device.vendor in engine.disaggregated_vendors:
        return None
    return (f"{engine.name} {engine.version}'s KV connector is planned on "
            f"{', '.join(engine.disaggregated_vendors) or 'no'} devices, not {device.vendor}'s")


@dataclass(frozen=True)
class PrefillProfile:
    """One replica of the prefill pool: what it does independent of the load."""

    cost: object  # perf.serving.StepCost
    engine: EngineParams
    input_tokens: int
    cached_tokens: int
    transfer_s: float
    memory: MemoryBreakdown
    capacity_bytes: float
    budget: float  # tokens a step carries at most (the engine's budget, or what the KV cache holds)
    prefill_s: float  # one prompt alone on an idle replica, before its transfer

    @cached_property
    def prefill_tokens(self) -> int:
        return self.input_tokens - self.cached_tokens

    def step_s(self, tokens: float) -> float:
        """A step of `tokens` prompt tokens, each attending over the cached prefix and half its prompt."""
        return self.cost.seconds(0.0, 0.0, tokens, tokens * (self.cached_tokens + self.prefill_tokens / 2.0))

    def per_prompt_s(self, tokens: float) -> float:
        return self.prefill_tokens * self.step_s(tokens) / tokens

    @cached_property
    def saturation_rate(self) -> float:
        """Prompts per second with every step full."""
        return 1.0 / self.per_prompt_s(self.budget)

    @property
    def service_s(self) -> float:
        return 1.0 / self.saturation_rate

    @cached_property
    def _first_chunk(self) -> float:
        return float(min(self.prefill_tokens, self.budget))

    def rate_at_chunk(self, chunk: float) -> float:
        """The rate at which a step carries `chunk` prompt tokens: the prompts that arrived during the step before,
        given one, are E[N | N >= 1] = m / (1 - e^-m) for N ~ Poisson(m = rate x step), so m inverts that at
        chunk / prompt tokens (Newton's method; the mean grows from 1 as 1 + m/2)."""
        prompts = chunk / self.prefill_tokens
        if prompts <= 1.0:
            return 0.0
        m = 2.0 * (prompts - 1.0) if prompts < 2.0 else prompts
        for _ in range(30):
            e = math.exp(-m)
            g = m / (1.0 - e) - prompts
            slope = (1.0 - e - m * e) / (1.0 - e) ** 2
            step = g / slope
            m = max(m - step, m / 10)
            if abs(step) <= 1e-10 * m:
                break
        return m / self.step_s(chunk)

    @cached_property
    def _full_from(self) -> float:
        """The rate from which every step is full (carries the budget)."""
        return self.rate_at_chunk(self.budget) if self._first_chunk < self.budget else 0.0

    def chunk_at(self, lam: float) -> float:
        """Prompt tokens a step carries at `lam` prompts/s (the chunk whose rate is `lam`, by bisection)."""
        if lam >= self._full_from:
            return float(self.budget)
        lo, hi = self._first_chunk, float(self.budget)
        if lam <= self.rate_at_chunk(lo):
            return lo
        while hi - lo > 1e-4 * hi:
            mid = (lo + hi) / 2
            if self.rate_at_chunk(mid) < lam:
                lo = mid
            else:
                hi = mid
        return lo

    def at_rate(self, lam: float, chunk: float | None = None) -> Latencies:
        """Latencies of the prefill side at `lam` prompts/s (`chunk`: the tokens its steps carry, when known);
        TTFT includes the KV transfer."""
        if lam >= self.saturation_rate:
            return Latencies.overloaded(lam / self.saturation_rate, 0.0)
        if chunk is None:
            chunk = self.chunk_at(lam) if lam > 0 else self._first_chunk
        t = self.step_s(chunk)
        s = self.prefill_tokens * t / chunk
        rho = min(lam * s, 0.999999)
        steps = math.ceil(self.prefill_tokens / self.budget)
        # A prompt longer than the budget takes full steps and then its remainder.
        own = t if steps == 1 else ((steps - 1) * self.step_s(self.budget)
                                    + self.step_s(self.prefill_tokens - (steps - 1) * self.budget))
        residual_mean = rho * t / 2.0
        queue_mean = rho * s / (2.0 * (1.0 - rho))
        fixed = self.engine.request_overhead_s + own + self.transfer_s

        def quantile(q: float) -> float:
            tail = 1.0 - q
            residual = t * (1.0 - tail / rho) if rho > tail else 0.0
            queued = queue_mean / rho * math.log(rho / tail) if rho > tail and queue_mean > 0 else 0.0
            return fixed + max(residual, queued)

        mean = fixed + max(residual_mean, queue_mean)
        p99 = quantile(0.99)
        return Latencies(utilization=lam * s, running_batch=chunk / self.prefill_tokens, ttft_mean_s=mean,
                         ttft_p50_s=quantile(0.5), ttft_p90_s=quantile(0.9), ttft_p99_s=p99, tpot_s=0.0,
                         tpot_p99_s=0.0, e2e_mean_s=mean, e2e_p99_s=p99, queueing_p99_s=p99 - fixed,
                         tokens_per_s=0.0)

    def max_rate(self, metric: str, limit: float) -> float:
        """The highest rate within `limit` on `metric` (every metric grows with the rate). Below the rate where
        steps fill, the search runs over the chunk (one step cost per trial); beyond it, over the rate with full
        steps (none)."""
        def value(lam: float, chunk: float | None = None) -> float:
            return getattr(self.at_rate(lam, chunk), metric)

        if value(0.0) > limit:
            return 0.0
        top = self.saturation_rate
        full = self._full_from
        if value(full, float(self.budget)) <= limit:
            lo, hi = full, top
            while hi - lo > 1e-5 * top:  # the solver's demand is in units of 1e-4
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if value(mid, float(self.budget)) <= limit else (lo, mid)
            return lo
        lo, hi = self._first_chunk, float(self.budget)
        while hi - lo > 1e-5 * hi:
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if value(self.rate_at_chunk(mid), mid) <= limit else (lo, mid)
        return self.rate_at_chunk(lo)


def prefill_profile(fp: LLMFootprint, *, input_tokens: int, par: Parallel, precision: str, device: Accelerator,
                    family: DeviceFamily, system: System, engine: EngineParams,
                    features: ServingFeatures) -> PrefillProfile | None:
    """A prefill-pool replica, or None when the weights leave no room for one prompt's KV cache or the system
    has no network to send it over."""
    features = features.in_blocks(engine.kv_block_tokens)
    transfer = kv_transfer_s(fp, precision, par, engine, system, input_tokens, family.collective_bw_efficiency.value)
    if transfer is None:
        return None
    cost, weights, kv_tok_dev, framework, kv_tokens, held, _, prefill_alone, _ = _cap_free_parts(
        fp, input_tokens, 1, par, precision, device, family, system, engine, replace(features, speculation=None))
    # A prompt's cache stays until it is sent: the KV room must hold a step's prompts and those in flight.
    budget = min(cost.budget, kv_tokens / 2.0)
    if budget < 1 or kv_tokens < held:
        return None
    if engine.kv_sent_per_chunk:
        # Each chunk's cache leaves after its forward, behind the next chunk's: only the last chunk's follows.
        new_tokens = input_tokens - features.cached_tokens
        last = new_tokens - (math.ceil(new_tokens / budget) - 1) * budget
        transfer *= last / new_tokens
    in_use = min(kv_tokens, 2.0 * budget) * kv_tok_dev
    return PrefillProfile(cost=cost, engine=engine, input_tokens=input_tokens, cached_tokens=features.cached_tokens,
                          transfer_s=transfer, memory=MemoryBreakdown(weights=weights, kv_cache=in_use,
                                                                      framework=framework),
                          capacity_bytes=device.memory_bytes, budget=budget, prefill_s=prefill_alone)


def decode_profile(fp: LLMFootprint, *, input_tokens: int, output_tokens: int, par: Parallel, precision: str,
                   device: Accelerator, family: DeviceFamily, system: System, engine: EngineParams,
                   features: ServingFeatures, shared_states: dict | None = None) -> ReplicaProfile:
    """A decode-pool replica: the aggregated replica with every prompt's cache arriving from the prefill pool."""
    arrived = replace(features, cached_tokens=input_tokens, kv_transferred=True,
                      first_token_sent=engine.first_token_on_prefill)
    return replica_profile(fp, input_tokens=input_tokens, output_tokens=output_tokens, par=par, precision=precision,
                           device=device, family=family, system=system, engine=engine, shared_states=shared_states,
                           features=arrived)


def prefill_prediction(profile: PrefillProfile, requests_per_s: float, par: Parallel,
                       slo_limits: dict[str, float] | None = None) -> Prediction:
    """The prefill pool's replicas offered `requests_per_s` in all. Its TTFT is the prefill side's (with the KV
    transfer); TPOT is the decode pool's, so it is left out here. `slo_limits`: the TTFT limits (s) the
    highest per-replica rate is found within."""
    lat = profile.at_rate(requests_per_s / par.dp)
    limits = {m: v for m, v in (slo_limits or {}).items() if m.startswith("ttft") or m == "utilization"}
    pred = Prediction(
        kind="serving", devices=par.devices, memory=profile.memory, memory_capacity_bytes=profile.capacity_bytes,
        breakdown={"prefill": profile.prefill_s, "kv_transfer": profile.transfer_s,
                   "request_overhead": profile.engine.request_overhead_s, "queueing_p99": lat.queueing_p99_s},
        ttft_p99_s=lat.ttft_p99_s, ttft_mean_s=lat.ttft_mean_s, ttft_p50_s=lat.ttft_p50_s, ttft_p90_s=lat.ttft_p90_s,
        e2e_p99_s=lat.e2e_p99_s, e2e_mean_s=lat.e2e_mean_s, prefill_s=profile.prefill_s, utilization=lat.utilization,
        running_batch=lat.running_batch,
        max_requests_per_s=min([profile.saturation_rate] + [profile.max_rate(m, v) for m, v in limits.items()]),
        engine=profile.engine.id, cached_prompt_tokens=profile.cached_tokens, tokens_per_s=0.0)
    if lat.utilization >= 1.0:
        pred.notes.append(f"overloaded: each prefill replica would need {lat.utilization:.2f}x its capacity")
    return pred
