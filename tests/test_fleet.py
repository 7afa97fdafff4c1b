"""Fleets: rent versus buy arithmetic by hand, shared inventory and site power, spot overhead."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.catalog.loader import load_catalogs
from planner.evaluate import Candidate, evaluate, resolve_workload
from planner.fleet import HOURS_PER_YEAR, rent_or_buy, solve_fleet
from planner.perf.types import Parallel
from planner.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def catalog():
    return load_catalogs()


@pytest.fixture(scope="module")
def rent_vs_buy(catalog):
    return rent_or_buy(EXAMPLES / "fleets" / "rent-vs-buy-512.yaml", catalog)


def test_rent_versus_buy_arithmetic_by_hand(rent_vs_buy, catalog):
    buy = rent_vs_buy.buy
    assert buy.status == "optimal"
    n = buy.bought["h100-sxm"]
    price = catalog.purchases["h100-sxm"].usd_per_device  # 30,000 (street estimate, source S34)
    assert buy.tco["capex"] == pytest.approx(n * price)
    assert buy.tco["operations"] == pytest.approx(n * price * 0.1 * 3)
    assert buy.tco["residual"] == pytest.approx(-n * price * 0.2)
    plan = buy.plans["cluster-512-chat.yaml"]
    hours = 3 * HOURS_PER_YEAR
    # owned hardware pays electricity at the meter: average kW x PUE x USD/kWh, every hour of the horizon (the plan's
    # parts together: a disaggregated plan's two pools)
    kw = sum(p.evaluation.metrics["power_avg_kw"] for p in plan.parts)
    assert buy.tco["owned_energy"] == pytest.approx(kw * 1.3 * 0.0895 * hours, rel=1e-9)
    assert plan.totals["devices"] <= n
    rent = rent_vs_buy.rent
    assert rent.bought == {} and rent.tco["capex"] == 0
    assert sum(rent.tco.values()) == pytest.approx(rent.plans["cluster-512-chat.yaml"].totals["usd_per_hour"] * hours)


def test_break_even_price_equalises_rent_and_buy(rent_vs_buy, catalog):
    price = rent_vs_buy.break_even_price(catalog)["h100-sxm"]
    buy = rent_vs_buy.buy
    n = buy.bought["h100-sxm"]
    share = (1 - 0.2) + 0.1 * 3
    base = catalog.purchases["h100-sxm"].usd_per_device
    tco_at_price = sum(buy.tco.values()) + n * (price - base) * share
    assert tco_at_price == pytest.approx(sum(rent_vs_buy.rent.tco.values()), rel=1e-9)


def test_fleet_respects_shared_inventory_and_site_power(tmp_path, catalog):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"""
name: capped
fleet: [{EXAMPLES / 'llama3-70b-chat.yaml'}, {EXAMPLES / 'small-model-serving.yaml'}]
horizon_years: 1
site: {{pue: 1.2, electricity_usd_per_kwh: 0.1}}
inventory: {{h100-sxm: 6}}
limits: {{power_kw: 4}}
""")
    result = solve_fleet(fleet, catalog)
    assert result.status == "optimal"
    owned = [p for plan in result.plans.values() for p in plan.parts if p.evaluation.candidate.offering is None]
    assert sum(p.evaluation.candidate.devices for p in owned if p.evaluation.candidate.device == "h100-sxm") <= 6
    assert sum(p.evaluation.metrics["power_kw"] for p in owned) <= 4 + 1e-9
    assert result.bought == {}


def test_unknown_device_in_a_fleet_is_named(tmp_path, catalog):
    from planner.errors import SpecError

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"name: x\nfleet: [{EXAMPLES / 'llama3-70b-chat.yaml'}]\nhorizon_years: 1\n"
                     "site: {pue: 1.2}\nbuy: {devices: [h100sxm], residual_fraction: 0.1, ops_fraction_per_year: 0}\n")
    with pytest.raises(SpecError) as info:
        solve_fleet(fleet, catalog)
    assert "buy.devices: unknown device `h100sxm`. Did you mean `h100-sxm`?" in info.value.problems[0].render()


def test_spot_training_is_stretched_by_its_policy(catalog):
    spec = load_spec(EXAMPLES / "spot-vs-ondemand-training.yaml")
    work = resolve_workload(spec, catalog)
    par = Parallel(tp=1, dp=16)
    spot = next(o for o in catalog.offerings if o.instance == "p5.48xlarge" and o.pricing == "spot")
    demand = next(o for o in catalog.offerings if o.instance == "p5.48xlarge" and o.pricing == "on-demand")
    t_spot = evaluate(work, catalog, Candidate("h100-sxm", spot.system, "bf16", par, spot)).metrics
    t_od = evaluate(work, catalog, Candidate("h100-sxm", demand.system, "bf16", par, demand)).metrics
    factor = 1 + 60 / (60 * 30) + 0.05 * (30 / 2 + 15) / 60
    assert t_spot["time_to_train_days"] == pytest.approx(t_od["time_to_train_days"] * factor)


# ---------------------------------------------------------------------------------------------- explanations
# A fleet answers the explainer's protocol: every claim below is checked against a fleet solved again from
# edited files, not against the explainer's own questions.

def _fleet_file(tmp_path, members: list[Path], extra: str, name: str = "fleet.yaml") -> Path:
    """A fleet at the three-workloads example's site, over its horizon."""
    path = tmp_path / name
    path.write_text(f"name: t\nfleet: [{', '.join(str(m) for m in members)}]\nhorizon_years: 3\n"
                    "site: {pue: 1.58, electricity_usd_per_kwh: 0.0895, grid_gco2_per_kwh: 323}\n" + extra)
    return path


def _member(tmp_path, example: str, edit, name: str) -> Path:
    import yaml

    data = yaml.safe_load((EXAMPLES / example).read_text())
    edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def explained_fleet(catalog):
    from planner.fleet.questions import explain_fleet

    result = solve_fleet(EXAMPLES / "fleets" / "three-workloads.yaml", catalog)
    return result, explain_fleet(result, catalog)


def test_a_fleet_binding_limit_saves_what_a_fleet_without_it_costs(explained_fleet, catalog, tmp_path):
    result, expl = explained_fleet
    binding = [p for p in expl.limits if p.binding]
    assert binding, "the 70B chat's TPOT SLO binds the fleet example"
    price = next(p for p in binding if p.item.id == "llama3-70b-chat.yaml:latency.tpot")
    assert price.item.workload == "llama3-70b-chat.yaml" and price.value <= price.item.bound
    chat = _member(tmp_path, "llama3-70b-chat.yaml", lambda d: d["workload"]["slo"].pop("tpot_ms"),
                   "llama3-70b-chat.yaml")
    buy = "buy: {devices: [h100-sxm, mi300x], residual_fraction: 0.2, ops_fraction_per_year: 0.1}\n" \
          "limits: {power_kw: 40}\n"
    free = solve_fleet(_fleet_file(tmp_path, [chat, EXAMPLES / "small-model-serving.yaml",
                                              EXAMPLES / "energy-min-finetune.yaml"], buy), catalog)
    assert free.usd_per_hour == pytest.approx(result.usd_per_hour * (1 - price.drop_saving), rel=1e-6)
    shared = next(p for p in expl.limits if p.item.id == "fleet.power_kw")
    assert not shared.binding and shared.value == pytest.approx(result.usage["fleet.power_kw"]) and shared.value < 40


def test_why_a_device_was_bought_is_the_fleet_that_rents_instead(explained_fleet, catalog, tmp_path):
    result, expl = explained_fleet
    bought = [d for d, n in result.bought.items() if n]
    assert bought == ["mi300x"]
    rent = next(a for a in expl.alternatives if a.kind == "rent instead of buying" and a.name == "mi300x")
    members = [EXAMPLES / m for m in ("llama3-70b-chat.yaml", "small-model-serving.yaml", "energy-min-finetune.yaml")]
    without = solve_fleet(_fleet_file(tmp_path, members, "buy: {devices: [h100-sxm], residual_fraction: 0.2, "
                                                         "ops_fraction_per_year: 0.1}\nlimits: {power_kw: 40}\n"),
                          catalog)
    assert rent.objective == pytest.approx(without.usd_per_hour, rel=1e-6) and rent.delta > 0
    # and why each workload does not run on each device the site could own, or rents
    owned = {(a.workload, a.name) for a in expl.alternatives if a.kind == "own"}
    assert ("small-model-serving.yaml", "h100-sxm") in owned and ("llama3-70b-chat.yaml", "mi300x") not in owned
    assert all(a.objective >= result.usd_per_hour - 1e-9 for a in expl.alternatives if a.objective is not None)


def test_an_impossible_fleet_names_its_minimal_conflict_and_the_relaxation_that_works(catalog, tmp_path):
    from planner.fleet.questions import explain_fleet

    cheap = _member(tmp_path, "llama3-70b-chat.yaml", lambda d: d["limits"].update(budget_usd_per_hour=5),
                    "chat.yaml")
    fleet = _fleet_file(tmp_path, [cheap], "inventory: {h100-sxm: 4}\nlimits: {power_kw: 3}\n")
    result = solve_fleet(fleet, catalog)
    assert result.status == "infeasible"
    conflict = explain_fleet(result, catalog).conflict
    ids = {i.id for i in conflict.items}
    assert ids == {"fleet.power_kw", "chat.yaml:budget.hourly"} and conflict.verified
    budget = next(r for r in conflict.relaxations if r.item.id == "chat.yaml:budget.hourly")
    assert budget.to is not None and budget.to > 5
    relaxed = _member(tmp_path, "llama3-70b-chat.yaml", lambda d: d["limits"].update(budget_usd_per_hour=budget.to),
                      "chat.yaml")
    assert solve_fleet(_fleet_file(tmp_path, [relaxed], "inventory: {h100-sxm: 4}\nlimits: {power_kw: 3}\n"),
                       catalog).usd_per_hour == pytest.approx(budget.objective, rel=1e-6)


def test_compare_prints_and_writes_the_fleet_explanation(tmp_path):
    import json

    from click.testing import CliRunner

    from planner.cli import main

    fleet = str(EXAMPLES / "fleets" / "rent-vs-buy-512.yaml")
    text = CliRunner().invoke(main, ["compare", fleet])
    assert text.exit_code == 0 and "Binding limits" in text.output and "rent instead of buying h100-sxm" in text.output
    data = json.loads(CliRunner().invoke(main, ["compare", fleet, "--format", "json"]).output)
    assert {"limits", "alternatives", "conflict", "flips"} <= set(data["explanation"])
    quiet = json.loads(CliRunner().invoke(main, ["compare", fleet, "--format", "json", "--no-explain"]).output)
    assert quiet.get("explanation") is None and quiet["tco_usd"] == data["tco_usd"]


def test_a_fleet_feasibility_question_takes_a_plan_within_the_limits_without_minimising(catalog):
    from planner.fleet import solve_fleet_model
    from planner.solve import SolverSettings

    best = solve_fleet(EXAMPLES / "fleets" / "three-workloads.yaml", catalog)
    quick = solve_fleet_model(best.model, catalog, SolverSettings(), feasibility_only=True)
    assert quick.status in ("optimal", "feasible") and all(p is not None for p in quick.plans.values())
    assert quick.usd_per_hour >= best.usd_per_hour - 1e-9
    for name, value in quick.usage.items():  # the shared limits hold in the first plan too
        limit = best.spec.limits.power_kw if name == "fleet.power_kw" else None
        if limit is not None:
            assert value <= limit + 1e-9
