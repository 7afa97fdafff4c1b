"""One focused test per constraint unit: a tiny table where that unit alone decides the answer.

`test_every_unit_has_a_focused_test` fails when a unit is added to the registry without a test here.
"""

from __future__ import annotations

import math

from ortools.sat.python import cp_model

from planner.compile import compile_model
from planner.solve import scenario_model
from planner.constraints import UNITS
from synthetic import replica_row, replica_table, serving_spec, training_row, training_spec, training_table


def chosen(table, spec, limits=None) -> tuple[set[int], dict[int, int]]:
    compiled = compile_model(table, spec, limits)
    model = scenario_model(compiled)
    model.minimize(compiled.objective)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return set(), {}
    rows = {i for i, x in enumerate(compiled.x) if solver.boolean_value(x)}
    replicas = {i: solver.value(compiled.n[i]) for i in rows} if compiled.n else {}
    return rows, replicas


def two_rows(cheap_rates: dict, dear_rates: dict, **kw):
    # Row 0 is cheap but weak on the limit under test; row 1 is dear and strong.
    return [replica_row(0, rates=cheap_rates, price=1.0, **kw.get("cheap", {})),
            replica_row(1, rates=dear_rates, price=5.0, **kw.get("dear", {}))]


def test_unit_memory_fits_device(tmp_path):
    # Memory is physical: a batch that does not fit never becomes a row, and the table records it.
    from planner.candidates import enumerate_candidates
    from planner.catalog.loader import load_catalogs
    from planner.evaluate import resolve_workload
    from planner.spec import load_spec

    spec = tmp_path / "s.yaml"
    spec.write_text("name: t\nworkload: {kind: serving, model: llama-3.1-405b, traffic: {requests_per_s: 1, "
                    "input_tokens: 4096, output_tokens: 512}}\nsearch: {devices: [l4], precisions: [bf16]}\n")
    catalog = load_catalogs()
    table = enumerate_candidates(resolve_workload(load_spec(spec), catalog), catalog)
    assert not table.rows
    assert table.excluded["memory.fits_device"].count > 0


def test_unit_throughput_max_utilization():
    rows = two_rows({"throughput.max_utilization": 10.0}, {"throughput.max_utilization": 10.0})
    spec = serving_spec()
    picked, n = chosen(replica_table(rows, demand=25.0), spec)
    assert picked == {0} and n[0] == 3  # ceil(25 / 10)


def test_unit_latency_ttft_p99():
    rows = two_rows({"throughput.max_utilization": 100.0, "latency.ttft_p99": 0.0},
                    {"throughput.max_utilization": 100.0, "latency.ttft_p99": 100.0})
    assert chosen(replica_table(rows, 10.0), serving_spec(ttft_p99_ms=100))[0] == {1}
    assert chosen(replica_table(rows, 10.0), serving_spec(ttft_p99_ms=100), {"throughput.max_utilization": 0.9})[0] == {0}


def test_unit_latency_tpot():
    rows = two_rows({"throughput.max_utilization": 100.0, "latency.tpot": 1.0},
                    {"throughput.max_utilization": 100.0, "latency.tpot": 100.0})
    # row 0 needs 10 replicas (10 x $1) to keep TPOT: dearer than one replica of row 1 ($5)
    assert chosen(replica_table(rows, 10.0), serving_spec(tpot_ms=30))[0] == {1}


def test_unit_latency_ttft_mean():
    rows = two_rows({"throughput.max_utilization": 100.0, "latency.ttft_mean": 0.5},
                    {"throughput.max_utilization": 100.0, "latency.ttft_mean": 100.0})
    # row 0 keeps the mean TTFT only at 0.5 req/s per replica: 20 replicas cost more than one of row 1
    assert chosen(replica_table(rows, 10.0), serving_spec(ttft_mean_ms=300))[0] == {1}
    assert chosen(replica_table(rows, 10.0), serving_spec(ttft_mean_ms=300), {"throughput.max_utilization": 0.9})[0] == {0}


def test_unit_latency_tpot_p99():
    rows = two_rows({"throughput.max_utilization": 100.0, "latency.tpot_p99": 1.0},
                    {"throughput.max_utilization": 100.0, "latency.tpot_p99": 100.0})
    assert chosen(replica_table(rows, 10.0), serving_spec(tpot_p99_ms=50))[0] == {1}
    assert chosen(replica_table(rows, 10.0), serving_spec(tpot_p99_ms=50), {"throughput.max_utilization": 0.9})[0] == {0}


def test_unit_latency_e2e_p99():
    rows = two_rows({"throughput.max_utilization": 100.0, "latency.e2e_p99": 0.0},
                    {"throughput.max_utilization": 100.0, "latency.e2e_p99": 50.0})
    assert chosen(replica_table(rows, 10.0), serving_spec(e2e_p99_ms=1000))[0] == {1}


def test_unit_latency_frame_budget():
    # Row 0 needs at least 20 frames/s per replica to fill its batch in time: with demand 30 only one replica
    # of it can be fed, and one replica cannot carry 30 frames/s at its utilisation cap.
    rows = [replica_row(0, rates={"throughput.max_utilization": 25.0, "latency.frame_budget": math.inf},
                        price=1.0, min_rate=20.0),
            replica_row(1, rates={"throughput.max_utilization": 40.0, "latency.frame_budget": math.inf}, price=3.0)]
    spec = serving_spec()
    limits = {"throughput.max_utilization": 0.9, "latency.frame_budget": 33.0}
    assert chosen(replica_table(rows, 30.0, kind="vision"), spec, limits)[0] == {1}
    assert chosen(replica_table(rows, 30.0, kind="vision"), spec, {"throughput.max_utilization": 0.9})[0] == {0}


def test_unit_power_site_cap():
    # peak power per replica is 8x static in these synthetic rows: 40 kW against 4 kW
    rows = [replica_row(0, rates={"throughput.max_utilization": 100.0}, price=1.0, static_w=5000.0),
            replica_row(1, rates={"throughput.max_utilization": 100.0}, price=2.0, static_w=500.0)]
    assert chosen(replica_table(rows, 10.0), serving_spec(power_kw=5.0))[0] == {1}
    assert chosen(replica_table(rows, 10.0), serving_spec())[0] == {0}


def test_unit_power_site_cap_rules_out_rows_without_tdp():
    rows = [replica_row(0, rates={"throughput.max_utilization": 100.0}, price=1.0, static_w=None, per_rate_w=None),
            replica_row(1, rates={"throughput.max_utilization": 100.0}, price=2.0)]
    assert chosen(replica_table(rows, 10.0), serving_spec(power_kw=100.0))[0] == {1}


def test_unit_budget_hourly():
    rows = [replica_row(0, rates={"throughput.max_utilization": 5.0}, price=3.0)]
    assert chosen(replica_table(rows, 10.0), serving_spec(budget_usd_per_hour=5.0))[0] == set()
    assert chosen(replica_table(rows, 10.0), serving_spec(budget_usd_per_hour=6.0))[0] == {0}


def test_unit_budget_job():
    rows = [training_row(0, devices=8, metrics={"usd_per_job": 900.0, "time_to_train_days": 1.0}),
            training_row(1, devices=8, metrics={"usd_per_job": 500.0, "time_to_train_days": 9.0})]
    # cost objective picks the cheaper job; a budget below it makes the spec infeasible
    assert chosen(training_table(rows), training_spec(budget_usd=600.0))[0] == {1}
    assert chosen(training_table(rows), training_spec(budget_usd=400.0))[0] == set()


def test_unit_time_deadline():
    rows = [training_row(0, devices=8, metrics={"usd_per_job": 900.0, "time_to_train_days": 1.0}),
            training_row(1, devices=8, metrics={"usd_per_job": 500.0, "time_to_train_days": 9.0})]
    assert chosen(training_table(rows), training_spec(deadline_days=5.0))[0] == {0}
    assert chosen(training_table(rows), training_spec())[0] == {1}


def test_unit_devices_max_count():
    rows = [replica_row(0, dpr=8, rates={"throughput.max_utilization": 100.0}, price=1.0),
            replica_row(1, dpr=2, rates={"throughput.max_utilization": 100.0}, price=5.0)]
    assert chosen(replica_table(rows, 10.0), serving_spec(max_devices=4))[0] == {1}


def test_unit_inventory_per_device():
    rows = [replica_row(0, device="gpu-a", rates={"throughput.max_utilization": 5.0}, price=1.0),
            replica_row(1, device="gpu-b", rates={"throughput.max_utilization": 5.0}, price=2.0)]
    spec = serving_spec(inventory={"gpu-a": 1})
    assert chosen(replica_table(rows, 10.0), spec)[0] == {1}  # gpu-a would need 2 replicas


def test_every_unit_has_a_focused_test():
    tested = {name[len("test_unit_"):] for name in globals() if name.startswith("test_unit_")}
    missing = [u.id for u in UNITS if not any(t.startswith(u.id.replace(".", "_")) for t in tested)]
    assert not missing, f"constraint units without a focused test: {missing}"
