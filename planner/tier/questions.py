"""A tier plan as a what-if model for the explainer (`planner.explain`): every question is another
`solve_tier` of the same options (limits dropped, re-bounded, options restricted), and two parameters
the tier decision can flip on: the number of sites (cloud fleets are shared, edge boxes are not) and the
metered price of each upstream link (cloud and split options pay it per GB sent).

A site count re-enumerates the options (the cloud candidate tables are cached, only the load changes); a
link price only shifts the transfer cost of the options routed over that link, so those questions reuse
the option table.
"""

from __future__ import annotations

from dataclasses import replace

from planner.catalog.loader import Catalog
from planner.explain.question import (
    Answer,
    Choice,
    Limit,
    Parameter,
    Question,
    Questions,
)
from planner.tier.check import item_value
from planner.tier.model import TierPlan, solve_tier
from planner.tier.options import TierTable, enumerate_options
from planner.tier.spec import TierSpec
from planner.tier.units import limit_items

TIERS = ("edge", "cloud", "split")
EDGE_ROLES = ("edge", "edge-shared", "split-edge")
MAX_SITES = 100_000
PRICE_STEPS = 24
SITES = "site.count"


def tiers(plan: TierPlan | None) -> dict[str, str]:
    """Each workload's tier in the plan ({} when infeasible)."""
    if plan is None or plan.value is None:
        return {}
    return {w: plan.tier_of(w) for w in dict.fromkeys(o.workload for o in plan.options if o.workload)}


class TierQuestions(Questions):
    bisection_steps = 14
    round_nearest = False
    tight_share = 0.01
    unrunnable = "cannot run it at all (see Not considered)"

    def __init__(self, spec: TierSpec, catalog: Catalog, table: TierTable, items: list[Limit], cache: dict):
        super().__init__()
        self.spec, self.catalog, self.table, self.items, self.cache = spec, catalog, table, items, cache
        self.objective = spec.objective
        self.objective_unit = "usd_per_site_month" if spec.objective == "cost" else "kwh_per_site_month"

    def limits(self) -> list[Limit]:
        return self.items

    def answer(self, question: Question) -> Answer:
        if question.parameter is not None:
            plan = self._at_parameter(*question.parameter)
        else:
            plan = solve_tier(self.spec, self.table, self.items, question)
        return Answer(plan.status, plan.value, plan)

    def _at_parameter(self, name: str, value: float) -> TierPlan:
        if name == SITES:
            s = self.spec.model_copy(update={"site": self.spec.site.model_copy(update={"count": int(value)})})
            return solve_tier(s, enumerate_options(s, self.catalog, cache=self.cache), limit_items(s))
        k = int(name[len("network.links["):name.index("]")])
        base = self.spec.network.links[k].usd_per_gb
        shifted = [_reprice(o, (value - base) * o.detail.get("gb_up", 0.0)) if k in o.hops else o
                   for o in self.table.options]
        return solve_tier(self.spec, replace(self.table, options=shifted), self.items)

    def usage(self, limit: Limit, plan) -> float | None:
        return item_value(limit, plan.options) if plan is not None and plan.options else None

    def relaxed(self, limit: Limit) -> float | None:
        if limit.unit_id == "tier.locality":
            return limit.bound + 1 if limit.bound < 2 else None
        if limit.unit_id == "site.device_slots":
            return limit.bound + 1
        return super().relaxed(limit)

    def physical(self) -> str:
        return "nothing can run this spec even with every limit dropped (see Not considered)"

    def describe(self, plan, choice: Choice | None = None) -> str:
        options = plan.of(choice.workload) if choice is not None else plan.options
        return "; ".join(o.label() for o in options)

    def change(self, before, after) -> str | None:
        a, b = tiers(before), tiers(after)
        moved = [f"{w} {t} -> {b.get(w)}" for w, t in a.items() if b.get(w) != t]
        if moved:
            return ", ".join(moved)
        changed = [o.label() for o in after.options if o not in before.options]
        return "same tiers; " + "; ".join(changed) if changed else "same plan"

    def choices(self, plan: TierPlan) -> list[Choice]:
        out = []
        for w in self.spec.workloads:
            chosen = plan.tier_of(w.name)
            for tier in TIERS:
                if tier == chosen or (tier == "split" and w.split is None):
                    continue
                out.append(self._choice(w.name, "tier", tier, lambda o, t=tier: o.tier == t))
            edge_devices = sorted({o.device for o in self.table.of(w.name) if o.role in EDGE_ROLES})
            used = {o.device for o in plan.of(w.name)}
            for device in edge_devices:
                if device not in used:
                    out.append(self._choice(w.name, "device", device, lambda o, d=device: o.role in EDGE_ROLES
                                            and o.device == d))
        return out

    def _choice(self, workload: str, kind: str, name: str, keep) -> Choice:
        """The options in which `workload` makes this choice (the other workloads stay free)."""
        allowed = frozenset(o.index for o in self.table.options
                            if o.workload != workload or keep(o) or (kind == "device" and o.role == "split-cloud"))
        return Choice(kind, name, allowed, workload=workload)

    def parameters(self, plan: TierPlan, alternatives) -> list[Parameter]:
        if self.objective != "cost":
            return []
        count = self.spec.site.count
        out = [Parameter(SITES, count, (1, min(MAX_SITES, count * 100)), "sites", integer=True)]
        for k, link in enumerate(self.spec.network.links):
            if any(k in o.hops for o in self.table.options):
                out.append(Parameter(f"network.links[{k}].usd_per_gb", link.usd_per_gb,
                                     (0.0, max(1.0, 10 * link.usd_per_gb)), "USD/GB", steps=PRICE_STEPS, digits=4))
        return out

    def decision(self, plan) -> dict[str, str]:
        return tiers(plan)

    def flip_sentence(self, flip) -> str:
        p = flip.parameter
        at = flip.reported_at
        value, now = (f"{at:,.0f}", f"{p.current:,.0f}") if p.name == SITES else (f"${at:,.4g}/GB", f"${p.current:,.4g}/GB")
        return f"{p.name} = {value} (now {now}): {flip.changes()}"


def _reprice(option, delta_usd: float):
    parts = dict(option.cost_parts)
    parts["transfer"] = parts.get("transfer", 0.0) + delta_usd
    return replace(option, usd_per_month=option.usd_per_month + delta_usd, cost_parts=parts)
