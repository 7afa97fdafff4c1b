"""The solver-free checker of a tier plan.

It rebuilds every option from the spec and the catalogs (a fresh enumeration), finds each chosen option
by what it is (workload, role, device, mode, precision, units, region, offering), and judges every limit
item in floating point: each workload is served exactly once (or by a split's two halves), row limits on
each option, sums over the site. Nothing here reads the CP-SAT model.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.catalog.loader import Catalog
from planner.explain.question import Limit
from planner.tier.model import TierPlan
from planner.tier.options import TierOption, enumerate_options
from planner.tier.spec import TierSpec
from planner.tier.units import (
    kind_of,
    limit_items,
    pool_loads,
    row_value,
    sum_value,
    waits_ms,
)

IDENTITY = ("workload", "role", "model", "device", "mode", "precision", "units", "region")
DETAIL_IDENTITY = ("instance", "pricing", "batch", "devices_per_replica")
METRICS = ("usd_per_month", "site_power_w", "slots", "uplink_mbps", "latency_ms", "accuracy")


@dataclass(frozen=True)
class TierCheck:
    id: str
    spec_path: str
    bound: float
    value: float
    satisfied: bool
    slack: float

    def as_dict(self) -> dict:
        return {"id": self.id, "spec_path": self.spec_path, "limit": round(self.bound, 4),
                "value": round(self.value, 4), "slack": round(self.slack, 4), "satisfied": self.satisfied}


def _key(o: TierOption) -> tuple:
    return tuple(getattr(o, k) for k in IDENTITY) + tuple(o.detail.get(k) for k in DETAIL_IDENTITY)


def item_value(item: Limit, options: list[TierOption]) -> float:
    kind = kind_of(item)
    if kind == "row":
        values = [v + waits_ms(item, o, options) for o in options if (v := row_value(item, o)) is not None]
        return max(values, default=0.0)
    if kind == "pool":
        return max(pool_loads(options).values(), default=0.0)
    return sum(sum_value(item, o) for o in options)


def _shared_problems(options: list[TierOption]) -> list[str]:
    """A shared row needs its device bought, and one unit must hold every model that shares it."""
    problems = []
    pools = {o.detail["pool"]: o for o in options if o.role == "pool"}
    for label in sorted({o.detail["pool"] for o in options if o.role == "edge-shared"}):
        shared = [o for o in options if o.role == "edge-shared" and o.detail["pool"] == label]
        if label not in pools:
            problems.append(f"{', '.join(o.workload for o in shared)} share {label}, which is not bought")
            continue
        memory = sum(o.detail["memory_gb"] for o in shared)
        if memory > pools[label].detail["usable_memory_gb"] + 1e-6:
            problems.append(f"{label}: the shared models need {memory:.2f} GB, one unit holds "
                            f"{pools[label].detail['usable_memory_gb']:.2f} GB")
    return problems


def satisfied(item: Limit, value: float, bound: float) -> bool:
    tolerance = 1e-6 * max(1.0, abs(bound))
    return value >= bound - tolerance if kind_of(item) == "min-sum" else value <= bound + tolerance


def check_tier_plan(spec: TierSpec, catalog: Catalog, plan: TierPlan) -> tuple[list[TierCheck], list[str]]:
    """Every limit's verdict, and structural problems (an option that does not rebuild, a workload not
    served exactly once)."""
    problems: list[str] = []
    fresh = {_key(o): o for o in enumerate_options(spec, catalog).options}
    for o in plan.options:
        twin = fresh.get(_key(o))
        if twin is None:
            problems.append(f"{o.workload}: {o.label()} does not rebuild from the spec")
            continue
        for metric in METRICS:
            a, b = getattr(o, metric), getattr(twin, metric)
            if abs(a - b) > 1e-6 * max(1.0, abs(b)):
                problems.append(f"{o.workload}: {metric} {a} differs from the rebuilt {b}")
    for w in spec.workloads:
        roles = sorted(o.role for o in plan.of(w.name))
        if roles not in (["cloud"], ["edge"], ["edge-shared"], ["split-cloud", "split-edge"]):
            problems.append(f"{w.name}: served by {roles or 'nothing'}")
    problems += _shared_problems(plan.options)
    checks = []
    for item in limit_items(spec):
        value = item_value(item, plan.options)
        ok = satisfied(item, value, item.bound)
        slack = value - item.bound if kind_of(item) == "min-sum" else item.bound - value
        checks.append(TierCheck(item.id, item.spec_path, item.bound, value, ok, slack))
    return checks, problems
