"""The CP-SAT optimum equals brute-force enumeration on small random tables (hundreds of instances).

The brute force uses the same fixed-point numbers as the model (so the comparison is exact) but none of
its formulation: it tries every row and the fewest replicas that meet every limit.
"""

from __future__ import annotations

import math
import random

import pytest
from ortools.sat.python import cp_model

from planner.compile import DEMAND_UNITS, MICRO, _rate_units, active_limits, compile_model
from planner.units import to_bound, to_fixed
from planner.solve import scenario_model
from synthetic import replica_row, replica_table, serving_spec, training_row, training_spec, training_table

INSTANCES = 120  # per parametrised family below: 240 in all


def solve_value(table, spec) -> int | None:
    compiled = compile_model(table, spec)
    model = scenario_model(compiled)
    model.minimize(compiled.objective)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    status = solver.solve(model)
    if status == cp_model.INFEASIBLE:
        return None
    assert status == cp_model.OPTIMAL
    return round(solver.objective_value)


def brute_replicas(table, spec) -> int | None:
    limits = active_limits(spec, table.kind)
    demand = table.demand
    best = None
    for r in table.replica_rows:
        low, high = 1, 100_000
        feasible = True
        for unit_id in ("throughput.max_utilization", "latency.ttft_p99", "latency.tpot", "latency.e2e_p99"):
            if unit_id in limits and unit_id in r.rate_limits:
                units = _rate_units(r.rate_limits[unit_id], demand)
                if units == 0:
                    feasible = False
                    break
                low = max(low, math.ceil(DEMAND_UNITS / units))
        if not feasible:
            continue
        if spec.limits.max_devices:
            high = min(high, spec.limits.max_devices // r.devices_per_replica)
        inventory = spec.limits.inventory.get(r.candidate.device)
        if inventory is not None:
            high = min(high, inventory // r.devices_per_replica)
        finite = [v for v in r.rate_limits.values() if 0 < v < math.inf]
        if finite:
            high = min(high, math.ceil(demand / min(finite)) + 1)
        n = low
        if n > high:
            continue
        if "power.site_cap" in limits:
            if n * to_fixed(r.power_peak_w, 1) > to_bound(limits["power.site_cap"] * 1000, 1):
                continue
        cost = math.ceil(n * r.devices_per_replica / r.unit_devices) * to_fixed(r.usd_per_unit_hour, MICRO)
        if "budget.hourly" in limits and cost > to_bound(limits["budget.hourly"], MICRO):
            continue
        best = cost if best is None else min(best, cost)
    return best


def random_replica_instance(rng: random.Random):
    rows = []
    for i in range(rng.randint(1, 7)):
        rates = {"throughput.max_utilization": rng.choice([0.5, 1.3, 2.0, 4.7, 9.0, 20.0])}
        for unit in ("latency.ttft_p99", "latency.tpot"):
            if rng.random() < 0.6:
                rates[unit] = rng.choice([0.0, 0.8, 3.3, 7.5, 50.0])
        rows.append(replica_row(i, device=rng.choice(["gpu-a", "gpu-b"]), dpr=rng.choice([1, 2, 4, 8]),
                                rates=rates, price=rng.choice([0.7, 1.9, 3.5, 12.0, 55.0]),
                                unit_devices=rng.choice([1, 8]), static_w=rng.choice([60.0, 300.0, 2000.0]),
                                per_rate_w=rng.choice([1.0, 25.0, 200.0])))
    limits = {}
    if rng.random() < 0.5:
        limits["max_devices"] = rng.choice([4, 8, 16, 64])
    if rng.random() < 0.5:
        limits["power_kw"] = rng.choice([0.5, 2.0, 10.0])
    if rng.random() < 0.4:
        limits["budget_usd_per_hour"] = rng.choice([5.0, 30.0, 200.0])
    if rng.random() < 0.3:
        limits["inventory"] = {"gpu-a": rng.choice([2, 8])}
    slo = {}
    if any("latency.ttft_p99" in r.rate_limits for r in rows):
        slo["ttft_p99_ms"] = 500
    if any("latency.tpot" in r.rate_limits for r in rows):
        slo["tpot_ms"] = 50
    spec = serving_spec(**slo, **limits)
    # rows carry a rate only for limits the spec sets, as the candidate table builds them
    for r in rows:
        for unit, key in (("latency.ttft_p99", "ttft_p99_ms"), ("latency.tpot", "tpot_ms")):
            if key not in slo:
                r.rate_limits.pop(unit, None)
    return replica_table(rows, demand=rng.choice([0.7, 3.0, 10.0, 41.0])), spec


@pytest.mark.parametrize("seed", range(INSTANCES))
def test_replica_optimum_matches_brute_force(seed):
    table, spec = random_replica_instance(random.Random(seed))
    assert solve_value(table, spec) == brute_replicas(table, spec)


def brute_training(table, spec) -> int | None:
    limits = active_limits(spec, "training")
    best = None
    for r in table.training_rows:
        m = r.evaluation.metrics
        ok = True
        for unit_id, metric, scale in (("time.deadline", "time_to_train_days", 10_000), ("budget.job", "usd_per_job", 100),
                                       ("devices.max_count", "devices", 1), ("power.site_cap", "power_kw", 1000)):
            if unit_id in limits:
                value = m.get(metric)
                if value is None or to_fixed(value, scale) > to_bound(limits[unit_id], scale):
                    ok = False
        if ok:
            cost = to_fixed(m["usd_per_job"], 100)
            best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(INSTANCES))
def test_training_optimum_matches_brute_force(seed):
    rng = random.Random(1000 + seed)
    rows = [training_row(i, devices=rng.choice([8, 16, 64, 512]),
                         metrics={"usd_per_job": rng.uniform(1e3, 1e6), "time_to_train_days": rng.uniform(1, 60),
                                  "power_kw": rng.choice([None, 5.0, 40.0, 300.0])})
            for i in range(rng.randint(1, 12))]
    limits = {}
    if rng.random() < 0.6:
        limits["deadline_days"] = rng.choice([7, 20, 45])
    if rng.random() < 0.4:
        limits["budget_usd"] = rng.choice([5e4, 3e5])
    if rng.random() < 0.4:
        limits["max_devices"] = rng.choice([16, 64])
    if rng.random() < 0.3:
        limits["power_kw"] = rng.choice([10.0, 100.0])
    spec = training_spec(**limits)
    assert solve_value(training_table(rows), spec) == brute_training(training_table(rows), spec)
