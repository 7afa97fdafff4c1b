"""Binding limits and their price: the value at the optimum, the slack, and what dropping or relaxing each
user limit by one step would save (re-solved, never read off duals: CP-SAT has none).

`tight` (little slack at the optimum) and `binding` (dropping the limit improves the objective) are
reported separately: in a discrete model a limit can be tight without binding and bind with slack.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.explain.diff import describe_change
from planner.explain.scenario import LimitItem, Outcome, ScenarioRunner, limit_items, relaxed_value
from planner.plan import Plan

TIGHT_SHARE = 0.02
IMPROVES = 1e-6  # relative objective change that counts as a saving


@dataclass
class LimitPrice:
    item: LimitItem
    value: float | None
    slack: float | None
    tight: bool
    binding: bool
    drop_objective: float | None
    drop_saving: float | None  # relative, positive = cheaper
    drop_change: str | None
    relaxed_to: float
    relax_objective: float | None
    relax_saving: float | None
    relax_change: str | None

    def as_dict(self) -> dict:
        return {"id": self.item.id, "spec_path": self.item.spec_path, "limit": self.item.value, "value": self.value,
                "unit": self.item.unit, "slack": self.slack, "tight": self.tight, "binding": self.binding,
                "drop": {"objective": self.drop_objective, "saving": self.drop_saving, "change": self.drop_change},
                "relax": {"to": self.relaxed_to, "objective": self.relax_objective, "saving": self.relax_saving,
                          "change": self.relax_change}}


def _saving(base: float, other: float | None) -> float | None:
    if other is None or base is None or base == 0:
        return None
    return (base - other) / base


def price_limits(runner: ScenarioRunner, plan: Plan, objective: float, checks) -> list[LimitPrice]:
    by_id = {c.id: c for c in checks}
    items = limit_items(runner.work.spec, runner.table.kind)
    drops = runner.many([("at", item, None) for item in items])
    # Relaxing a limit can only save what dropping it saves: relax only the limits whose drop saves.
    relax_questions = [("at", item, relaxed_value(item)) for item, d in zip(items, drops)
                       if _saving(objective, d.value) and _saving(objective, d.value) > IMPROVES]
    runner.many(relax_questions)
    out = []
    for item, dropped in zip(items, drops):
        check = by_id.get(item.unit_id if not item.id.startswith("inventory") else item.unit_id)
        value = slack = None
        if item.id.startswith("inventory"):
            device = item.id[len("inventory.per_device["):-1]
            value = float(plan.devices_of(device))
            slack = item.value - value
        elif check is not None:
            value, slack = check.value, check.slack
        tight = slack is not None and abs(slack) <= TIGHT_SHARE * max(abs(item.value), 1e-9)
        relaxed_to = relaxed_value(item)
        drop_saving = _saving(objective, dropped.value)
        # Relaxing a limit can save no more than dropping it: when the drop saves nothing, neither does this.
        relaxed = runner.at(item, relaxed_to) if drop_saving and drop_saving > IMPROVES else Outcome(
            True, objective, plan, "not re-solved")
        relax_saving = _saving(objective, relaxed.value)
        out.append(LimitPrice(
            item=item, value=value, slack=slack, tight=tight,
            binding=drop_saving is not None and drop_saving > IMPROVES,
            drop_objective=dropped.value, drop_saving=drop_saving,
            drop_change=describe_change(plan, dropped.plan) if dropped.plan else None,
            relaxed_to=relaxed_to, relax_objective=relaxed.value, relax_saving=relax_saving,
            relax_change=describe_change(plan, relaxed.plan) if relaxed.plan else None))
    return out
