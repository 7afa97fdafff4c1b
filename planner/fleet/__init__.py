"""Fleets: several workloads planned together over a horizon, renting or buying, at the lowest total cost
of ownership.

A fleet file lists workload specs (`fleet:`), the site (PUE, electricity, grid carbon, power cap), what
may be bought (`buy:`, with residual value and yearly operations cost as shares of the purchase price),
what is already owned (`inventory:`) and the horizon. Every workload keeps its own limits; the fleet adds
what they share:

    owned_d = sum over workloads of devices of type d on owned rows
    bought_d >= owned_d - inventory_d (bought_d = 0 for devices that may not be bought)
    sum of owned rows' peak power <= site power cap                                (fleet.power_kw)
    TCO per hour <= fleet budget                                                   (fleet.budget)
    TCO over the horizon = cloud hours x prices (serving) + cloud jobs (training)
                         + owned electricity (x PUE) + bought_d x price_d x (1 - residual + ops x years)

Everything is expressed in micro-USD per hour averaged over the horizon, so serving (priced per hour) and
training (priced per job, run once in the horizon) add up; multiplied by the horizon's hours it is the TCO.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field

from planner._ortools import cp_model
from planner.candidates import CandidateTable, enumerate_candidates
from planner.catalog.loader import Catalog
from planner.compile import MICRO, CompiledModel, active_limits, compile_model
from planner.errors import Problem, SpecError, did_you_mean
from planner.evaluate import ResolvedWorkload, resolve_workload
from planner.plan import Plan
from planner.solve import STATUS, SolverSettings, extract_plan, make_solver
from planner.spec import MAX_DEVICES, OnPremSite, load_spec
from planner.strict import Strict
from planner.units import to_bound
from planner.yamlio import load_yaml, parse_document

HOURS_PER_YEAR = 8760.0
OWNED_PLENTY = 100_000  # per-workload inventory in a fleet: the fleet's own limits decide




class BuyOptions(Strict):
    devices: list[str] = Field(min_length=1)
    residual_fraction: float = Field(ge=0, lt=1, description="resale value at the end of the horizon")
    ops_fraction_per_year: float = Field(ge=0, le=10, description="operations (support, staff, space) per year")


class FleetLimits(Strict):
    power_kw: float | None = Field(default=None, gt=0, description="site cap on owned hardware at full load")
    budget_usd_per_hour: float | None = Field(default=None, gt=0, description="TCO averaged over the horizon")


class FleetSpec(Strict):
    name: str
    description: str | None = None
    fleet: list[str] = Field(min_length=1, description="workload spec files, relative to this file")
    horizon_years: float = Field(gt=0, le=30)
    site: OnPremSite
    buy: BuyOptions | None = None
    inventory: dict[str, Annotated[int, Field(ge=0, le=MAX_DEVICES)]] = {}
    limits: FleetLimits = FleetLimits()


@dataclass
class FleetMember:
    path: Path
    work: ResolvedWorkload
    table: CandidateTable
    compiled: CompiledModel | None = None


@dataclass
class FleetResult:
    status: str
    spec: FleetSpec
    plans: dict[str, Plan | None]
    bought: dict[str, int]
    tco: dict[str, float]  # USD over the horizon, by component
    usd_per_hour: float | None
    stats: dict = field(default_factory=dict)
    usage: dict[str, float] = field(default_factory=dict)  # what the plan uses of each shared limit
    model: FleetModel | None = field(default=None, repr=False)  # what was solved, for the explainer


def load_fleet(path: Path, catalog: Catalog, rent_only: bool = False,
               shapes: dict[Path, dict] | None = None) -> tuple[FleetSpec, list[FleetMember]]:
    """The fleet and each workload's candidates; `shapes` (per workload file) carries the evaluated replica
    shapes from one pass to the next (buying, then renting only), which differ only in offerings."""
    spec, member_specs = check_fleet(path, catalog, rent_only)
    members = []
    for member_path, work in member_specs:
        reuse = shapes.setdefault(member_path, {}) if shapes is not None else None
        members.append(FleetMember(member_path, work, enumerate_candidates(work, catalog, reuse)))
    return spec, members


def check_fleet(path: Path, catalog: Catalog, rent_only: bool = False) -> tuple[FleetSpec, list[tuple[Path, ResolvedWorkload]]]:
    """The fleet file and each of its workloads, checked against the schema and the catalogs (no search)."""
    doc = load_yaml(path, SpecError)
    spec: FleetSpec = parse_document(doc, FleetSpec, SpecError)
    if rent_only:
        spec = spec.model_copy(update={"buy": None, "inventory": {}})
    problems = []
    buyable = set(spec.buy.devices) if spec.buy else set()
    for where, devices in (("buy.devices", buyable), ("inventory", set(spec.inventory))):
        for d in sorted(devices):
            if d not in catalog.accelerators:
                problems.append(Problem(f"unknown device `{d}`.{did_you_mean(d, catalog.accelerators)}", file=str(path),
                                        path=where, fix="see `planner catalog list devices`"))
            elif where == "buy.devices" and d not in catalog.purchases:
                problems.append(Problem(f"no purchase price for `{d}` in the catalog", file=str(path), path=where,
                                        fix=f"buy one of: {', '.join(sorted(catalog.purchases))}"))
    if problems:
        raise SpecError(problems)
    resolved = [(path.parent / rel).resolve() for rel in spec.fleet]
    repeated = sorted({rel for rel, p in zip(spec.fleet, resolved) if resolved.count(p) > 1})
    if repeated:
        raise SpecError(Problem(f"lists the same workload twice: {', '.join(repeated)}", file=str(path), path="fleet",
                                line=doc.line_of(("fleet",)),
                                fix="list each workload once (raise its traffic to plan for more of it)"))
    members = []
    owned = buyable | set(spec.inventory)
    for rel in spec.fleet:
        member_path = (path.parent / rel).resolve()
        wspec = load_spec(member_path)
        providers = list(wspec.search.providers)
        if owned and providers and "onprem" not in providers:
            providers.append("onprem")
        inventory = {d: OWNED_PLENTY for d in owned}
        wspec = wspec.model_copy(update={
            "onprem": spec.site if owned else None,
            "search": wspec.search.model_copy(update={"providers": providers}),
            "limits": wspec.limits.model_copy(update={"inventory": inventory}),
            "objective": "cost",
        })
        members.append((member_path, resolve_workload(wspec, catalog, str(member_path))))
    return spec, members


def _owned_devices(member: FleetMember, device: str):
    """Linear expression: devices of this type on owned rows of one workload."""
    c = member.compiled
    if member.table.kind == "training":
        return sum(c.x[r.index] * r.candidate.devices for r in member.table.training_rows
                   if r.candidate.offering is None and r.candidate.device == device)
    return sum(c.n[r.index] * r.devices_per_replica for r in member.table.replica_rows
               if r.candidate.offering is None and r.candidate.device == device)


def _owned_peak_w(member: FleetMember):
    c = member.compiled
    if member.table.kind == "training":
        return sum(c.x[r.index] * math.ceil((r.evaluation.metrics.get("power_kw") or 0) * 1000)
                   for r in member.table.training_rows if r.candidate.offering is None)
    return sum(c.n[r.index] * math.ceil(r.power_peak_w or 0) for r in member.table.replica_rows
               if r.candidate.offering is None)


def _hourly_cost(member: FleetMember, horizon_hours: float):
    """Micro-USD per hour averaged over the horizon (a training job runs once in it)."""
    c = member.compiled
    if member.table.kind != "training":
        return c.objective  # compiled with the cost objective: micro-USD per hour
    terms = []
    for r in member.table.training_rows:
        usd = r.evaluation.metrics.get("usd_per_job")
        if usd is None:
            c.model.add(c.x[r.index] == 0)
            continue
        terms.append(c.x[r.index] * math.ceil(usd * MICRO / horizon_hours))
    return sum(terms)


@dataclass
class FleetModel:
    """Every workload compiled into one CP-SAT model with the fleet's shared limits; each user limit (the
    fleet's and every workload's) has a literal, so a question fixes literals on a clone instead of
    compiling again (`planner.fleet.questions`)."""

    spec: FleetSpec
    members: list[FleetMember]
    model: cp_model.CpModel
    bought: dict[str, cp_model.IntVar]
    literals: dict[str, cp_model.IntVar]  # limit id -> literal
    hours: float
    shared: dict[str, tuple] = field(default_factory=dict)  # shared limit id -> (expression it bounds, scale)


def member_limit_id(member: FleetMember, unit_id: str) -> str:
    return f"{member.path.name}:{unit_id}"


def build_fleet_model(spec: FleetSpec, members: list[FleetMember], catalog: Catalog,
                      shared_bounds: dict[str, float] | None = None) -> FleetModel:
    """`shared_bounds` re-bounds the fleet's own limits (fleet.power_kw, fleet.budget, fleet.inventory[d]);
    a workload's limits are re-bounded by compiling it from another spec (the caller's members)."""
    bounds = shared_bounds or {}
    hours = spec.horizon_years * HOURS_PER_YEAR
    model = cp_model.CpModel()
    literals, shared = {}, {}
    for m in members:
        limits = {k: v for k, v in active_limits(m.work.spec, m.table.kind).items() if k != "inventory.per_device"}
        m.compiled = compile_model(m.table, m.work.spec, limits, model=model)
        literals |= {member_limit_id(m, unit_id): lit for unit_id, lit in m.compiled.limit_literals.items()}
    buyable = set(spec.buy.devices) if spec.buy else set()
    bought, capex_terms = {}, []
    for d in sorted(buyable | set(spec.inventory)):
        owned = sum(_owned_devices(m, d) for m in members)
        have = spec.inventory.get(d, 0)
        if d in buyable:
            bought[d] = model.new_int_var(0, 1_000_000, f"bought[{d}]")
            model.add(bought[d] >= owned - have).with_name(f"fleet.inventory[{d}]")
            price = catalog.purchases[d].usd_per_device
            share = (1 - spec.buy.residual_fraction) + spec.buy.ops_fraction_per_year * spec.horizon_years
            capex_terms.append(bought[d] * math.ceil(price * share * MICRO / hours))
        else:
            key = f"fleet.inventory[{d}]"
            literals[key], shared[key] = model.new_bool_var(key), (owned, 1)
            model.add(owned <= int(bounds.get(key, have))).only_enforce_if(literals[key]).with_name(key)
    if spec.limits.power_kw is not None:
        peak_w = sum(_owned_peak_w(m) for m in members)
        literals["fleet.power_kw"], shared["fleet.power_kw"] = model.new_bool_var("fleet.power_kw"), (peak_w, 1000)
        model.add(peak_w <= to_bound(bounds.get("fleet.power_kw", spec.limits.power_kw), 1000)).only_enforce_if(
            literals["fleet.power_kw"])
    total = sum(_hourly_cost(m, hours) for m in members) + sum(capex_terms)
    if spec.limits.budget_usd_per_hour is not None:
        literals["fleet.budget"], shared["fleet.budget"] = model.new_bool_var("fleet.budget"), (total, MICRO)
        budget = bounds.get("fleet.budget", spec.limits.budget_usd_per_hour)
        model.add(total <= to_bound(budget, MICRO)).only_enforce_if(literals["fleet.budget"])
    model.minimize(total)
    return FleetModel(spec, members, model, bought, literals, hours, shared)


def solve_fleet_model(fm: FleetModel, catalog: Catalog, settings: SolverSettings, dropped: frozenset[str] = frozenset(),
                      allowed: frozenset[tuple[int, int]] | None = None,
                      feasibility_only: bool = False) -> FleetResult:
    """The fleet's lowest-TCO plan with some limits dropped and only some (workload, row) pairs allowed, solved
    on a clone: the built model is never changed. `feasibility_only`: the first plan found, for a caller
    that reads only whether one exists."""
    model = fm.model.clone()
    if feasibility_only:
        model.clear_objective()
    for key, lit in fm.literals.items():
        model.add(model.get_bool_var_from_proto_index(lit.index) == (0 if key in dropped else 1))
    if allowed is not None:
        for k, m in enumerate(fm.members):
            for i, x in enumerate(m.compiled.x):
                if (k, i) not in allowed:
                    model.add(model.get_bool_var_from_proto_index(x.index) == 0)
    solver = make_solver(settings)
    code = solver.solve(model)
    status = STATUS.get(code, "timeout")
    members = fm.members
    stats = {"workloads": len(members), "candidates": sum(len(m.table.rows) for m in members),
             "variables": len(model.proto.variables)}  # no wall-clock time: the same input gives the same JSON
    if status not in ("optimal", "feasible"):
        return FleetResult(status, fm.spec, {str(m.path.name): None for m in members}, {}, {}, None, stats, model=fm)
    plans = {m.path.name: extract_plan(m.work, catalog, m.compiled, solver) for m in members}
    bought_values = {d: solver.value(v) for d, v in fm.bought.items()}
    tco = _tco(fm.spec, catalog, plans, bought_values, fm.hours)
    usage = {key: solver.value(expr) / scale for key, (expr, scale) in fm.shared.items()}
    return FleetResult(status, fm.spec, plans, bought_values, tco, sum(tco.values()) / fm.hours, stats,
                       usage=usage, model=fm)


def solve_fleet(path: Path, catalog: Catalog, settings: SolverSettings | None = None,
                rent_only: bool = False, shapes: dict[Path, dict] | None = None) -> FleetResult:
    """The fleet's lowest-TCO plan; `rent_only` forbids buying (and owning) to price the alternative."""
    settings = settings or SolverSettings()
    spec, members = load_fleet(path, catalog, rent_only, shapes)
    return solve_fleet_model(build_fleet_model(spec, members, catalog), catalog, settings)


def _tco(spec: FleetSpec, catalog: Catalog, plans: dict[str, Plan], bought: dict[str, int],
         hours: float) -> dict[str, float]:
    """USD over the horizon by component, recomputed from the plans (not from the solver's integers)."""
    cloud = owned_energy = 0.0
    for plan in plans.values():
        for part in plan.parts:
            m = part.evaluation.metrics
            per_job = m.get("usd_per_job")
            usd = per_job if per_job is not None else (m.get("usd_per_hour") or 0.0) * hours
            if part.evaluation.candidate.offering is None:
                owned_energy += usd
            else:
                cloud += usd
    capex = ops = residual = 0.0
    for d, count in bought.items():
        price = catalog.purchases[d].usd_per_device * count
        capex += price
        ops += price * spec.buy.ops_fraction_per_year * spec.horizon_years
        residual -= price * spec.buy.residual_fraction
    return {"cloud": cloud, "owned_energy": owned_energy, "capex": capex, "operations": ops, "residual": residual}


@dataclass
class RentOrBuy:
    buy: FleetResult
    rent: FleetResult
    explanation: object | None = None  # the buying plan's (planner.explain.Explanation)

    @property
    def saving(self) -> float | None:
        if self.buy.usd_per_hour is None or self.rent.usd_per_hour is None:
            return None
        return self.rent.usd_per_hour - self.buy.usd_per_hour

    def break_even_price(self, catalog: Catalog) -> dict[str, float]:
        """Per bought device type, the purchase price at which buying stops paying, the rest of the plan kept:
        TCO is linear in the price, so it is where the bought devices' share equals the rent-only saving."""
        out = {}
        spec = self.buy.spec
        if not spec.buy or self.saving is None:
            return out
        share = (1 - spec.buy.residual_fraction) + spec.buy.ops_fraction_per_year * spec.horizon_years
        hours = spec.horizon_years * HOURS_PER_YEAR
        for device, count in self.buy.bought.items():
            if count:
                price = catalog.purchases[device].usd_per_device
                out[device] = price + self.saving * hours / (count * share)
        return out


def rent_or_buy(path: Path, catalog: Catalog, settings: SolverSettings | None = None,
                explain: bool = False) -> RentOrBuy:
    """The fleet's plan, the rent-only alternative and, with `explain`, why the plan is what it is."""
    settings = settings or SolverSettings()
    shapes: dict[Path, dict] = {}
    buy = solve_fleet(path, catalog, settings, shapes=shapes)
    explanation = None
    if explain:
        from planner.fleet.questions import explain_fleet

        explanation = explain_fleet(buy, catalog, settings)
    return RentOrBuy(buy, solve_fleet(path, catalog, settings, rent_only=True, shapes=shapes), explanation)
