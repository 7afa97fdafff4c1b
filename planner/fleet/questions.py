"""A fleet as a what-if model for the explainer (`planner.explain`): the fleet's shared limits (site power,
inventory, budget) and every workload's own limits, each with a literal of the one compiled fleet model,
so dropping limits and restricting rows are answered on clones; a re-bounded limit compiles the fleet
again (a workload's limit re-rates only that workload's rows).

Why-not, in a buyer's terms: for a device the fleet buys, the best fleet that rents instead; for each
workload, the best fleet that runs it on each device the site could own, and the best that rents it.
"""

from __future__ import annotations

from dataclasses import replace

from planner.candidates import rerate
from planner.catalog.loader import Catalog
from planner.check import check_plan
from planner.evaluate import ResolvedWorkload
from planner.explain import explain_plan
from planner.explain.diff import describe, describe_change
from planner.explain.question import Answer, Choice, Limit, Question, Questions
from planner.explain.scenario import limit_items, with_value
from planner.fleet import (
    FleetMember,
    FleetResult,
    build_fleet_model,
    member_limit_id,
    solve_fleet_model,
)
from planner.solve import SolverSettings


def _owned(row) -> bool:
    return row.candidate.offering is None


class FleetQuestions(Questions):
    objective = "cost"
    objective_unit = "usd_per_hour"  # TCO averaged over the horizon

    def __init__(self, result: FleetResult, catalog: Catalog, settings: SolverSettings):
        super().__init__()
        self.result, self.catalog, self.settings = result, catalog, settings
        self.fleet = result.model
        self.spec = result.spec
        self._limits, self._member_limits = self._collect_limits()
        self._checks: dict[tuple[int, str], dict] = {}

    def _collect_limits(self) -> tuple[list[Limit], dict[str, tuple[int, Limit]]]:
        spec = self.spec
        out, by_member = [], {}
        buyable = set(spec.buy.devices) if spec.buy else set()
        for d, count in sorted(spec.inventory.items()):
            if d not in buyable:
                out.append(Limit(f"fleet.inventory[{d}]", "fleet.inventory", f"inventory.{d}", float(count), "devices",
                                 integer=True))
        if spec.limits.power_kw is not None:
            out.append(Limit("fleet.power_kw", "fleet.power_kw", "limits.power_kw", spec.limits.power_kw, "kW"))
        if spec.limits.budget_usd_per_hour is not None:
            out.append(Limit("fleet.budget", "fleet.budget", "limits.budget_usd_per_hour",
                             spec.limits.budget_usd_per_hour, "USD/h"))
        for k, m in enumerate(self.fleet.members):
            for item in limit_items(m.work.spec, m.table.kind):
                if item.unit_id == "inventory.per_device":
                    continue  # a fleet's workloads share the fleet's inventory
                limit = replace(item, id=member_limit_id(m, item.id), spec_path=f"{m.path.name}: {item.spec_path}",
                                workload=m.path.name)
                out.append(limit)
                by_member[limit.id] = (k, item)
        return out, by_member

    def limits(self) -> list[Limit]:
        return self._limits

    def answer(self, question: Question) -> Answer:
        fleet = self.fleet
        if question.bounds:
            members = [replace(m, compiled=None) for m in fleet.members]
            shared = {}
            for limit_id, value in question.bounds:
                if limit_id in self._member_limits:
                    k, item = self._member_limits[limit_id]
                    m = members[k]
                    spec = with_value(m.work.spec, item, value)
                    work = ResolvedWorkload(spec=spec, model_id=m.work.model_id, shape=m.work.shape,
                                            footprint=m.work.footprint)
                    members[k] = FleetMember(m.path, work, rerate(m.table, spec, only=item.unit_id))
                else:
                    shared[limit_id] = value
            fleet = build_fleet_model(self.spec, members, self.catalog, shared)
        result = solve_fleet_model(fleet, self.catalog, self.settings, question.dropped, question.allowed,
                                   question.feasibility_only)
        return Answer(result.status, result.usd_per_hour, result if result.usd_per_hour is not None else None)

    def usage(self, limit: Limit, plan: FleetResult) -> float | None:
        if plan is None:
            return None
        if limit.id in plan.usage:
            return plan.usage[limit.id]
        if limit.id not in self._member_limits:
            return None
        k, item = self._member_limits[limit.id]
        member = self.fleet.members[k]
        member_plan = plan.plans.get(member.path.name)
        if member_plan is None:
            return None
        key = (id(member_plan), item.unit_id)
        if key not in self._checks:
            checks = check_plan(member.work, self.catalog, member_plan)
            self._checks[key] = next((c.value for c in checks if c.id == item.unit_id), None)
        return self._checks[key]

    def physical(self) -> str:
        return "some workload has no plan even with every limit dropped (plan it alone with `planner solve`)"

    def describe(self, plan: FleetResult, choice: Choice | None = None) -> str:
        bought = ", ".join(f"{n} x {d}" for d, n in plan.bought.items() if n) or "nothing"
        if choice is not None and choice.workload:
            return f"{choice.workload}: {describe(plan.plans[choice.workload])}; buys {bought}"
        return f"buys {bought}; " + "; ".join(f"{w}: {describe(p)}" for w, p in plan.plans.items())

    def change(self, before: FleetResult, after: FleetResult) -> str | None:
        out = []
        if before.bought != after.bought:
            def text(b): return ", ".join(f"{n} x {d}" for d, n in b.items() if n) or "nothing"
            out.append(f"buy {text(before.bought)} → {text(after.bought)}")
        for w, p in before.plans.items():
            q = after.plans.get(w)
            if q is not None and describe(p) != describe(q):
                out.append(f"{w}: {describe_change(p, q)}")
        return "; ".join(out) or "same fleet"

    def why_worse(self, chosen: FleetResult, other: FleetResult, choice: Choice) -> str:
        return self.change(chosen, other)

    def choices(self, plan: FleetResult) -> list[Choice]:
        members = self.fleet.members
        every = frozenset((k, r.index) for k, m in enumerate(members) for r in m.table.rows)
        ownable = sorted((set(self.spec.buy.devices) if self.spec.buy else set()) | set(self.spec.inventory))
        out = []
        for d, n in sorted(plan.bought.items()):
            if n:
                owned_d = {(k, r.index) for k, m in enumerate(members) for r in m.table.rows
                           if _owned(r) and r.candidate.device == d}
                out.append(Choice("rent instead of buying", d, every - owned_d))
        for k, m in enumerate(members):
            name = m.path.name
            others = frozenset(p for p in every if p[0] != k)
            own_plan = plan.plans.get(name)
            owned_now = {p.evaluation.candidate.device for p in own_plan.parts
                         if p.evaluation.candidate.offering is None} if own_plan else set()
            for d in ownable:
                if d in owned_now:
                    continue
                rows = frozenset((k, r.index) for r in m.table.rows if _owned(r) and r.candidate.device == d)
                reasons = sorted(m.table.excluded_by_device.get(d, {}))
                out.append(Choice("own", d, others | rows, workload=name,
                                  unavailable=None if rows else (", ".join(reasons) or f"no layout of it on {d}"),
                                  unavailable_by=tuple(reasons) if not rows else ()))
            if owned_now:
                rows = frozenset((k, r.index) for r in m.table.rows if not _owned(r))
                out.append(Choice("rent", "the cloud", others | rows, workload=name,
                                  unavailable=None if rows else "no cloud offering in its search space"))
        return out


def explain_fleet(result: FleetResult, catalog: Catalog, settings: SolverSettings | None = None):
    settings = settings or SolverSettings()
    model = FleetQuestions(result, catalog, settings)
    found = result if result.usd_per_hour is not None else None
    return explain_plan(model, found, result.usd_per_hour, result.status == "infeasible", lambda: settings.expired)
