"""Explain a plan: binding limits and their price, why not each other choice, the minimal conflict of an
impossible spec with its nearest relaxations, and where the decision flips.

One explainer for every model: it asks only the what-if protocol of `question.py`, which a solve
(`solve_questions.py`), a fleet (`planner.fleet.questions`) and a tier plan (`planner.tier.questions`)
each answer. Only this package, `compile` and `solve` import OR-Tools. Every item names the constraint
`id` and the `spec_path` of the limit it comes from, so a user (or a script) can change exactly that field.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from planner.explain.binding import LimitPrice, price_limits
from planner.explain.conflict import Conflict, minimal_conflict
from planner.explain.flips import flips as find_flips
from planner.explain.question import Flip, Questions
from planner.explain.whynot import Alternative, alternatives


@dataclass
class Explanation:
    objective_unit: str
    limits: list[LimitPrice] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)
    conflict: Conflict | None = None
    flips: list[Flip] = field(default_factory=list)
    break_even: object | None = None  # a solve's price break-even against the runner-up device
    solves: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # parts the time limit left out

    def as_dict(self) -> dict:
        return {
            "limits": [p.as_dict() for p in self.limits],
            "alternatives": [a.as_dict() for a in self.alternatives],
            "conflict": self.conflict.as_dict() if self.conflict else None,
            "flips": [f.as_dict() for f in self.flips],
            "break_even": self.break_even.as_dict() if self.break_even else None,
            "explain_solves": self.solves,
            "skipped": self.skipped,
        }


def explain_plan(model: Questions, plan, objective: float | None, infeasible: bool,
                 expired: Callable[[], bool] = lambda: False) -> Explanation:
    """Every part of the explanation the model's question allows; parts the time limit leaves out are named."""
    started = time.perf_counter()
    out = Explanation(model.objective_unit)

    def in_time(part: str) -> bool:
        if expired():
            out.skipped.append(part)
            return False
        return True

    if plan is None:
        if infeasible and in_time("the minimal conflict"):
            out.conflict = minimal_conflict(model)
    else:
        if in_time("what each limit costs"):
            out.limits = price_limits(model, plan, objective)
        if in_time("why not each other choice"):
            out.alternatives = alternatives(model, plan, objective)
        if in_time("where the decision flips"):
            out.flips = find_flips(model, plan, out.alternatives)
            out.break_even = model.break_even(out.flips)
    out.solves = model.solves
    out.seconds = time.perf_counter() - started
    return out


def explain(work, catalog, result, checks, settings=None) -> Explanation:
    """A solve's explanation (`planner solve`)."""
    from planner.explain.solve_questions import solve_questions
    from planner.solve import SolverSettings

    settings = settings or SolverSettings()
    model = solve_questions(work, catalog, result, checks, settings)
    return explain_plan(model, result.plan, result.objective_value, result.status == "infeasible",
                        lambda: settings.expired)


__all__ = ["explain", "explain_plan", "Explanation"]
