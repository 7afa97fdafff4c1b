"""A plan: what to run, as one or more parts (a part = one configuration and how much of the load it takes).

Plans are built by re-evaluating the chosen rows with the performance model, never from the solver's
fixed-point numbers, so every figure in a report has its units and full precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.evaluate import Evaluation

# Metrics that add up across the parts of a mixed fleet; every other metric is per part.
ADDITIVE = ("devices", "nodes", "power_kw", "usd_per_hour", "energy_kwh_per_hour", "carbon_kg_per_hour",
            "usd_per_job", "energy_kwh_per_job", "carbon_kg_per_job", "tokens_per_s")


@dataclass
class PlanPart:
    evaluation: Evaluation
    replicas: int | None  # serving/vision; None for training
    load_share: float = 1.0  # fraction of the demand this part serves


@dataclass
class Plan:
    parts: list[PlanPart]
    totals: dict[str, float | None] = field(default_factory=dict)

    @classmethod
    def of(cls, parts: list[PlanPart]) -> "Plan":
        totals: dict[str, float | None] = {}
        for key in ADDITIVE:
            values = [p.evaluation.metrics.get(key) for p in parts]
            totals[key] = None if any(v is None for v in values) else sum(values)
        return cls(parts=parts, totals=totals)

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
