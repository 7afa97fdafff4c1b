"""A plan: what to run, as one or more parts (a part = one configuration and how much of the load it takes).

Plans are built by re-evaluating the chosen rows with the performance model, never from the solver's
fixed-point numbers, so every figure in a report has its units and full precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.evaluate import Evaluation

# A request of a disaggregated plan crosses both pools: its latencies add the prefill side's (to the first token,
# with the KV transfer) and the decode side's (the wait for a slot and its steps). What each pool alone sees is
# kept as pool_*.
POOL_LATENCIES = ("ttft_mean_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms", "e2e_mean_ms", "e2e_p99_ms")
DECODE_ONLY = ("tpot_ms", "tpot_mean_ms", "tpot_p99_ms")

# Metrics that add up across the parts of a mixed fleet; every other metric is per part.
ADDITIVE = ("devices", "nodes", "power_kw", "usd_per_hour", "energy_kwh_per_hour", "carbon_kg_per_hour",
            "usd_per_job", "energy_kwh_per_job", "carbon_kg_per_job", "tokens_per_s")


@dataclass
class PlanPart:
    evaluation: Evaluation
    replicas: int | None  # serving/vision; None for training
    load_share: float = 1.0  # fraction of the demand this part serves


def _request_latencies(parts: list[PlanPart]) -> None:
    """Give every pool part of a disaggregated plan the request's latencies: the slowest prefill pool's TTFT plus
    the slowest decode pool's wait and steps (quantiles added, which bounds the quantile of the sum)."""
    pools = {role: [p.evaluation.metrics for p in parts if p.evaluation.candidate.role == role]
             for role in ("prefill", "decode")}
    if not pools["prefill"] or not pools["decode"]:
        return
    for metrics in pools["prefill"] + pools["decode"]:
        for key in POOL_LATENCIES:
            metrics.setdefault(f"pool_{key}", metrics.get(key))

    def worst(role: str, key: str) -> float | None:
        values = [m.get(key) for m in pools[role]]
        return None if any(v is None for v in values) else max(values)

    request = {}
    for key in POOL_LATENCIES:
        first = worst("prefill", "pool_" + key.replace("e2e", "ttft"))
        rest = worst("decode", "pool_" + key)
        request[key] = None if first is None or rest is None else first + rest
    for key in DECODE_ONLY:
        request[key] = worst("decode", key)
    for metrics in pools["prefill"] + pools["decode"]:
        metrics.update(request)


@dataclass
class Plan:
    parts: list[PlanPart]
    totals: dict[str, float | None] = field(default_factory=dict)

    @classmethod
    def of(cls, parts: list[PlanPart]) -> "Plan":
        _request_latencies(parts)
        totals: dict[str, float | None] = {}
        for key in ADDITIVE:
            values = [p.evaluation.metrics.get(key) for p in parts]
            totals[key] = None if any(v is None for v in values) else sum(values)
        return cls(parts=parts, totals=totals)

    @property
    def disaggregated(self) -> bool:
        return any(p.evaluation.candidate.role != "both" for p in self.parts)

    @property
    def main(self) -> PlanPart:
        return max(self.parts, key=lambda p: (p.load_share, -p.evaluation.candidate.devices))

    def worst(self, metric: str) -> float | None:
        values = [p.evaluation.metrics.get(metric) for p in self.parts]
        return None if any(v is None for v in values) else max(values)

    def metric(self, name: str) -> float | None:
        return self.totals[name] if name in self.totals else self.worst(name)

    def devices_of(self, device: str) -> int:
        return sum(p.evaluation.candidate.devices for p in self.parts if p.evaluation.candidate.device == device)

    def signature(self) -> tuple:
        return tuple(sorted((p.evaluation.candidate.label(), p.replicas or 0) for p in self.parts))
