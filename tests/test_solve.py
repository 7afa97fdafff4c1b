"""End-to-end `planner solve`: every example, the checker on every returned plan, determinism, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.catalog.loader import load_catalogs
from planner.check import check_plan, violations
from planner.cli import main
from planner.evaluate import resolve_workload
from planner.solve import SolverSettings, solve
from planner.spec import WorkloadSpec, load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
INFEASIBLE = {"impossible-tiny-budget"}


@pytest.fixture(scope="module")
def catalog():
    return load_catalogs()


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_solves_and_passes_the_checker(example, catalog):
    work = resolve_workload(load_spec(example), catalog)
    result = solve(work, catalog, SolverSettings(workers=8))
    if example.stem in INFEASIBLE:
        assert result.status == "infeasible" and result.plan is None
        return
    assert result.status == "optimal"
    assert result.gap == 0.0 and result.bound == pytest.approx(result.objective_value)
    assert not violations(check_plan(work, catalog, result.plan))
    for part in result.plan.parts:
        c = part.evaluation.candidate
        o, system = c.offering, catalog.systems[c.system]
        if o is None or o.devices >= system.devices_per_node or system.scaleup.topology.startswith("torus"):
            continue
        # Instances smaller than a node share no scale-up link: what must talk over it fits one instance.
        talking = c.parallel.tp * c.parallel.pp if work.kind != "training" else c.devices
        assert talking <= o.devices, (example.stem, c.label(), o.instance)


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_json_contract_keys():
    result = run("solve", str(EXAMPLES / "llama3-70b-chat.yaml"), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "optimal"
    assert set(data["objective"]) == {"name", "value", "unit"} and data["objective"]["unit"] == "usd_per_hour"
    plan = data["plan"]
    for key in ("device", "offering", "devices", "nodes", "replicas", "parallel", "precision", "batch", "predicted",
                "cost"):
        assert key in plan
    assert set(plan["parallel"]) >= {"dp", "tp", "pp", "ep"}
    assert set(plan["offering"]) >= {"provider", "region", "pricing", "instance"}
    assert {"ttft_p99_ms", "tpot_ms", "tokens_per_s", "memory_gib_per_device", "power_kw"} <= set(plan["predicted"])
    assert {"usd_per_hour", "usd_per_million_tokens"} <= set(plan["cost"])
    ids = {c["id"] for c in data["constraints"]}
    assert {"latency.tpot", "latency.ttft_p99", "power.site_cap", "budget.hourly", "devices.max_count"} <= ids
    tpot = next(c for c in data["constraints"] if c["id"] == "latency.tpot")
    assert tpot["spec_path"] == "workload.slo.tpot_ms" and tpot["limit"] == 50 and tpot["unit"] == "ms"
    assert tpot["slack"] == pytest.approx(tpot["limit"] - tpot["value"], abs=1e-3)


@pytest.mark.parametrize("name", ["llama3-70b-chat", "llama3-8b-pretrain"])
def test_same_input_gives_byte_identical_json(name):
    spec = str(EXAMPLES / f"{name}.yaml")
    outputs = {run("solve", spec, "--format", "json", *extra).output for extra in ([], [], ["--reproducible"])}
    assert len(outputs) == 1


def test_exit_codes():
    assert run("solve", str(EXAMPLES / "impossible-tiny-budget.yaml")).exit_code == 3
    bad = run("solve", str(EXAMPLES / "nope.yaml"))
    assert bad.exit_code == 2 and "file not found" in bad.output


def test_timeout_exit_code(monkeypatch):
    from ortools.sat.python import cp_model

    import planner.solve as solve_module

    original = solve_module.make_solver

    def no_time(settings):
        solver = original(settings)
        solver.parameters.max_deterministic_time = 0.0
        solver.parameters.max_time_in_seconds = 0.0
        solver.parameters.cp_model_presolve = False
        return solver

    monkeypatch.setattr(solve_module, "make_solver", no_time)
    result = run("solve", str(EXAMPLES / "mixtral-moe-serving.yaml"))
    assert result.exit_code in (0, 4)  # a zero budget either finds nothing (4) or a first feasible plan
    if result.exit_code == 0:
        assert "feasible" in result.output or "optimal" in result.output
    assert cp_model.UNKNOWN in solve_module.STATUS


def test_top_k_plans_are_distinct_and_ordered(catalog):
    work = resolve_workload(load_spec(EXAMPLES / "llama3-70b-chat.yaml"), catalog)
    result = solve(work, catalog, top=4)
    values = result.stats["top_values"]
    assert len(result.plans) == 4 and values == sorted(values)
    assert len({p.signature() for p in result.plans}) == 4
    # Distinct purchases: no two plans buy the same device on the same offering.
    bought = {(p.main.evaluation.candidate.device, p.main.evaluation.candidate.offering.instance,
               p.main.evaluation.candidate.offering.region, p.main.evaluation.candidate.offering.pricing)
              for p in result.plans}
    assert len(bought) == 4


def test_mixing_is_never_worse_than_one_device_type(catalog):
    spec = load_spec(EXAMPLES / "llama3-70b-chat.yaml")
    work = resolve_workload(spec, catalog)
    single = solve(work, catalog)
    mixed_spec = spec.model_copy(update={"search": spec.search.model_copy(update={"allow_mix": True})})
    mixed_work = resolve_workload(mixed_spec, catalog)
    mixed = solve(mixed_work, catalog)
    assert mixed.objective_value <= single.objective_value + 1e-6
    assert not violations(check_plan(mixed_work, catalog, mixed.plan))


SERVING_DEVICES = ["h100-sxm", "l40s", "l4", "mi300x", "a100-80gb", "h200-sxm", "tpu-v5e"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    model=st.sampled_from(["llama-3.1-8b", "qwen3-32b", "llama-3.1-70b", "mixtral-8x7b"]),
    rps=st.floats(0.2, 40.0),
    input_tokens=st.integers(64, 8192),
    output_tokens=st.integers(16, 1024),
    ttft=st.one_of(st.none(), st.floats(200, 5000)),
    tpot=st.one_of(st.none(), st.floats(10, 200)),
    devices=st.lists(st.sampled_from(SERVING_DEVICES), min_size=1, max_size=3, unique=True),
    max_devices=st.one_of(st.none(), st.integers(1, 64)),
    power_kw=st.one_of(st.none(), st.floats(0.5, 40)),
    objective=st.sampled_from(["cost", "energy", "carbon"]),
)
def test_every_returned_serving_plan_passes_the_checker(catalog, model, rps, input_tokens, output_tokens, ttft, tpot,
                                                        devices, max_devices, power_kw, objective):
    spec = WorkloadSpec.model_validate({
        "name": "prop",
        "workload": {"kind": "serving", "model": model,
                     "traffic": {"requests_per_s": rps, "input_tokens": input_tokens, "output_tokens": output_tokens},
                     "slo": {"ttft_p99_ms": ttft, "tpot_ms": tpot}},
        "search": {"devices": devices},
        "limits": {"max_devices": max_devices, "power_kw": power_kw},
        "objective": objective,
    })
    assert_plan_passes_the_checker(spec, catalog)


def assert_plan_passes_the_checker(spec, catalog):
    work = resolve_workload(spec, catalog)
    result = solve(work, catalog, SolverSettings(workers=8))
    assert result.status in ("optimal", "infeasible")
    if result.plan is not None:
        assert not violations(check_plan(work, catalog, result.plan))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    model=st.sampled_from(["llama-3.1-8b", "llama-3-70b", "qwen3-32b"]),
    tokens=st.floats(1e9, 2e12),
    batch=st.sampled_from([64, 256, 512, 1024]),
    deadline=st.one_of(st.none(), st.floats(1, 90)),
    devices=st.lists(st.sampled_from(["h100-sxm", "a100-80gb", "b200", "mi300x"]), min_size=1, max_size=2, unique=True),
    max_devices=st.one_of(st.none(), st.sampled_from([8, 64, 512])),
    objective=st.sampled_from(["cost", "energy", "carbon"]),
)
def test_every_returned_training_plan_passes_the_checker(catalog, model, tokens, batch, deadline, devices,
                                                         max_devices, objective):
    spec = WorkloadSpec.model_validate({
        "name": "prop",
        "workload": {"kind": "training", "model": model, "tokens": tokens, "seq_len": 4096,
                     "global_batch_sequences": batch},
        "search": {"devices": devices},
        "limits": {"max_devices": max_devices, "deadline_days": deadline},
        "objective": objective,
    })
    assert_plan_passes_the_checker(spec, catalog)


def test_cp_model_import_leaves_real_pandas_importable():
    import planner._ortools  # noqa: F401

    import pandas

    assert hasattr(pandas, "DataFrame")


def test_lora_fine_tune_costs_less_and_fits_fewer_devices_than_full_fine_tune(catalog):
    lora = load_spec(EXAMPLES / "llama3-8b-lora.yaml")
    full = lora.model_copy(update={"workload": lora.workload.model_copy(update={"adapter": None})})
    one_gpu = {"limits": lora.limits.model_copy(update={"max_devices": 1}), "search": lora.search.model_copy(
        update={"devices": ["h100-sxm"]})}
    results = {name: solve(resolve_workload(spec, catalog), catalog, SolverSettings(workers=8))
               for name, spec in (("lora", lora), ("full", full))}
    assert results["lora"].objective_value < results["full"].objective_value
    # On one 80 GB H100, LoRA fits (frozen bf16 base, adapter-only optimizer state); a full fine-tune of
    # 8B parameters (18 bytes each) cannot.
    lora_1 = solve(resolve_workload(lora.model_copy(update=one_gpu), catalog), catalog, SolverSettings(workers=8))
    full_1 = solve(resolve_workload(full.model_copy(update=one_gpu), catalog), catalog, SolverSettings(workers=8))
    assert lora_1.status == "optimal" and lora_1.plan is not None
    assert full_1.status == "infeasible"


def test_reused_shapes_give_the_rows_a_fresh_enumeration_gives(catalog):
    from planner.candidates import enumerate_candidates

    def rows(table):
        return sorted((r.candidate.label(), r.candidate.offering.instance if r.candidate.offering else None,
                       r.candidate.offering.pricing if r.candidate.offering else None,
                       tuple(sorted(r.rate_limits.items())), r.usd_per_unit_hour) for r in table.rows)

    def training_rows(table):
        return sorted((r.candidate.label(), r.candidate.offering.instance, r.candidate.offering.pricing,
                       r.evaluation.prediction.step_time_s, r.evaluation.economics) for r in table.rows)

    for example, read in (("llama3-70b-chat", rows), ("llama3-8b-lora", training_rows)):
        spec = load_spec(EXAMPLES / f"{example}.yaml")
        first = enumerate_candidates(resolve_workload(spec, catalog), catalog)
        # A second look at every price of two devices, as `with_every_price` asks it.
        wider = spec.model_copy(update={"search": spec.search.model_copy(
            update={"min_price_confidence": "low", "devices": ["mi300x", "h100-sxm"]})})
        work = resolve_workload(wider, catalog)
        reused = enumerate_candidates(work, catalog, first.shapes)
        fresh = enumerate_candidates(work, catalog)
        assert first.shapes and reused.evaluated < fresh.evaluated, example
        assert read(reused) == read(fresh) and len(fresh.rows) > 0, example
        assert any(r.candidate.device == "mi300x" for r in fresh.rows), example


@pytest.mark.parametrize("example", ["small-model-serving", "llama3-70b-chat", "llama3-8b-lora", "yolov8-video"])
def test_the_floor_that_spares_the_second_price_look_is_never_above_the_optimum(catalog, example):
    from planner.candidates import enumerate_candidates
    from planner.solve import SolverSettings, _least_possible

    spec = load_spec(EXAMPLES / f"{example}.yaml")
    spec = spec.model_copy(update={"search": spec.search.model_copy(update={"min_price_confidence": "low"})})
    work = resolve_workload(spec, catalog)
    table = enumerate_candidates(work, catalog)
    result = solve(work, catalog, SolverSettings(workers=8), table=table)
    floor = _least_possible(table, spec.objective)
    assert 0 < floor <= result.objective_value + 1e-9
    if work.kind == "training":
        assert floor == pytest.approx(result.objective_value)  # one row: the floor is the optimum


def test_a_tie_break_whose_weighting_overflows_falls_back_to_fewer_devices_then_latency(catalog):
    from planner.compile import compile_model
    from planner.solve import SolverSettings, solve_compiled

    work = resolve_workload(load_spec(EXAMPLES / "llama3-70b-chat.yaml"), catalog)
    usual = solve(work, catalog, SolverSettings(workers=1))
    assert "tie_break" not in usual.stats
    compiled = compile_model(usual.table, work.spec)
    compiled.secondary = compiled.secondary * 10**12  # as a table of tens of thousands of rows weighs it
    coarse = solve_compiled(work, catalog, compiled, SolverSettings(workers=1))
    assert coarse.status == "optimal" and coarse.objective_value == pytest.approx(usual.objective_value)
    assert "fewer devices" in coarse.stats["tie_break"]
    assert sum(p.evaluation.candidate.devices * p.replicas for p in coarse.plan.parts) == \
        sum(p.evaluation.candidate.devices * p.replicas for p in usual.plan.parts)


def test_the_tie_break_rules_out_only_rows_dearer_than_the_optimum(catalog):
    from planner.solve import SolverSettings, _rule_out_dearer_than, scenario_model

    work = resolve_workload(load_spec(EXAMPLES / "llama3-70b-chat.yaml"), catalog)
    result = solve(work, catalog, SolverSettings(workers=1))
    model = scenario_model(result.compiled)
    before = len(model.proto.constraints)
    _rule_out_dearer_than(model, result.compiled, work, result.objective_value)
    ruled_out = len(model.proto.constraints) - before
    def key(c):
        return c.label(), c.offering.provider, c.offering.region, c.offering.instance, c.offering.pricing

    chosen = {key(p.evaluation.candidate) for p in result.plan.parts}
    assert 0 < ruled_out < len(result.table.rows)
    dear = [r for r in result.table.replica_rows if r.usd_per_unit_hour > result.objective_value]
    assert len(dear) >= ruled_out and not chosen & {key(r.candidate) for r in dear}
