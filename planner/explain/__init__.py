"""Explain a solve: binding limits and their price, why not each other device and provider, the minimal
conflict of an impossible spec with its nearest relaxations, and the break-even price.

Only this package, `compile` and `solve` import OR-Tools. Every item names the constraint `id` and the
`spec_path` of the limit it comes from, so a user (or a script) can change exactly that field.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from planner.catalog.loader import Catalog
from planner.evaluate import ResolvedWorkload
from planner.explain.binding import LimitPrice, price_limits
from planner.explain.breakeven import BreakEven, break_even
from planner.explain.conflict import Conflict, minimal_conflict
from planner.explain.scenario import ScenarioRunner
from planner.explain.whynot import Alternative, alternatives
from planner.solve import SolveResult, SolverSettings


@dataclass
class Explanation:
    limits: list[LimitPrice] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)
    conflict: Conflict | None = None
    break_even: BreakEven | None = None
    solves: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # parts the time limit left out

    def as_dict(self) -> dict:
        return {
            "limits": [p.as_dict() for p in self.limits],
            "alternatives": [a.as_dict() for a in self.alternatives],
            "conflict": self.conflict.as_dict() if self.conflict else None,
            "break_even": self.break_even.as_dict() if self.break_even else None,
            "explain_solves": self.solves,
            "skipped": self.skipped,
        }


def explain(work: ResolvedWorkload, catalog: Catalog, result: SolveResult, checks,
            settings: SolverSettings | None = None) -> Explanation:
    started = time.perf_counter()
    runner = ScenarioRunner(work, catalog, result.table, result.compiled, settings or SolverSettings())
    out = Explanation()
    settings = runner.settings

    def in_time(part: str) -> bool:
        if settings.expired:
            out.skipped.append(part)
            return False
        return True

    if result.plan is None:
        if result.status == "infeasible" and in_time("the minimal conflict"):
            out.conflict = minimal_conflict(runner)
    else:
        objective = result.objective_value
        if in_time("what each limit costs"):
            out.limits = price_limits(runner, result.plan, objective, checks)
        if in_time("why not each other device and provider"):
            out.alternatives = alternatives(runner, result.plan, objective)
        devices = [a for a in out.alternatives if a.kind == "device" and a.objective is not None]
        runner_up = min(devices, key=lambda a: a.objective, default=None)
        if in_time("the break-even price"):
            out.break_even = break_even(runner, result.plan, runner_up)
    out.solves = runner.solves
    out.seconds = time.perf_counter() - started
    return out


__all__ = ["explain", "Explanation"]
