"""What-if solves for the explainer: the same question with one limit dropped, relaxed or restricted.

Every user limit is a `Limit` (a constraint unit, or one device's inventory) with the spec field that sets
it. Dropping an item turns its literal off on a clone of the compiled model (no recompilation); relaxing
it rebuilds the model from the same candidate table with the new bound (serving rows recompute only their
rates for that limit). Solves are hinted with nothing but the compiled structure, and cached by question.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace

from planner.candidates import CandidateTable, rerate
from planner.catalog.loader import Catalog
from planner.compile import CompiledModel, active_limits, compile_model, inventory_item
from planner.constraints import BY_ID
from planner.evaluate import ResolvedWorkload
from planner.explain.question import Limit
from planner.plan import Plan
from planner.solve import SolveResult, SolverSettings, solve_compiled
from planner.spec import WorkloadSpec

COUNTS = ("devices.max_count", "inventory.per_device")


def limit_items(spec: WorkloadSpec, kind: str) -> list[Limit]:
    items = []
    for unit_id, bound in active_limits(spec, kind).items():
        unit = BY_ID[unit_id]
        ceiling = 1.0 if unit_id == "throughput.max_utilization" else None  # past it a replica never catches up
        if unit_id == "inventory.per_device":
            for device, count in sorted(spec.limits.inventory.items()):
                items.append(Limit(inventory_item(device), unit_id, f"limits.inventory.{device}", float(count),
                                   unit.unit, integer=True))
        else:
            items.append(Limit(unit_id, unit_id, unit.spec_path, bound, unit.unit, integer=unit_id in COUNTS,
                               ceiling=ceiling))
    return items


def with_value(spec: WorkloadSpec, item: Limit, value: float | None) -> WorkloadSpec:
    """The spec with the item's field set to `value` (None removes the limit)."""
    # Defaults left out: an empty search list is the default "every value", which a spec may not spell out.
    data = spec.model_dump(mode="json", exclude_defaults=True)
    parts = item.spec_path.split(".")
    node = data
    for key in parts[:-1]:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = int(math.ceil(value)) if item.unit_id in COUNTS else value
    if item.unit_id == "throughput.max_utilization" and value is None:
        node[parts[-1]] = 1.0  # the cap cannot go: a replica past full utilisation never catches up
    return WorkloadSpec.model_validate(data)


@dataclass
class Outcome:
    feasible: bool
    value: float | None
    plan: Plan | None
    status: str


@dataclass
class ScenarioRunner:
    work: ResolvedWorkload
    catalog: Catalog
    table: CandidateTable
    compiled: CompiledModel
    settings: SolverSettings
    solves: int = 0
    _cache: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sub_models: dict = field(default_factory=dict)

    def _run(self, work: ResolvedWorkload, compiled: CompiledModel, dropped: frozenset[str],
             allowed: frozenset[int] | None, key, feasibility_only: bool = False) -> Outcome:
        key = (*key, feasibility_only)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            self.solves += 1
        result: SolveResult = solve_compiled(work, self.catalog, compiled, self.settings, 1, dropped,
                                             set(allowed) if allowed is not None else None,
                                             feasibility_only=feasibility_only)
        outcome = Outcome(result.plan is not None, result.objective_value, result.plan, result.status)
        with self._lock:
            self._cache[key] = outcome
        return outcome

    def base(self, dropped: frozenset[str] = frozenset(), allowed: frozenset[int] | None = None,
             feasibility_only: bool = False) -> Outcome:
        """The spec's own question, with some items dropped and/or only some rows allowed; with
        `feasibility_only`, any plan within them (see `Question.feasibility_only`)."""
        key = ("base", dropped, allowed)
        if allowed is None:
            return self._run(self.work, self.compiled, dropped, None, key, feasibility_only)
        # A question about a few rows is asked of a model built from those rows alone: much smaller than
        # the full model with the other rows switched off, and reused for every set of dropped limits.
        return self._run(self.work, self.sub_model(allowed), dropped, None, key, feasibility_only)

    def sub_model(self, allowed: frozenset[int]) -> CompiledModel:
        with self._lock:
            compiled = self._sub_models.get(allowed)
        if compiled is None:
            rows = [replace(r, index=i) for i, r in enumerate(r for r in self.table.rows if r.index in allowed)]
            field_name = "training_rows" if self.table.kind == "training" else "replica_rows"
            compiled = compile_model(replace(self.table, **{field_name: rows}), self.work.spec)
            with self._lock:
                self._sub_models[allowed] = compiled
        return compiled

    def at(self, item: Limit, value: float | None, allowed: frozenset[int] | None = None,
           feasibility_only: bool = False) -> Outcome:
        """The spec with one item set to another value (None: dropped)."""
        if value is None:
            return self.base(frozenset({item.id}), allowed, feasibility_only)
        spec = with_value(self.work.spec, item, value)
        work = ResolvedWorkload(spec=spec, model_id=self.work.model_id, shape=self.work.shape,
                                footprint=self.work.footprint)
        key = ("at", item.id, round(value, 9), allowed)
        with self._lock:
            if (*key, feasibility_only) in self._cache:
                return self._cache[(*key, feasibility_only)]
        table = rerate(self.table, spec, only=item.unit_id)
        compiled = compile_model(table, spec)
        return self._run(work, compiled, frozenset(), allowed, key, feasibility_only)

    def rows_of(self, predicate) -> frozenset[int]:
        return frozenset(r.index for r in self.table.rows if predicate(r))
