"""Impossible specs: the smallest set of the user's own limits that cannot hold together, and for each
of them the nearest value that would make the spec feasible, with the plan it would give.

CP-SAT's assumption core seeds the search but is neither guaranteed minimal nor reliable with several
workers (or-tools #3102, #5141), so it is computed with one worker and then shrunk by deletion on clones;
the result is verified: the set is infeasible and every subset missing one element is feasible.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from planner._ortools import cp_model
from planner.explain.diff import describe
from planner.explain.scenario import LimitItem, ScenarioRunner, limit_items
from planner.plan import Plan

SEARCH_STEPS = 10


@dataclass
class Relaxation:
    item: LimitItem
    to: float | None  # None: relaxing this limit alone cannot make the spec feasible
    objective: float | None
    plan: Plan | None

    def as_dict(self) -> dict:
        return {"id": self.item.id, "spec_path": self.item.spec_path, "from": self.item.value, "to": self.to,
                "unit": self.item.unit, "objective": self.objective,
                "plan": describe(self.plan) if self.plan else None}


@dataclass
class Conflict:
    items: list[LimitItem]
    verified: bool
    relaxations: list[Relaxation] = field(default_factory=list)
    physical: str | None = None  # no plan even without any user limit

    def as_dict(self) -> dict:
        return {"limits": [{"id": i.id, "spec_path": i.spec_path, "value": i.value, "unit": i.unit}
                           for i in self.items],
                "minimal_verified": self.verified, "relaxations": [r.as_dict() for r in self.relaxations],
                "physical": self.physical}


def _infeasible(runner: ScenarioRunner, kept: set[str], every: frozenset[str],
                allowed: frozenset[int] | None = None) -> bool:
    return not runner.base(frozenset(every - kept), allowed).feasible


def minimal_subset(runner: ScenarioRunner, ids: list[str], allowed: frozenset[int] | None = None) -> list[str]:
    """A minimal set of limit items that, all enforced, leave no plan (among `allowed` rows): an
    assumption core as the seed, shrunk by deletion. The caller knows the full set is infeasible."""
    every = frozenset(ids)
    seed = _assumption_seed(runner, ids, allowed)
    if not _infeasible(runner, set(seed), every, allowed):
        seed = list(ids)
    kept = set(seed)
    for item in seed:
        trial = kept - {item}
        if _infeasible(runner, trial, every, allowed):
            kept = trial
    return [i for i in ids if i in kept]


def _assumption_seed(runner: ScenarioRunner, ids: list[str], allowed: frozenset[int] | None = None) -> list[str]:
    compiled = runner.compiled if allowed is None else runner.sub_model(allowed)
    model = compiled.model.clone()  # literals free: assume them on instead of fixing them
    literals = {compiled.limit_literals[i].index: i for i in ids if i in compiled.limit_literals}
    model.add_assumptions([model.get_bool_var_from_proto_index(idx) for idx in literals])
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1  # cores are wrong with several workers (or-tools #3102, #5141)
    solver.parameters.max_time_in_seconds = runner.settings.seconds_left()
    if solver.solve(model) != cp_model.INFEASIBLE:
        return ids
    core = {literals[i] for i in solver.sufficient_assumptions_for_infeasibility() if i in literals}
    return [i for i in ids if i in core] or ids


def minimal_conflict(runner: ScenarioRunner) -> Conflict:
    items = limit_items(runner.work.spec, runner.table.kind)
    by_id = {i.id: i for i in items}
    every = frozenset(by_id)
    if not runner.base(every).feasible:
        reasons = "; ".join(f"{k}: {v.count} configurations, e.g. {v.example}" for k, v in runner.table.excluded.items())
        return Conflict([], True, physical=reasons or "no configuration in the search space")
    kept = set(minimal_subset(runner, list(by_id)))
    verified = _infeasible(runner, kept, every) and all(not _infeasible(runner, kept - {i}, every) for i in kept)
    conflict = Conflict([by_id[i] for i in by_id if i in kept], verified)
    with ThreadPoolExecutor(max_workers=2) as pool:  # independent searches, two solves at a time
        conflict.relaxations = list(pool.map(lambda i: nearest_relaxation(runner, by_id[i]),
                                             [i for i in by_id if i in kept]))
    return conflict


def nearest_relaxation(runner: ScenarioRunner, item: LimitItem) -> Relaxation:
    """The smallest loosening of this one limit (others as the spec has them) that admits a plan."""
    if not runner.at(item, None).feasible:
        return Relaxation(item, None, None, None)
    integer = item.unit_id in ("devices.max_count", "inventory.per_device")
    ceiling = 1.0 if item.unit_id == "throughput.max_utilization" else None
    low, high = item.value, None
    probe = item.value
    for _ in range(30):
        probe = probe * 2 if probe > 0 else 1.0
        if ceiling is not None:
            probe = min(probe, ceiling)
        if runner.at(item, probe).feasible:
            high = probe
            break
        low = probe
        if ceiling is not None and probe >= ceiling:
            break
    if high is None:
        return Relaxation(item, None, None, None)
    for _ in range(SEARCH_STEPS):
        if integer and high - low <= 1:
            break
        mid = math.floor((low + high) / 2) if integer else (low + high) / 2
        if runner.at(item, mid).feasible:
            high = mid
        else:
            low = mid
    if not integer:
        high = _round_up_nicely(high)
    outcome = runner.at(item, high)
    return Relaxation(item, high, outcome.value, outcome.plan)


def _round_up_nicely(value: float) -> float:
    """Three significant digits, rounded up so the reported value still admits the plan."""
    if value <= 0:
        return value
    scale = 10 ** (math.floor(math.log10(value)) - 2)
    return math.ceil(value / scale - 1e-9) * scale
