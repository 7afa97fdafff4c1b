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
    m = plan.main.evaluation.metrics
    # owned hardware pays electricity at the meter: average kW x PUE x USD/kWh, every hour of the horizon
    assert buy.tco["owned_energy"] == pytest.approx(m["power_avg_kw"] * 1.3 * 0.0895 * hours, rel=1e-9)
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
