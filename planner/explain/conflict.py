"""Impossible specs: the smallest set of the user's own limits that cannot hold together, and for each
of them the nearest value that would make the spec feasible, with the plan it would give.

The search is by deletion (drop one limit more at a time, keep it only if the question turns feasible
without it), from a model's seed where it has one: CP-SAT's assumption core for a solve, which is
neither guaranteed minimal nor reliable with several workers (or-tools #3102, #5141). The result is
verified: the set is infeasible and every subset missing one element is feasible.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from planner.explain.question import Limit, Question, Questions

DOUBLINGS = 30


@dataclass
class Relaxation:
    item: Limit
    to: float | None  # None: relaxing this limit alone cannot make the spec feasible
    objective: float | None
    plan: str | None

    def as_dict(self) -> dict:
        return {"id": self.item.id, "spec_path": self.item.spec_path, "from": self.item.bound, "to": self.to,
                "unit": self.item.unit, "objective": self.objective, "plan": self.plan}


@dataclass
class Conflict:
    items: list[Limit]
    verified: bool
    relaxations: list[Relaxation] = field(default_factory=list)
    physical: str | None = None  # no plan even without any user limit

    @property
    def nearest(self) -> dict[str, tuple[float | None, float | None]]:
        """Each limit's nearest feasible value and the objective there."""
        return {r.item.id: (r.to, r.objective) for r in self.relaxations}

    def as_dict(self) -> dict:
        near = self.nearest
        return {"limits": [{"id": i.id, "spec_path": i.spec_path, "workload": i.workload, "value": i.bound,
                            "limit": i.bound, "unit": i.unit, "nearest_feasible": near.get(i.id, (None, None))[0],
                            "objective_there": near.get(i.id, (None, None))[1]} for i in self.items],
                "minimal_verified": self.verified, "relaxations": [r.as_dict() for r in self.relaxations],
                "physical": self.physical}


def _infeasible(model: Questions, kept: set[str], every: frozenset[str], allowed=None) -> bool:
    return not model.ask(Question(dropped=every - kept, allowed=allowed, feasibility_only=True)).feasible


def minimal_subset(model: Questions, ids: list[str], allowed=None) -> list[str]:
    """A minimal set of limits that, all enforced, leave no plan (among `allowed` rows), shrunk by deletion
    from the model's seed. The caller knows the full set is infeasible."""
    every = frozenset(ids)
    seed = model.seed(ids, allowed) or list(ids)
    if not _infeasible(model, set(seed), every, allowed):
        seed = list(ids)
    kept = set(seed)
    for item in seed:
        trial = kept - {item}
        if _infeasible(model, trial, every, allowed):
            kept = trial
    return [i for i in ids if i in kept]


def minimal_conflict(model: Questions) -> Conflict:
    items = model.limits()
    by_id = {i.id: i for i in items}
    every = frozenset(by_id)
    if not model.ask(Question(dropped=every)).feasible:
        return Conflict([], True, physical=model.physical())
    kept = set(minimal_subset(model, list(by_id)))
    verified = _infeasible(model, kept, every) and all(not _infeasible(model, kept - {i}, every) for i in kept)
    conflict = Conflict([by_id[i] for i in by_id if i in kept], verified)
    with ThreadPoolExecutor(max_workers=2) as pool:  # independent searches, two solves at a time
        conflict.relaxations = list(pool.map(lambda i: nearest_relaxation(model, by_id[i]),
                                             [i for i in by_id if i in kept]))
    return conflict


def nearest_relaxation(model: Questions, item: Limit) -> Relaxation:
    """The smallest loosening of this one limit (others as the spec has them) that admits a plan: bisection
    between the limit and what the plan without it uses (or, when the model cannot say, a doubling search)."""
    free = model.ask(Question(dropped=frozenset({item.id})))
    if not free.feasible:
        return Relaxation(item, None, None, None)

    def feasible(value: float) -> bool:
        return model.ask(Question(bounds=((item.id, value),), feasibility_only=True)).feasible

    reach = model.usage(item, free.plan)
    low, high = item.bound, reach
    if reach is None:
        probe = item.bound
        for _ in range(DOUBLINGS):
            probe = probe * 2 if probe > 0 else 1.0
            if item.ceiling is not None:
                probe = min(probe, item.ceiling)
            if feasible(probe):
                high = probe
                break
            low = probe
            if item.ceiling is not None and probe >= item.ceiling:
                break
        if high is None:
            return Relaxation(item, None, None, None)
    steps = 0
    while (high - low > 1) if item.integer else steps < model.bisection_steps:
        if not item.integer and model.round_nearest and round_up_nicely(low) == round_up_nicely(high):
            break  # every value left between them is reported as the same figure
        steps += 1
        mid = math.floor((low + high) / 2) if item.integer else (low + high) / 2
        if feasible(mid):
            high = mid
        else:
            low = mid
    if not item.integer and model.round_nearest:
        high = round_up_nicely(high)
    outcome = free if high == reach else model.ask(Question(bounds=((item.id, high),)))
    return Relaxation(item, high, outcome.objective, model.describe(outcome.plan) if outcome.feasible else None)


def round_up_nicely(value: float) -> float:
    """Three significant digits, rounded up so the reported value still admits the plan."""
    if value <= 0:
        return value
    scale = 10 ** (math.floor(math.log10(value)) - 2)
    return math.ceil(value / scale - 1e-9) * scale
