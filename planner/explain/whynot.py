"""Why not each other choice (a device, a provider, a tier, renting instead of buying): the best plan that
makes it, and the difference; or the limits that rule it out: each limit that does so alone, else a
minimal set (found by deletion on questions restricted to that choice's rows)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from planner.explain.conflict import minimal_subset
from planner.explain.question import Answer, Choice, Limit, Question, Questions


@dataclass
class Alternative:
    kind: str
    name: str
    objective: float | None
    delta: float | None  # relative to the chosen plan
    reason: str
    ruled_out_by: list[str]
    plan: str | None  # what the choice's best plan is
    workload: str | None = None
    each_alone: bool = False  # every limit in ruled_out_by rules it out by itself
    needs: dict[str, float] = field(default_factory=dict)  # ruling limit -> what the choice uses without limits
    limits: dict[str, Limit] = field(default_factory=dict, repr=False)  # the ruling limits, for rendering
    note: str = ""  # what the model adds to the ruling limits (a catalog gap behind them)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "workload": self.workload, "objective": self.objective,
                "delta": self.delta, "reason": self.reason, "ruled_out_by": self.ruled_out_by,
                "each_alone": self.each_alone, "needs": self.needs, "plan": self.plan}


def ruling_limits(model: Questions, allowed) -> tuple[list[str], bool, Answer]:
    """The limits that rule these rows out, each alone if any does (else a minimal set), and the best plan
    of the rows with every limit dropped (what the choice would need); [] when even that has no plan."""
    ids = [i.id for i in model.limits()]
    every = frozenset(ids)
    unlimited = model.ask(Question(dropped=every, allowed=allowed))
    if not unlimited.feasible:
        return [], False, unlimited
    alone = model.ask_many([Question(dropped=every - {i}, allowed=allowed, feasibility_only=True) for i in ids])
    each = [i for i, a in zip(ids, alone) if not a.feasible]
    if each:
        return each, True, unlimited
    return minimal_subset(model, ids, allowed), False, unlimited


def alternatives(model: Questions, chosen, objective: float) -> list[Alternative]:
    choices = model.choices(chosen)
    model.ask_many([Question(allowed=c.allowed) for c in choices if c.unavailable is None])
    with ThreadPoolExecutor(max_workers=2) as pool:  # see Questions.ask_many: two solves at a time
        return list(pool.map(lambda c: _alternative(model, c, chosen, objective), choices))


def _alternative(model: Questions, choice: Choice, chosen, objective: float) -> Alternative:
    head = {"kind": choice.kind, "name": choice.name, "workload": choice.workload}
    if choice.unavailable is not None:
        return Alternative(objective=None, delta=None, reason=f"impossible: {choice.unavailable}",
                           ruled_out_by=list(choice.unavailable_by), plan=None, **head)
    best = model.ask(Question(allowed=choice.allowed))
    if best.feasible:
        delta = (best.objective - objective) / objective if objective else None
        return Alternative(objective=best.objective, delta=delta, reason=model.why_worse(chosen, best.plan, choice),
                           ruled_out_by=[], plan=model.describe(best.plan, choice), **head)
    ruling, each, unlimited = ruling_limits(model, choice.allowed)
    by_id = {i.id: i for i in model.limits()}
    needs = {}
    if unlimited.feasible:
        needs = {i: v for i in ruling if (v := model.usage(by_id[i], unlimited.plan)) is not None}
    note = model.note(choice)
    reason = "impossible: " + (", ".join(ruling) if ruling else model.unrunnable) + note
    return Alternative(objective=None, delta=None, reason=reason, ruled_out_by=ruling, plan=None, each_alone=each,
                       needs=needs, limits={i: by_id[i] for i in ruling}, note=note, **head)
