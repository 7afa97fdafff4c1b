"""The tier choice as a CP-SAT model, its solve, and the plan it returns.

Formulation (options o of workload w, see `options.py`):
    x_o in {0,1};  s_w in {0,1} (split chosen; 0 when the workload has no split)
    sum_{o edge or cloud} x_o + s_w = 1,  sum_{o split-edge} x_o = s_w,  sum_{o split-cloud} x_o = s_w
    each limit item i (a named unit on one workload, the site or one link) adds its own constraints:
        row units (latency, TPOT, locality, video decode):  x_o = 0 for every option whose value exceeds the
            bound; a shared row's latency and TPOT also count every other workload q on its device:
            x_o => value_o + sum_q (block_q + value_o share_q) x_q <= bound   (see units.wait_terms)
        pool unit (devices shared by workloads):  per device, sum share_q x_q <= headroom x units, and the
            same for the hosts' decode and CPU load
    shared devices (structural): at most one unit count per device; x_q <= (device bought); the models of
        the workloads sharing it fit one unit's memory
        sum units (site power, slots, budget, link bandwidth):  sum_o v_io x_o <= bound
        accuracy:  sum_o a_o x_o >= minimum   (a split contributes both halves' shares)
Objective: cost (USD per site per month) or energy (kWh per site per month), in fixed point; ties go to
lower latency, then to the earlier option, in a second solve with the objective fixed.

A `Question` (the explainer's protocol, `planner.explain.question`) drops items, re-bounds them or restricts
the rows; the model is rebuilt for each (a few
hundred booleans: milliseconds), so every answer, the plan's and the explainer's, comes from this one
formulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from planner._ortools import cp_model
from planner.explain.question import Limit, Question
from planner.tier.options import TierOption, TierTable
from planner.tier.spec import TierSpec
from planner.tier.units import (
    WAITS_FOR_OTHERS,
    kind_of,
    row_value,
    sum_value,
    wait_terms,
)
from planner.units import to_bound, to_fixed

SCALE = {"cost": 10_000, "energy": 1_000}  # 0.01 cent, Wh
SUM_SCALE = 1_000
MS_SCALE = 100  # 10 µs
WHOLE_ROLES = ("edge", "edge-shared", "cloud")
EVERYTHING = Question()  # every limit as the spec sets it, every option allowed


@dataclass
class TierPlan:
    status: str  # optimal | feasible | infeasible | unknown
    objective: str
    options: list[TierOption] = field(default_factory=list)

    @property
    def usd_per_site_month(self) -> float:
        return sum(o.usd_per_month for o in self.options)

    @property
    def kwh_per_site_month(self) -> float | None:
        values = [o.energy_kwh_per_month for o in self.options]
        return None if any(v is None for v in values) else sum(values)

    @property
    def value(self) -> float | None:
        if not self.options:
            return None
        return self.usd_per_site_month if self.objective == "cost" else self.kwh_per_site_month

    def of(self, workload: str) -> list[TierOption]:
        return [o for o in self.options if o.workload == workload]

    def tier_of(self, workload: str) -> str:
        roles = {o.role for o in self.of(workload)}
        return "split" if "split-edge" in roles else next(iter(roles), "none").split("-")[0]


@dataclass
class _Pool:
    units: list[TierOption] = field(default_factory=list)  # one row per unit count, at most one chosen
    shared: list[TierOption] = field(default_factory=list)  # the workloads' rows that may run there


def _load(o: TierOption, load: str) -> float:
    return o.detail["share"] if load == "share" else (o.host_load or 0.0)


def _add_pools(m, rows: list[TierOption], x: dict) -> dict[str, _Pool]:
    """Shared devices: a pool's unit count is chosen once; a shared row needs its pool bought, and every
    unit holds the models of all the workloads that share it (memory is structural, not a user limit)."""
    pools: dict[str, _Pool] = {}
    for o in rows:
        if o.role == "pool":
            pools.setdefault(o.detail["pool"], _Pool()).units.append(o)
        elif o.role == "edge-shared":
            pools.setdefault(o.detail["pool"], _Pool()).shared.append(o)
    for pool in pools.values():
        bought = sum(x[o.index] for o in pool.units)
        if pool.units:
            m.AddAtMostOne(x[o.index] for o in pool.units)
        for o in pool.shared:
            m.Add(x[o.index] <= bought)
        if pool.units and pool.shared:
            usable = pool.units[0].detail["usable_memory_gb"]
            m.Add(sum(math.ceil(o.detail["memory_gb"] * SUM_SCALE) * x[o.index] for o in pool.shared)
                  <= math.floor(usable * SUM_SCALE) * bought)
    return pools


def solve_tier(spec: TierSpec, table: TierTable, items: list[Limit], question: Question = EVERYTHING,
               time_limit_s: float = 10.0) -> TierPlan:
    bounds = {i.id: i.bound for i in items} | dict(question.bounds)
    active = [i for i in items if i.id not in question.dropped]
    objective = spec.objective
    rows = [o for o in table.options if question.allowed is None or o.index in question.allowed]
    m = cp_model.CpModel()
    x = {o.index: m.NewBoolVar(f"x{o.index}") for o in rows}
    for w in spec.workloads:
        mine = [o for o in rows if o.workload == w.name]
        if not mine:
            return TierPlan("infeasible", objective)  # nothing left that can run this workload
        whole = [x[o.index] for o in mine if o.role in WHOLE_ROLES]
        if w.split is None:
            m.AddExactlyOne(whole)
            continue
        s = m.NewBoolVar(f"split[{w.name}]")
        m.Add(sum(whole) + s == 1)
        m.Add(sum(x[o.index] for o in mine if o.role == "split-edge") == s)
        m.Add(sum(x[o.index] for o in mine if o.role == "split-cloud") == s)
    pools = _add_pools(m, rows, x)
    for item in active:
        bound = bounds[item.id]
        kind = kind_of(item)
        if kind == "row":
            for o in rows:
                value = row_value(item, o)
                if value is None:
                    continue
                if value > bound + 1e-9:
                    m.Add(x[o.index] == 0)
                elif o.role == "edge-shared" and item.unit_id in WAITS_FOR_OTHERS:
                    # Co-located workloads: each other one holds the device a while and takes its share of it.
                    waits = wait_terms(o, pools[o.detail["pool"]].shared, value)
                    m.Add(to_fixed(value, MS_SCALE) + sum(to_fixed(ms, MS_SCALE) * x[q.index] for q, ms in waits)
                          <= to_bound(bound, MS_SCALE)).OnlyEnforceIf(x[o.index])
        elif kind == "pool":
            for pool in pools.values():
                capacity = sum(math.floor(bound * SUM_SCALE) * o.units * x[o.index] for o in pool.units)
                for load in ("share", "host_load"):
                    m.Add(sum(math.ceil(_load(o, load) * SUM_SCALE) * x[o.index] for o in pool.shared)
                          <= capacity)
        elif kind == "sum":
            m.Add(sum(to_fixed(sum_value(item, o), SUM_SCALE) * x[o.index] for o in rows)
                  <= to_bound(bound, SUM_SCALE))
        else:  # min-sum: accuracy, rounded down so the integer check never admits what the float one rejects
            m.Add(sum(math.floor(sum_value(item, o) * 1e6) * x[o.index] for o in rows
                      if o.workload == item.workload) >= math.ceil(bound * 1e6 - 1e-6))
    scale = SCALE[objective]

    def cost_of(o: TierOption) -> int:
        value = o.usd_per_month if objective == "cost" else o.energy_kwh_per_month
        return to_fixed(value, scale)

    m.Minimize(sum(cost_of(o) * x[o.index] for o in rows))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1  # a few hundred booleans: presolve solves it; one worker is deterministic
    solver.parameters.max_time_in_seconds = time_limit_s
    status = solver.Solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return TierPlan("infeasible" if status == cp_model.INFEASIBLE else "unknown", objective)
    best = round(solver.ObjectiveValue())
    m.Add(sum(cost_of(o) * x[o.index] for o in rows) == best)
    m.Minimize(sum((to_fixed(o.latency_ms, 100) * len(table.options) + o.index) * x[o.index] for o in rows))
    status = solver.Solve(m)
    chosen = [o for o in rows if solver.Value(x[o.index])]
    return TierPlan("optimal" if status == cp_model.OPTIMAL else "feasible", objective, chosen)
