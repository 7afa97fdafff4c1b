"""Binding limits and their price: the value at the optimum, the slack, and what dropping or relaxing each
user limit by one step would save (re-solved, never read off duals: CP-SAT has none).

`tight` (little slack at the optimum) and `binding` (dropping the limit improves the objective) are
reported separately: in a discrete model a limit can be tight without binding and bind with slack.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.explain.question import Limit, Question, Questions

IMPROVES = 1e-6  # relative objective change that counts as a saving


@dataclass
class LimitPrice:
    item: Limit
    value: float | None  # what the plan uses of it
    slack: float | None
    tight: bool
    binding: bool
    drop_objective: float | None
    drop_saving: float | None  # relative, positive = cheaper
    drop_change: str | None
    relaxed_to: float | None  # only for binding limits: relaxing a limit saves no more than dropping it
    relax_objective: float | None
    relax_saving: float | None
    relax_change: str | None

    def as_dict(self) -> dict:
        return {"id": self.item.id, "spec_path": self.item.spec_path, "workload": self.item.workload,
                "limit": self.item.bound, "value": self.value, "unit": self.item.unit, "slack": self.slack,
                "tight": self.tight, "binding": self.binding,
                "drop": {"objective": self.drop_objective, "saving": self.drop_saving, "change": self.drop_change},
                "relax": {"to": self.relaxed_to, "objective": self.relax_objective, "saving": self.relax_saving,
                          "change": self.relax_change}}


def saving(base: float | None, other: float | None) -> float | None:
    if other is None or base is None or base <= 0:
        return None
    return max(0.0, (base - other) / base)


def price_limits(model: Questions, plan, objective: float) -> list[LimitPrice]:
    limits = model.limits()
    drops = model.ask_many([Question(dropped=frozenset({item.id})) for item in limits])
    drop_savings = [saving(objective, d.objective) for d in drops]
    binding = [s is not None and s > IMPROVES for s in drop_savings]
    relaxed_to = {item.id: model.relaxed(item) for item, b in zip(limits, binding) if b}
    relax_questions = {i: Question(bounds=((i, to),)) for i, to in relaxed_to.items() if to is not None}
    relaxes = dict(zip(relax_questions, model.ask_many(list(relax_questions.values()))))
    out = []
    for item, dropped, drop_saving, binds in zip(limits, drops, drop_savings, binding):
        value = model.usage(item, plan)
        slack = None if value is None else (value - item.bound if item.lower else item.bound - value)
        relaxed = relaxes.get(item.id)
        out.append(LimitPrice(
            item=item, value=value, slack=slack,
            tight=slack is not None and abs(slack) <= model.tight_share * max(abs(item.bound), 1e-9),
            binding=binds, drop_objective=dropped.objective, drop_saving=drop_saving,
            drop_change=model.change(plan, dropped.plan) if dropped.feasible else None,
            relaxed_to=relaxed_to.get(item.id),
            relax_objective=relaxed.objective if relaxed else None,
            relax_saving=saving(objective, relaxed.objective) if relaxed else None,
            relax_change=model.change(plan, relaxed.plan) if relaxed and relaxed.feasible else None))
    return out
