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
from planner.simulate.engine import percentile, run_replica
from planner.simulate.trace import Request, load_trace, poisson_requests

__all__ = ["SimulationResult", "Stats", "simulate", "poisson_requests", "load_trace", "Request"]


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


def simulate(profile: ReplicaProfile, requests: list[Request], replicas: int = 1, seed: int = 0,
             trim: float = 0.1) -> SimulationResult:
    started = time.perf_counter()
    rng = random.Random(seed)
    shares: list[list[Request]] = [[] for _ in range(replicas)]
    for req in requests:
        shares[rng.randrange(replicas)].append(req)
    timings, steps, preemptions, running = [], 0, 0, 0.0
    arrivals = sorted(r.arrival_s for r in requests)
    lo = arrivals[int(trim * (len(arrivals) - 1))]
    hi = arrivals[int((1 - trim) * (len(arrivals) - 1))]
    for index, share in enumerate(shares):
        if not share:
            continue
        run = run_replica(profile, share, seed=seed * 1009 + index)
        timings += run.timings
        steps += run.steps
        preemptions += run.preemptions
        running += run.running_time_sum / run.end_s if run.end_s > 0 else 0.0
    kept = [t for t in timings if lo <= t.arrival_s <= hi] or timings
    span = max(hi - lo, 1e-9)
    tokens = sum(t.output_tokens for t in kept)
    multi = [t for t in kept if t.output_tokens > 1] or kept
    return SimulationResult(
        ttft_ms=Stats.of([t.ttft_s for t in kept]), tpot_ms=Stats.of([t.tpot_s for t in multi]),
        e2e_ms=Stats.of([t.e2e_s for t in kept]), tokens_per_s=tokens / span if hi > lo else 0.0,
        makespan_s=max((t.arrival_s + t.e2e_s for t in timings), default=0.0) - (arrivals[0] if arrivals else 0.0),
        requests=len(requests), measured=len(kept), replicas=replicas, mean_running_batch=running / replicas,
        preemptions=preemptions, steps=steps, wall_s=time.perf_counter() - started)
