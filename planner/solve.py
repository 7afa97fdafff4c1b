"""Run CP-SAT on a compiled model and turn its answer into plans.

Status is reported as the solver proved it: `optimal` (proven), `feasible` (a plan, optimality not
proven within the time limit: objective, bound and gap say how far it may be), `infeasible` (proven: no
plan meets the limits), `timeout` (no plan found within the time limit). Ties are broken by a second,
lexicographic solve (devices, then latency rank, then row order), so the same input always yields the
same plan whatever the number of workers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

from planner._ortools import cp_model

from planner.candidates import CandidateTable, enumerate_candidates
from planner.catalog.loader import Catalog
from planner.check import rebuild
from planner.compile import DEMAND_UNITS, CompiledModel, _training_objective_value, compile_model
from planner.evaluate import ResolvedWorkload, cheaper_unconfident_offers, confident_enough
from planner.plan import Plan

# Measured on 2 cores (benchmarks/solve_bench.py): the portfolio of 8 workers proves these one-hot
# models optimal fastest; see the closing note of the solve issue for the figures.
DEFAULT_WORKERS = 8
DEFAULT_TIME_LIMIT_S = 30.0

STATUS = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.MODEL_INVALID: "invalid",
    cp_model.UNKNOWN: "timeout",
}

OBJECTIVE_UNITS = {
    ("cost", True): "usd_per_job", ("cost", False): "usd_per_hour",
    ("energy", True): "kwh_per_job", ("energy", False): "kwh_per_hour",
    ("carbon", True): "kg_co2e_per_job", ("carbon", False): "kg_co2e_per_hour",
}
OBJECTIVE_METRIC = {
    ("cost", True): "usd_per_job", ("cost", False): "usd_per_hour",
    ("energy", True): "energy_kwh_per_job", ("energy", False): "energy_kwh_per_hour",
    ("carbon", True): "carbon_kg_per_job", ("carbon", False): "carbon_kg_per_hour",
}


# The least time one CP-SAT call is given once a command's deadline is near: enough to load and presolve a
# model, so the call still returns its best plan (or a clean time-out) rather than nothing.
MIN_SOLVE_S = 0.05


@dataclass
class SolverSettings:
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    workers: int = DEFAULT_WORKERS
    seed: int = 0
    # `time.monotonic()` by which the whole command should be done (`--time-limit` bounds the command, not
    # each solve): later solves get what is left, and optional work (explanations, second looks) is skipped.
    deadline: float | None = None

    @classmethod
    def for_command(cls, time_limit_s: float, started: float | None = None, **kwargs) -> "SolverSettings":
        """Settings whose deadline is `time_limit_s` after `started` (a `time.monotonic()`, default now)."""
        return cls(time_limit_s=time_limit_s, deadline=(started or time.monotonic()) + time_limit_s, **kwargs)

    def seconds_left(self) -> float:
        if self.deadline is None:
            return self.time_limit_s
        return max(MIN_SOLVE_S, min(self.time_limit_s, self.deadline - time.monotonic()))

    @property
    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


@dataclass
class SolveResult:
    status: str
    objective_name: str
    objective_unit: str
    objective_value: float | None
    bound: float | None
    gap: float | None
    plans: list[Plan]
    table: CandidateTable
    compiled: CompiledModel
    stats: dict = field(default_factory=dict)
    # Cheaper prices the confidence floor left out, one sentence each (the plan rests on trusted prices).
    price_notes: list[str] = field(default_factory=list)
    # Optional work the time limit left undone (named, so the report says what is missing).
    skipped: list[str] = field(default_factory=list)

    @property
    def plan(self) -> Plan | None:
        return self.plans[0] if self.plans else None


def make_solver(settings: SolverSettings) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = settings.seconds_left()
    solver.parameters.num_workers = settings.workers
    solver.parameters.random_seed = settings.seed
    solver.parameters.log_search_progress = False
    return solver


def objective_metric(work: ResolvedWorkload) -> str:
    return OBJECTIVE_METRIC[(work.spec.objective, work.kind == "training")]


def plan_value(plan: Plan, work: ResolvedWorkload) -> float | None:
    return plan.totals.get(objective_metric(work))


def solve(work: ResolvedWorkload, catalog: Catalog, settings: SolverSettings | None = None, top: int = 1,
          table: CandidateTable | None = None) -> SolveResult:
    settings = settings or SolverSettings()
    started = time.perf_counter()
    table = table or enumerate_candidates(work, catalog)
    enumerated = time.perf_counter()
    compiled = compile_model(table, work.spec)
    compiled_at = time.perf_counter()
    result = solve_compiled(work, catalog, compiled, settings, top)
    result.compiled = compiled
    result.stats.update({
        "candidates": len(table.rows),
        "evaluated": table.evaluated,
        "variables": len(compiled.model.proto.variables),
        "constraints": len(compiled.model.proto.constraints),
        "enumerate_s": enumerated - started,
        "compile_s": compiled_at - enumerated,
        "solve_s": time.perf_counter() - compiled_at,
        "workers": settings.workers,
    })
    return result


def scenario_model(compiled: CompiledModel, dropped: frozenset[str] = frozenset(),
                   allowed_rows: set[int] | None = None) -> cp_model.CpModel:
    """A clone of the compiled model with every limit literal fixed (off for `dropped`), optionally restricted
    to some rows. The compiled model itself is never changed, so one compilation serves every question."""
    model = compiled.model.clone()
    for unit_id, lit in compiled.limit_literals.items():
        model.add(model.get_bool_var_from_proto_index(lit.index) == (0 if unit_id in dropped else 1))
    if allowed_rows is not None:
        for i, x in enumerate(compiled.x):
            if i not in allowed_rows:
                model.add(model.get_bool_var_from_proto_index(x.index) == 0)
    return model


def solve_compiled(work: ResolvedWorkload, catalog: Catalog, compiled: CompiledModel, settings: SolverSettings,
                   top: int = 1, dropped: frozenset[str] = frozenset(), allowed_rows: set[int] | None = None,
                   hint: CompiledModel | None = None, feasibility_only: bool = False) -> SolveResult:
    """The `top` best plans, each tie-broken (fewer devices, lower latency). `feasibility_only`: the first plan
    CP-SAT finds, neither minimised nor tie-broken, for a caller that reads only whether one exists."""
    model = scenario_model(compiled, dropped, allowed_rows)
    if feasibility_only:
        solver = make_solver(settings)
        name = STATUS.get(solver.solve(model), "timeout")
        found = name in ("optimal", "feasible")
        plans = [extract_plan(work, catalog, compiled, solver)] if found else []
        return SolveResult(status="feasible" if found else name, objective_name=work.spec.objective,
                           objective_unit=OBJECTIVE_UNITS[(work.spec.objective, work.kind == "training")],
                           objective_value=plan_value(plans[0], work) if plans else None, bound=None, gap=None,
                           plans=plans, table=compiled.table, compiled=compiled, stats={}, price_notes=[])
    objective_name = work.spec.objective
    unit = OBJECTIVE_UNITS[(objective_name, work.kind == "training")]
    plans: list[Plan] = []
    tie_note = None  # said only when the usual tie-break could not be applied
    status, value, bound, gap = "infeasible", None, None, None
    for k in range(max(1, top)):
        solver = make_solver(settings)
        model.minimize(compiled.objective)
        code = solver.solve(model)
        name = STATUS.get(code, "timeout")
        if name not in ("optimal", "feasible"):
            if k == 0:
                status = name
            break
        best = round(solver.objective_value)
        if k == 0:
            status = name
            scale = compiled.objective_scale
            bound = solver.best_objective_bound / scale
        # Tie-break on a clone: keep the optimum, prefer fewer devices, lower latency, then the earlier row.
        tie_model = model.clone()
        _hint(tie_model, compiled, solver)
        tie_model.add(compiled.objective <= best)
        _rule_out_dearer_than(tie_model, compiled, work, best / compiled.objective_scale)
        tie_model.minimize(compiled.secondary)
        tie_solver = make_solver(settings)
        tie_code = tie_solver.solve(tie_model)
        if tie_code == cp_model.MODEL_INVALID and compiled.secondary_coarse is not None:
            tie_model.minimize(compiled.secondary_coarse)  # the full weighting overflows at this table size
            tie_solver = make_solver(settings)
            tie_code = tie_solver.solve(tie_model)
            tie_note = "ties broken by fewer devices, then lower latency (the idle-device preference overflows " \
                       "the solver's range at this table size)"
        elif tie_code == cp_model.MODEL_INVALID:
            tie_note = "ties not broken (the tie-break overflows the solver's range at this table size)"
        chosen = tie_solver if tie_code in (cp_model.OPTIMAL, cp_model.FEASIBLE) else solver
        if k == 0 and tie_code == cp_model.FEASIBLE and name == "optimal":
            status = "feasible"  # the tie-break itself was not proven within the time limit
        plans.append(extract_plan(work, catalog, compiled, chosen))
        _exclude(model, compiled, chosen)
    if plans:
        values = [plan_value(p, work) for p in plans]
        value = values[0]
        if value is not None and bound is not None:
            gap = 0.0 if status == "optimal" else max(0.0, (value - bound) / value) if value else 0.0
            if status == "optimal":
                bound = value
    return SolveResult(status=status, objective_name=objective_name, objective_unit=unit, objective_value=value,
                       bound=bound, gap=gap, plans=plans, table=compiled.table, compiled=compiled,
                       stats={"top_values": [plan_value(p, work) for p in plans],
                              **({"tie_break": tie_note} if tie_note else {})},
                       price_notes=price_notes(work, catalog, plans[0]) if plans else [])


def with_every_price(work: ResolvedWorkload, catalog: Catalog, result: SolveResult,
                     settings: SolverSettings) -> None:
    """When the confidence floor left offerings out, solve once more with every price and, if that plan is
    better, say what it would give (so the trusted plan's cost of trust is visible)."""
    floor = work.spec.search.min_price_confidence
    if floor == "low" or result.objective_value is None:
        return
    wanted = set(work.spec.search.devices)
    # Only devices with a price below the floor can change the answer: search just those (the rest of the
    # search space is what the plan already beat), which keeps this second look far cheaper than the first.
    devices = sorted({catalog.systems[o.system].accelerator for o in catalog.offerings
                      if not confident_enough(o, work.spec)
                      and (not wanted or catalog.systems[o.system].accelerator in wanted)})
    if not devices:
        return
    if settings.expired:
        result.skipped.append("the look at lower-confidence prices")
        return
    spec = work.spec.model_copy(update={"search": work.spec.search.model_copy(
        update={"min_price_confidence": "low", "devices": devices})})
    second = replace_work(work, spec)
    table = enumerate_candidates(second, catalog, result.table.shapes)
    if _least_possible(table, work.spec.objective) >= result.objective_value - 1e-9:
        return  # no plan of these rows can beat the trusted one: no need to find the best of them
    other = solve(second, catalog, settings, table=table)
    if other.plan is None or other.objective_value is None or other.objective_value >= result.objective_value - 1e-9:
        return
    parts = "; ".join(f"{p.evaluation.candidate.devices} x {p.evaluation.candidate.device} on "
                      f"{p.evaluation.candidate.offering.provider} {p.evaluation.candidate.offering.region} "
                      f"{p.evaluation.candidate.offering.pricing} ({p.evaluation.candidate.offering.confidence} "
                      f"confidence)" if p.evaluation.candidate.offering else f"{p.evaluation.candidate.devices} x "
                      f"{p.evaluation.candidate.device} owned" for p in other.plan.parts)
    result.price_notes.append(
        f"with every price, low-confidence ones too: {parts} at {other.objective_value:,.4g} {other.objective_unit} "
        f"against {result.objective_value:,.4g}; set `search.min_price_confidence: low` to plan on it")


def _least_possible(table: CandidateTable, objective: str) -> float:
    """A floor under every plan of `table` (0 where none is known cheaply). A training plan is one row, so
    its value is that row's. A serving or vision plan pays at least its per-device price for every device
    and carries at most each replica's lowest rate limit, so it costs at least the demand times the
    cheapest price per unit of rate over its rows, and at least the instances of its cheapest replica."""
    if table.kind == "training":
        # A row whose value is unknown is kept out of the model (compile.py), so it is no floor.
        values = (_training_objective_value(r, objective) for r in table.training_rows)
        return min((v for v in values if v is not None), default=math.inf)
    if objective != "cost":
        return 0.0
    per_rate, first_unit = [], []
    for r in table.replica_rows:
        if r.usd_per_unit_hour is None or not r.unit_devices:
            return 0.0  # an owned device: its hours cost nothing here
        rate = min(r.rate_limits.values(), default=0.0)
        if rate > 0:
            per_rate.append(r.devices_per_replica * r.usd_per_unit_hour / r.unit_devices / rate)
            first_unit.append(math.ceil(r.devices_per_replica / r.unit_devices) * r.usd_per_unit_hour)
    # And a plan rents at least the instances of one replica.
    return max(table.demand * min(per_rate, default=math.inf), min(first_unit, default=math.inf))


def replace_work(work: ResolvedWorkload, spec) -> ResolvedWorkload:
    return ResolvedWorkload(spec=spec, model_id=work.model_id, shape=work.shape, footprint=work.footprint)


def price_notes(work: ResolvedWorkload, catalog: Catalog, plan) -> list[str]:
    """Say when a price below the spec's confidence floor would have been cheaper for a chosen device."""
    notes = []
    floor = work.spec.search.min_price_confidence
    for part in plan.parts:
        c = part.evaluation.candidate
        if c.offering is None:
            continue
        cheaper = cheaper_unconfident_offers(catalog, work.spec, c.device, c.offering.usd_per_device_hour)
        if cheaper:
            o = cheaper[0]
            notes.append(f"{c.device}: {o.provider} {o.region} {o.pricing} ({o.instance}) lists "
                         f"${o.usd_per_device_hour:.2f} per device-hour against the plan's "
                         f"${c.offering.usd_per_device_hour:.2f}, at {o.confidence} price confidence (below the "
                         f"`search.min_price_confidence: {floor}` floor); set it to {o.confidence} to weigh it")
    return notes


def _rule_out_dearer_than(model: cp_model.CpModel, compiled: CompiledModel, work: ResolvedWorkload,
                          usd_per_hour: float) -> None:
    """Rows whose first billed instance alone costs more than `usd_per_hour` are in no plan that cheap: fixed
    off in the tie-break, whose presolve then has a fraction of a large table to look at."""
    if work.spec.objective != "cost" or compiled.table.kind == "training":
        return
    ceiling = usd_per_hour * (1 + 1e-9) + 1e-9
    for r in compiled.table.replica_rows:
        if r.usd_per_unit_hour is not None and r.unit_devices and \
                math.ceil(r.devices_per_replica / r.unit_devices) * r.usd_per_unit_hour > ceiling:
            model.add(model.get_bool_var_from_proto_index(compiled.x[r.index].index) == 0)


def _hint(model: cp_model.CpModel, compiled: CompiledModel, solver: cp_model.CpSolver) -> None:
    model.clear_hints()
    for v in compiled.x + compiled.n + compiled.load:
        model.add_hint(v, solver.value(v))


def _purchase(row) -> tuple:
    """What makes two plans distinct for a buyer: the device and the offering it is bought on (and, for
    training, how many), not the layout or batch run on it: `--top K` lists K different purchases."""
    c = row.candidate
    o = c.offering
    where = (o.provider, o.region, o.pricing, o.instance) if o else ("owned", c.system)
    return (c.device, c.system, where, c.devices if row.__class__.__name__ == "TrainingRow" else 0)


def _exclude(model: cp_model.CpModel, compiled: CompiledModel, solver: cp_model.CpSolver) -> None:
    """Forbid the chosen purchases (in every layout and batch), so the next solve finds a distinct one."""
    rows = compiled.table.rows
    chosen = {_purchase(r) for r in rows if solver.boolean_value(compiled.x[r.index])}
    same = [compiled.x[r.index] for r in rows if _purchase(r) in chosen]
    groups = len(chosen)
    # A plan with several parts is excluded as a whole: at least one of its configurations must go.
    model.add(sum(same) <= len(same) - 1 if groups > 1 else sum(same) == 0)


def extract_plan(work: ResolvedWorkload, catalog: Catalog, compiled: CompiledModel, solver: cp_model.CpSolver) -> Plan:
    table = compiled.table
    if table.kind == "training":
        row = next(r for r in table.training_rows if solver.boolean_value(compiled.x[r.index]))
        return rebuild(work, catalog, [(row.candidate, 1.0)])
    parts = []
    for r in table.replica_rows:
        if not solver.boolean_value(compiled.x[r.index]):
            continue
        replicas = solver.value(compiled.n[r.index])
        share = solver.value(compiled.load[r.index]) / DEMAND_UNITS if compiled.load else 1.0
        cand = replace(r.candidate, parallel=replace(r.candidate.parallel, dp=replicas))
        parts.append((cand, share))
    return rebuild(work, catalog, parts)


__all__ = ["solve", "solve_compiled", "SolveResult", "SolverSettings", "plan_value", "extract_plan"]
