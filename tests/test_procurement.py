"""Procurement tools: fresher prices, price scenarios, side-by-side comparison, Pareto fronts."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner.catalog.loader import load_catalogs
from planner.catalog.prices_io import apply_scenario, read_skypilot_csv, with_prices
from planner.cli import main
from planner.compare import compare
from planner.errors import CatalogError
from planner.evaluate import resolve_workload
from planner.explain.question import Limit
from planner.explain.scenario import with_value
from planner.pareto import dominates, pareto_front
from planner.solve import solve
from planner.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HEADER = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region\n"


@pytest.fixture(scope="module")
def catalog():
    return load_catalogs()


def write(tmp_path: Path, text: str, name: str = "aws.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_price_file_replaces_and_adds_offerings(tmp_path, catalog):
    path = write(tmp_path, HEADER + "p5.48xlarge,H100,8,192,2048,40.0,12.5,us-east-1\n"
                                    "p5.48xlarge,H100,8,192,2048,44.0,,us-west-2\n"
                                    "m7i.large,,,2,8,0.1,,us-east-1\n"
                                    "x9.huge,Z9000,8,1,1,9.0,,us-east-1\n")
    offerings, skipped = read_skypilot_csv(path, catalog)
    assert {(o.region, o.pricing, o.usd_per_hour) for o in offerings} == {
        ("us-east-1", "on-demand", 40.0), ("us-east-1", "spot", 12.5), ("us-west-2", "on-demand", 44.0)}
    assert all(o.provider == "aws" and o.system == "hgx-h100-8-efa2" for o in offerings)
    assert len(skipped) == 1 and "Z9000" in skipped[0]
    fresh = with_prices(catalog, offerings, path.name)
    p5 = [o for o in fresh.offerings if o.instance == "p5.48xlarge" and o.region == "us-east-1"
          and o.pricing == "on-demand"]
    assert [o.usd_per_hour for o in p5] == [40.0]
    assert all(sid in fresh.sources for o in fresh.offerings for sid in o.source)


@pytest.mark.parametrize("text,expected", [
    (HEADER + "p5.48xlarge,H100,8,192,2048,abc,,us-east-1\n", "aws.csv:2: column Price: 'abc' is not a number"),
    (HEADER + "p5.48xlarge,H100,8,192,2048,40,-3,us-east-1\n", "aws.csv:2: column SpotPrice: -3.0 must be positive"),
    (HEADER + "p5.48xlarge,H100,8.5,192,2048,40,,us-east-1\n", "aws.csv:2: column AcceleratorCount"),
    (HEADER + "p5.48xlarge,H100,8,192,2048,40,,\n", "aws.csv:2: column Region is empty"),
    ("InstanceType,Price\np5,1\n", "aws.csv:1: missing column(s) AcceleratorName, AcceleratorCount, Region"),
])
def test_bad_price_file_names_row_and_column(tmp_path, catalog, text, expected):
    with pytest.raises(CatalogError) as info:
        read_skypilot_csv(write(tmp_path, text), catalog)
    assert expected in info.value.problems[0].render()


def test_price_scenario_flips_the_answer(tmp_path, catalog):
    spec = load_spec(EXAMPLES / "llama3-70b-chat.yaml")
    before = solve(resolve_workload(spec, catalog), catalog)
    device = before.plan.main.evaluation.candidate.device
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: dearer-{device}\nrules:\n  - match: {{device: {device}}}\n    scale: 4.0\n")
    dearer, applied = apply_scenario(catalog, scenario)
    after = solve(resolve_workload(spec, dearer), dearer)
    assert applied.name == f"dearer-{device}"
    assert after.plan.main.evaluation.candidate.device != device
    assert after.objective_value > before.objective_value


def test_bad_price_scenario(tmp_path, catalog):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: x\nrules:\n  - match: {device: h100sxm}\n    scale: 0.5\n    usd_per_device_hour: 2\n")
    with pytest.raises(CatalogError) as info:
        apply_scenario(catalog, scenario)
    text = "\n".join(p.render() for p in info.value.problems)
    assert "rules[0]: give exactly one of scale or usd_per_device_hour" in text
    assert "Did you mean `h100-sxm`?" in text


def test_side_by_side_matches_restricted_solves(catalog):
    spec = load_spec(EXAMPLES / "llama3-70b-chat.yaml")
    rows = compare(resolve_workload(spec, catalog), catalog)
    devices = [r for r in rows if r.kind == "device"]
    assert {r.name for r in devices} == set(spec.search.devices)
    for r in devices:
        restricted = spec.model_copy(update={"search": spec.search.model_copy(update={"devices": [r.name]})})
        again = solve(resolve_workload(restricted, catalog), catalog)
        if r.status == "ok":
            assert again.objective_value == pytest.approx(r.usd_per_hour, rel=1e-9)
        else:
            assert again.plan is None and r.deciding


@pytest.mark.parametrize("name,axis,limit_unit,metric", [
    ("llama3-70b-chat", "latency", "latency.ttft_p99", "ttft_p99_ms"),
    ("llama3-8b-pretrain", "time", "time.deadline", "time_to_train_days"),
])
def test_pareto_points_are_non_dominated_and_optimal_for_their_epsilon(catalog, name, axis, limit_unit, metric):
    spec = load_spec(EXAMPLES / f"{name}.yaml")
    work = resolve_workload(spec, catalog)
    points = pareto_front(work, catalog, axis)
    assert len(points) >= 3
    for a in points:
        assert not any(dominates(b, a) for b in points)
    item = Limit(limit_unit, limit_unit, {"latency.ttft_p99": "workload.slo.ttft_p99_ms",
                                              "time.deadline": "limits.deadline_days"}[limit_unit], 0.0, "")
    for p in points[1:4]:
        again = solve(resolve_workload(with_value(spec, item, p.epsilon), catalog), catalog)
        assert again.objective_value == pytest.approx(p.objective, rel=1e-9)
        assert again.plan.metric(metric) <= p.epsilon + 1e-9


def test_compare_cli_csv_and_plot(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["compare", str(EXAMPLES / "small-model-serving.yaml"), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert rows and {"name", "usd_per_hour", "deciding"} <= set(rows[0])
    png = tmp_path / "front.png"
    result = runner.invoke(main, ["compare", str(EXAMPLES / "llama3-8b-pretrain.yaml"), "--pareto", "cost,time",
                                  "--plot", str(png), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[: result.output.rindex("}") + 1])
    assert data["axes"] == ["cost", "time"] and len(data["points"]) >= 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pareto_axis_must_suit_the_workload():
    result = CliRunner().invoke(main, ["compare", str(EXAMPLES / "llama3-8b-pretrain.yaml"), "--pareto", "cost,tpot"])
    assert result.exit_code == 2 and "use one of: cost,time" in result.output


@pytest.mark.parametrize("name,axis", [("llama3-8b-pretrain", "carbon"), ("long-context-serving", "energy")])
def test_footprint_pareto_is_non_dominated_and_each_point_optimal(catalog, name, axis):
    from planner.candidates import enumerate_candidates
    from planner.compile import compile_model
    from planner.solve import SolverSettings, solve_compiled

    spec = load_spec(EXAMPLES / f"{name}.yaml")
    work = resolve_workload(spec, catalog)
    points = pareto_front(work, catalog, axis)
    assert len(points) >= 2
    for a in points:
        assert not any(dominates(b, a) for b in points)
    cost_spec = spec.model_copy(update={"objective": "cost"})
    table = enumerate_candidates(resolve_workload(spec.model_copy(update={"objective": axis}), catalog), catalog)
    cost_work = resolve_workload(cost_spec, catalog)
    for p in points[1:]:
        again = solve_compiled(cost_work, catalog, compile_model(table, cost_spec, caps={axis: p.epsilon}),
                               SolverSettings())
        assert again.objective_value == pytest.approx(p.objective, rel=1e-9)


@pytest.mark.parametrize("path,expected", [
    ("fleets/three-workloads.yaml", "renting everything instead"),
    ("fleets/rent-vs-buy-512.yaml", "buying h100-sxm pays while it costs at most"),
    ("spot-vs-ondemand-training.yaml", "decided by"),
])
def test_compare_runs_every_procurement_example(path, expected):
    result = CliRunner().invoke(main, ["compare", str(EXAMPLES / path)], terminal_width=160)
    assert result.exit_code == 0, result.output
    assert expected in result.output


def _solve_with_my_cloud(tmp_path, search_lines: str):
    """The chat example solved against a user's price file: one 8-GPU H100 instance type at $8/h."""
    import json

    from click.testing import CliRunner

    from planner.cli import main

    prices = write(tmp_path, HEADER + "gpu8,H100,8,192,2048,8.0,,dc-1\n", name="mycloud.csv")
    spec = tmp_path / "spec.yaml"
    spec.write_text((EXAMPLES / "llama3-70b-chat.yaml").read_text().replace("search:", "search:\n" + search_lines, 1))
    result = CliRunner().invoke(main, ["solve", str(spec), "--prices", str(prices), "--format", "json", "--no-explain"])
    assert result.exit_code == 0, result.output
    return result, json.loads(result.stdout)


def test_a_price_files_provider_joins_a_spec_that_lists_its_providers(tmp_path):
    result, data = _solve_with_my_cloud(tmp_path, "  providers: [aws]\n  min_price_confidence: high")
    assert "provider(s) mycloud from --prices join search.providers" in result.stderr
    # A $1/GPU-hour H100 in the user's own file beats every listed AWS price: it must be the plan.
    assert data["plan"]["offering"]["provider"] == "mycloud"


def test_a_plan_fills_the_instances_it_pays_for_when_that_costs_nothing(tmp_path):
    # 8-GPU instances at $8/h: the cheapest plan needs 10 GPUs' worth of capacity, so it pays for two
    # instances; the 6 paid GPUs left over must serve too (same bill, lower latency), not idle.
    _, data = _solve_with_my_cloud(tmp_path, "  providers: [mycloud]")
    plan = data["plan"]
    assert plan["devices_paid"] == plan["devices"] == 16
    assert plan["cost"]["usd_per_hour"] == pytest.approx(16.0)


def test_spot_training_pays_for_interruptions_by_default(tmp_path, catalog):
    from planner.spec import DEFAULT_SPOT_POLICY

    base = load_spec(EXAMPLES / "spot-vs-ondemand-training.yaml")
    spot_only = base.search.model_copy(update={"spot": None, "pricing": ["spot"]})
    by_default = solve(resolve_workload(base.model_copy(update={"search": spot_only}), catalog), catalog)
    factor = by_default.plan.main.evaluation.metrics["spot_overhead_factor"]
    assert factor == pytest.approx(DEFAULT_SPOT_POLICY.slowdown) and factor > 1.0
    off = spot_only.model_copy(update={"spot_overhead": False})
    naive = solve(resolve_workload(base.model_copy(update={"search": off}), catalog), catalog)
    assert naive.plan.main.evaluation.metrics["spot_overhead_factor"] == 1.0
    assert naive.objective_value < by_default.objective_value


def test_pareto_says_when_the_cheapest_plan_has_no_footprint_figure(tmp_path):
    from click.testing import CliRunner

    from planner.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text("""name: pue-check
workload:
  kind: serving
  model: llama-3.1-8b
  traffic: {requests_per_s: 5, input_tokens: 512, output_tokens: 128}
  slo: {ttft_p99_ms: 2000, tpot_ms: 50}
search:
  devices: [mi300x, h100-sxm]
  providers: [tensorwave, aws]
  min_price_confidence: low
""")
    result = CliRunner().invoke(main, ["compare", str(spec), "--pareto", "cost,energy", "--format", "json"])
    import json as _json

    data = _json.loads(result.stdout)
    # TensorWave's region is not stated, so it has no PUE: its plan is cheapest but cannot be placed.
    assert any("no PUE for tensorwave unspecified" in n for n in data["off_front"])
    assert all("tensorwave" not in p["plan"] for p in data["points"])


def test_reservations_are_searched_only_when_asked_for_and_a_job_pays_their_whole_term(catalog):
    base = load_spec(EXAMPLES / "llama3-8b-pretrain.yaml")
    every = solve(resolve_workload(base, catalog), catalog)
    assert every.plan.main.evaluation.candidate.offering.commitment_hours == 0  # default: nothing committed
    only_h100 = base.search.model_copy(update={"devices": ["h100-sxm"], "providers": ["aws"]})
    on_demand = solve(resolve_workload(base.model_copy(update={"search": only_h100.model_copy(
        update={"pricing": ["on-demand"]})}), catalog), catalog)
    reserved = solve(resolve_workload(base.model_copy(update={"search": only_h100.model_copy(
        update={"pricing": ["reserved-3y"]})}), catalog), catalog)
    m, offering = reserved.plan.main.evaluation.metrics, reserved.plan.main.evaluation.candidate.offering
    assert offering.pricing == "reserved-3y" and offering.usd_per_hour < 30  # p5 3-year RI, ~$23.78/h
    # A weeks-long job on a 3-year reservation still pays all 26,280 hours of it.
    assert m["time_to_train_days"] * 24 < 26_280
    assert m["usd_per_job"] == pytest.approx(m["usd_per_hour"] * 26_280)
    assert on_demand.objective_value < reserved.objective_value


def test_a_plan_on_a_reservation_states_its_commitment(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text((EXAMPLES / "small-model-serving.yaml").read_text().replace(
        "  precisions: [bf16, fp8, int8, int4]", "  precisions: [bf16, fp8, int8, int4]\n  pricing: [reserved-1y]"))
    result = CliRunner().invoke(main, ["solve", str(spec), "--no-explain"])
    assert result.exit_code == 0, result.output
    assert "reserved-1y: commits to 1 year(s)" in result.output and "over the term whether used or not" in result.output


def test_compare_says_which_regions_have_no_footprint_figures(catalog):
    rows = compare(resolve_workload(load_spec(EXAMPLES / "small-model-serving.yaml"), catalog), catalog)
    noted = [r for r in rows if r.notes]
    assert noted, "the catalog has regions without grid carbon; compare must say so"
    for r in noted:
        assert r.status == "ok"
        if all("carbon is unknown" in n for n in r.notes):
            assert r.carbon_kg is None and r.energy_kwh is not None
    assert all(r.carbon_kg is not None for r in rows if r.status == "ok" and not r.notes)
    assert all(r.energy_kwh is not None for r in rows if r.status == "ok" and not r.notes)


def test_a_pareto_front_cut_short_by_the_time_limit_says_so(catalog):
    import time

    from planner.solve import SolverSettings

    work = resolve_workload(load_spec(EXAMPLES / "llama3-70b-chat.yaml"), catalog)
    skipped: list[str] = []
    points = pareto_front(work, catalog, "latency", SolverSettings(deadline=time.monotonic() - 1.0), skipped)
    # The cheapest plan gets the solver's minimum slice; on a slow machine even that may find nothing, and the
    # front then says the whole of it was not traced.
    assert len(points) <= 1 and len(skipped) == 1 and "time limit" in skipped[0]
    assert ("whole front" in skipped[0]) == (not points)
    full: list[str] = []
    assert len(pareto_front(work, catalog, "latency", SolverSettings(), full)) > 1 and not full


def test_estimate_on_a_reservation_states_its_commitment():
    result = CliRunner().invoke(main, ["estimate", str(EXAMPLES / "llama3-8b-pretrain.yaml"), "--device", "h100-sxm",
                                       "--dp", "64", "--recompute", "full", "--pricing", "reserved-3y"])
    assert result.exit_code == 0, result.output
    assert "reserved-3y: commits to 3 year(s)" in result.output
