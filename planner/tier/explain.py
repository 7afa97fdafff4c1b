"""Explain a tier plan: which limits bind and what dropping or relaxing each saves, why not each other tier
and edge device, and for an impossible spec the minimal set of the user's limits that conflict with the
nearest value of each that makes the spec feasible.

Every answer is another `solve_tier` of the same options with a `TierQuestion` (limits dropped,
re-bounded, rows restricted); minimal sets come from deletion (drop one limit more at a time, keep it
only if the question turns feasible without it), so every reported set is minimal by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.catalog.loader import Catalog
from planner.tier.breakeven import Flip, link_price_flips, sites_flip
from planner.tier.check import item_value
from planner.tier.model import TierPlan, TierQuestion, solve_tier
from planner.tier.options import TierTable
from planner.tier.spec import TierSpec
from planner.tier.units import LimitItem

TIERS = ("edge", "cloud", "split")
BISECTION_STEPS = 14


@dataclass
class LimitPrice:
    item: LimitItem
    value: float
    tight: bool
    drop_saving: float | None  # fraction of the objective saved without this limit
    relax_to: float | None
    relax_saving: float | None

    def as_dict(self) -> dict:
        return {"id": self.item.id, "spec_path": self.item.spec_path, "limit": self.item.bound,
                "value": round(self.value, 4), "tight": self.tight, "binding": bool(self.drop_saving),
                "drop_saving": self.drop_saving, "relax": {"to": self.relax_to, "saving": self.relax_saving}}


@dataclass
class Alternative:
    workload: str
    kind: str  # tier | device
    name: str
    value: float | None  # objective of the best plan with this choice
    delta: float | None  # relative to the chosen plan
    ruled_out_by: list[str] = field(default_factory=list)
    label: str = ""
    needs: dict[str, float] = field(default_factory=dict)  # ruling limit -> what the choice reaches without limits

    def as_dict(self) -> dict:
        return {"workload": self.workload, "kind": self.kind, "name": self.name, "objective": self.value,
                "delta": self.delta, "ruled_out_by": self.ruled_out_by, "needs": self.needs, "plan": self.label}


@dataclass
class Conflict:
    items: list[LimitItem]
    nearest: dict[str, tuple[float | None, float | None]]  # item id -> (feasible value, objective there)

    def as_dict(self) -> dict:
        return {"limits": [{"id": i.id, "spec_path": i.spec_path, "limit": i.bound,
                            "nearest_feasible": self.nearest[i.id][0], "objective_there": self.nearest[i.id][1]}
                           for i in self.items]}


@dataclass
class TierExplanation:
    limits: list[LimitPrice] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)
    conflict: Conflict | None = None
    flips: list[Flip] = field(default_factory=list)
    solves: int = 0

    def as_dict(self) -> dict:
        return {"limits": [p.as_dict() for p in self.limits],
                "alternatives": [a.as_dict() for a in self.alternatives],
                "conflict": self.conflict.as_dict() if self.conflict else None,
                "flips": [f.as_dict() for f in self.flips], "explain_solves": self.solves}


class _Asker:
    def __init__(self, spec: TierSpec, table: TierTable, items: list[LimitItem]):
        self.spec, self.table, self.items, self.solves = spec, table, items, 0

    def ask(self, question: TierQuestion) -> TierPlan:
        self.solves += 1
        return solve_tier(self.spec, self.table, self.items, question)

    def ruling(self, base: TierQuestion) -> tuple[list[LimitItem], TierPlan]:
        """The limits that rule `base` out, each alone if any does (else a minimal set), with the best plan
        when every limit is dropped (what the choice would need)."""
        unlimited = self.ask(TierQuestion(frozenset(i.id for i in self.items), base.bounds, base.allowed))
        if unlimited.value is None:
            return [], unlimited
        alone = [i for i in self.items
                 if self.ask(TierQuestion(frozenset(j.id for j in self.items if j is not i), base.bounds,
                                          base.allowed)).value is None]
        return (alone or self.minimal_ruling(base, unlimited)), unlimited

    def minimal_ruling(self, base: TierQuestion, unlimited: TierPlan | None = None) -> list[LimitItem]:
        """A minimal set of limits that keeps `base` infeasible (by deletion: none of them can go); [] when
        nothing can run it even without limits (`unlimited`: that answer, when already known)."""
        dropped = set(base.dropped)
        if unlimited is None:
            unlimited = self.ask(TierQuestion(frozenset(i.id for i in self.items), base.bounds, base.allowed))
        if unlimited.value is None:
            return []
        needed = []
        for item in self.items:
            if item.id in dropped:
                continue
            trial = TierQuestion(frozenset(dropped | {item.id}), base.bounds, base.allowed)
            if self.ask(trial).value is None:
                dropped.add(item.id)
            else:
                needed.append(item)
        return needed


def relaxed_bound(item: LimitItem) -> float | None:
    kind = item.unit_id
    if kind == "tier.locality":
        return item.bound + 1 if item.bound < 2 else None
    if kind == "tier.accuracy":
        return max(0.0, item.bound - 0.01)
    if kind == "site.device_slots":
        return item.bound + 1
    return item.bound * 1.1


def _saving(base: float, other: float | None) -> float | None:
    if other is None or base <= 0:
        return None
    return max(0.0, (base - other) / base)


def explain_tier(spec: TierSpec, catalog: Catalog, table: TierTable, items: list[LimitItem], plan: TierPlan,
                 cache: dict | None = None) -> TierExplanation:
    asker = _Asker(spec, table, items)
    out = TierExplanation()
    if plan.value is None:
        core = asker.minimal_ruling(TierQuestion())
        out.conflict = Conflict(core, {i.id: _nearest(asker, core, i) for i in core})
        out.solves = asker.solves
        return out
    base = plan.value
    for item in items:
        value = item_value(item, plan.options)
        tight = abs(value - item.bound) <= 0.01 * max(abs(item.bound), 1e-9)
        dropped = asker.ask(TierQuestion(frozenset({item.id})))
        drop = _saving(base, dropped.value)
        relax_to = relax_saving = None
        if drop:
            relax_to = relaxed_bound(item)
            if relax_to is not None:
                relax_saving = _saving(base, asker.ask(TierQuestion(bounds=((item.id, relax_to),))).value)
        out.limits.append(LimitPrice(item, value, tight, drop, relax_to, relax_saving))
    for w in spec.workloads:
        chosen = plan.tier_of(w.name)
        for tier in TIERS:
            if tier == chosen or (tier == "split" and w.split is None):
                continue
            out.alternatives.append(_alternative(asker, plan, w.name, "tier", tier,
                                                 lambda o, t=tier: o.tier == t))
        edge_devices = sorted({o.device for o in table.of(w.name) if o.role in ("edge", "split-edge")})
        used = {o.device for o in plan.of(w.name)}
        for device in edge_devices:
            if device not in used:
                out.alternatives.append(_alternative(asker, plan, w.name, "device", device,
                                                     lambda o, d=device: o.role in ("edge", "split-edge")
                                                     and o.device == d))
    if spec.objective == "cost":
        out.flips = [sites_flip(spec, catalog, plan, {} if cache is None else cache)]
        out.flips += link_price_flips(spec, table, items, plan)
    out.solves = asker.solves
    return out


def _alternative(asker: _Asker, plan: TierPlan, workload: str, kind: str, name: str, keep) -> Alternative:
    """The best plan in which `workload` uses this tier or device (the others stay free)."""
    allowed = frozenset(o.index for o in asker.table.options
                        if o.workload != workload or keep(o)
                        or (kind == "device" and o.role == "split-cloud"))
    question = TierQuestion(allowed=allowed)
    best = asker.ask(question)
    if best.value is None:
        ruling, unlimited = asker.ruling(question)
        needs = {i.id: item_value(i, unlimited.options) for i in ruling} if unlimited.options else {}
        return Alternative(workload, kind, name, None, None, [i.id for i in ruling], needs=needs)
    label = "; ".join(o.label() for o in best.of(workload))
    return Alternative(workload, kind, name, best.value, (best.value - plan.value) / plan.value if plan.value else None,
                       label=label)


def _nearest(asker: _Asker, core: list[LimitItem], item: LimitItem) -> tuple[float | None, float | None]:
    """The value of this limit alone that makes the spec feasible (others unchanged), by bisection between
    the limit and what the plan without it reaches; (None, None) when dropping it alone is not enough."""
    free = asker.ask(TierQuestion(frozenset({item.id})))
    if free.value is None:
        return None, None
    reach = item_value(item, free.options)
    lo, hi = item.bound, reach
    if item.unit_id in ("tier.locality", "site.device_slots"):
        for step in range(int(lo) + 1, int(hi) + 1):
            p = asker.ask(TierQuestion(bounds=((item.id, float(step)),)))
            if p.value is not None:
                return float(step), p.value
        return hi, free.value
    best = (hi, free.value)
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        p = asker.ask(TierQuestion(bounds=((item.id, mid),)))
        if p.value is None:
            lo = mid
        else:
            hi, best = mid, (mid, p.value)
    return best
