"""Compile a candidate table and the spec's limits into a CP-SAT model.

Formulation
-----------
Training (rows r are complete configurations):
    x_r in {0,1},  sum_r x_r = 1
    for each limit unit u with bound L_u:   sum_r x_r * v_ur <= L_u          (enforced by literal e_u)
Serving and vision (rows c are replica configurations; D is the demand, scaled to DEMAND_UNITS):
    x_c in {0,1}, replicas n_c in [0, N_c], load share l_c in [0, D]
    x_c <= n_c <= N_c * x_c,  l_c <= D * x_c,  sum_c l_c = D,  sum_c x_c = 1 unless mixing is allowed
    disaggregated pools: the sums run over whole-request rows and prefill pools; per pairing s (the split of
        the limits spanning both pools, one vendor, one checkpoint precision),
        sum_{prefill c in s} l_c = sum_{decode c in s} l_c (each request is decoded where its KV cache goes)
    stability (structural, never dropped): l_c <= r_stable_c * n_c   (utilisation below 1)
    for each rate limit u (utilisation cap, TTFT, TPOT, end-to-end, frame budget):
        l_c <= r_uc * n_c                                                      (enforced by e_u)
        (r_uc: the load one replica carries within limit u, precomputed by the performance model)
    vision batching: l_c >= m_c * n_c (each replica must receive frames fast enough to fill its batch)
    billed units b_c * unit_devices_c >= n_c * devices_per_replica_c (a variable only when replicas
        do not fill whole instances)
    devices, inventory (one literal per device type), peak power and hourly budget are linear sums
    Without mixing, l_c is the expression D * x_c rather than a variable.
Objective: cost (USD/h serving, USD/job training), energy (kWh) or carbon (kg CO2e), in fixed point.
Ties are broken in a second solve that fixes the optimum and minimises paid devices left idle (serving:
replicas may fill the instances already billed), then devices, then latency rank, then row order, so
the answer never depends on which optimal solution the solver met first.

Every user limit is one named constraint gated by one enforcement literal owned by `limit_literals`.
The compiled model leaves them free: the solve fixes them all on in a clone, the explainer turns some
off in its clones (`solve.scenario_model`). Rows whose numbers a limit or the
objective cannot read (no TDP for a power cap, no PUE for energy) are forced out under that limit's
literal and recorded, never silently dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from planner._ortools import cp_model

from planner.candidates import RATE_UNITS, CandidateTable, ReplicaRow, TrainingRow
from planner.constraints import BY_ID
from planner.errors import Problem, SolveError
from planner.spec import WorkloadSpec
from planner.units import to_bound, to_fixed

DEMAND_UNITS = 10_000  # the demand is split in units of 0.01%
MICRO = 1_000_000  # replica-model money, power, energy and carbon are integers in millionths
MAX_REPLICAS = 100_000
OBJECTIVE_UNITS = {"cost": 100, "energy": 1000, "carbon": 1000}  # training per job: cents, Wh, g


@dataclass
class CompiledModel:
    model: cp_model.CpModel
    table: CandidateTable
    spec: WorkloadSpec
    x: list[cp_model.IntVar]
    n: list[cp_model.IntVar] = field(default_factory=list)
    load: list[cp_model.IntVar] = field(default_factory=list)
    limit_literals: dict[str, cp_model.IntVar] = field(default_factory=dict)
    objective: cp_model.LinearExpr | None = None
    objective_scale: float = 1.0
    secondary: cp_model.LinearExpr | None = None
    # The tie-break without its idle-device term, for tables so large (tens of thousands of rows) that the
    # full weighting leaves the solver's 64-bit objective range.
    secondary_coarse: cp_model.LinearExpr | None = None
    forced_out: dict[str, int] = field(default_factory=dict)  # unit id -> rows it cannot evaluate
    cost_terms: tuple[list, list[int]] | None = None
    replica_caps: list[int] = field(default_factory=list)
    # Paid devices left idle (billed units x devices per unit - replicas x devices per replica), per row
    # whose replicas do not fill whole instances.
    idle_paid: list = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.table.kind


def active_limits(spec: WorkloadSpec, kind: str) -> dict[str, float]:
    """The user limits that apply to this spec (unit id -> bound), in registry order."""
    out: dict[str, float] = {}
    for unit in BY_ID.values():
        if not unit.user_limit:
            continue
        if unit.id == "inventory.per_device":
            if spec.limits.inventory:
                out[unit.id] = 0.0  # per-device bounds are read from the spec when building
            continue
        limit = unit.limit_of(spec, None)
        if limit is not None:
            out[unit.id] = float(limit)
    if kind != "training":
        out.setdefault("throughput.max_utilization", spec.limits.max_utilization)
    return out


def compile_model(table: CandidateTable, spec: WorkloadSpec, limits: dict[str, float] | None = None,
                  model: cp_model.CpModel | None = None, caps: dict[str, float] | None = None) -> CompiledModel:
    """Build the model; `limits` overrides bounds (the explainer's relaxations) and defaults to the spec's.

    `model`: add to an existing model (a fleet compiles every workload into one) instead of a new one.
    `caps`: {"energy" or "carbon": bound} in kWh or kg CO2e per hour (serving, vision) or per job (training),
    the epsilon of a Pareto front; not user limits, so no literal."""
    limits = active_limits(spec, table.kind) if limits is None else limits
    model = model if model is not None else cp_model.CpModel()
    if table.kind == "training":
        compiled = _compile_training(model, table, spec, limits)
    else:
        compiled = _compile_replicas(model, table, spec, limits)
    for which, bound in (caps or {}).items():
        terms, unknown = _footprint_terms(compiled, which)
        model.add(sum(terms) <= to_bound(bound, MICRO if table.kind != "training" else OBJECTIVE_UNITS[which])
                  ).with_name(f"pareto.{which}_cap")
        _force_out(compiled, unknown, f"pareto.{which}_cap")
    # The literals stay free here: every solve works on a clone that fixes them (all on for the plan;
    # the explainer turns some off).
    return compiled


def inventory_item(device: str) -> str:
    """Inventory is one limit per device type, each with its own literal."""
    return f"inventory.per_device[{device}]"


def _literal(compiled: CompiledModel, unit_id: str) -> cp_model.IntVar:
    lit = compiled.limit_literals.get(unit_id)
    if lit is None:
        lit = compiled.limit_literals[unit_id] = compiled.model.new_bool_var(f"enforce[{unit_id}]")
    return lit


# ------------------------------------------------------------------------------------------- training

TRAINING_METRIC_SCALE = {
    "devices.max_count": 1,
    "power.site_cap": 1000,  # W
    "budget.hourly": 1000,  # milli-USD
    "budget.job": 100,  # cents
    "time.deadline": 10_000,  # 1e-4 days
}


def _training_objective_value(row: TrainingRow, objective: str) -> float | None:
    m = row.evaluation.metrics
    return {"cost": m.get("usd_per_job"), "energy": m.get("energy_kwh_per_job"),
            "carbon": m.get("carbon_kg_per_job")}[objective]


def _compile_training(model, table: CandidateTable, spec: WorkloadSpec, limits: dict[str, float]) -> CompiledModel:
    rows: list[TrainingRow] = table.training_rows
    x = [model.new_bool_var(f"x[{r.index}]") for r in rows]
    compiled = CompiledModel(model=model, table=table, spec=spec, x=x)
    model.add_exactly_one(x) if x else model.add_bool_or([])  # no row: infeasible by construction

    for unit_id, bound in limits.items():
        unit = BY_ID[unit_id]
        lit = _literal(compiled, unit_id) if unit_id != "inventory.per_device" else None
        if unit_id == "inventory.per_device":
            for device, count in sorted(spec.limits.inventory.items()):
                terms = [(x[r.index], r.candidate.devices) for r in rows if r.candidate.device == device]
                if terms:
                    item = inventory_item(device)
                    model.add(sum(v * c for v, c in terms) <= count).with_name(item).only_enforce_if(
                        _literal(compiled, item))
            continue
        scale = TRAINING_METRIC_SCALE[unit_id]
        terms, unknown = [], []
        for r in rows:
            value = r.evaluation.metrics.get(unit.metric)
            if value is None or math.isinf(value):
                unknown.append(r.index)
            else:
                terms.append((x[r.index], to_fixed(value, scale)))
        model.add(sum(v * c for v, c in terms) <= to_bound(bound, scale)).with_name(unit_id).only_enforce_if(lit)
        _force_out(compiled, unknown, unit_id, lit)

    scale = OBJECTIVE_UNITS[spec.objective]
    obj_terms = []
    for r in rows:
        value = _training_objective_value(r, spec.objective)
        if value is None:
            _force_out(compiled, [r.index], f"objective.{spec.objective}")
        else:
            obj_terms.append((x[r.index], to_fixed(value, scale)))
    compiled.objective = sum(v * c for v, c in obj_terms)
    compiled.objective_scale = scale
    ranked = sorted(rows, key=lambda r: r.evaluation.prediction.step_time_s)
    rank = {r.index: i for i, r in enumerate(ranked)}
    big = len(rows) + 1
    compiled.secondary = sum(x[r.index] * (r.candidate.devices * big * big + rank[r.index] * big + r.index)
                             for r in rows)
    return compiled


# ------------------------------------------------------------------------------------------- replicas


def _rate_units(rate: float, demand: float) -> int:
    """Load one replica can carry, in demand units, rounded down (conservative)."""
    if math.isinf(rate):
        return DEMAND_UNITS
    return min(DEMAND_UNITS, int(math.floor(rate / demand * DEMAND_UNITS + 1e-9)))


def _max_replicas(row: ReplicaRow, demand: float) -> int:
    cap = MAX_REPLICAS
    # More replicas than needed at the utilisation cap alone only add cost; a latency limit can need more,
    # so the bound uses the slowest finite rate of any of the row's limits.
    finite = [r for r in row.rate_limits.values() if 0 < r < math.inf]
    if finite:
        cap = min(cap, int(math.ceil(demand / min(finite))) + 1)
    return max(cap, 0)


def _fill_instances(row: ReplicaRow, cap: int) -> int:
    """Allow as many replicas as the instances the cap needs could hold: a paid device need not idle."""
    if row.usd_per_unit_hour is None or row.devices_per_replica % row.unit_devices == 0 or cap <= 0:
        return cap
    units = -(-cap * row.devices_per_replica // row.unit_devices)
    return max(cap, units * row.unit_devices // row.devices_per_replica)


def _compile_replicas(model, table: CandidateTable, spec: WorkloadSpec, limits: dict[str, float]) -> CompiledModel:
    rows: list[ReplicaRow] = table.replica_rows
    demand = table.demand
    per_unit_rate = demand / DEMAND_UNITS  # requests/s (or frames/s) per demand unit
    x, n, load = [], [], []
    caps = [_fill_instances(r, _max_replicas(r, demand)) for r in rows]
    mixing = spec.search.allow_mix
    for r in rows:
        x.append(model.new_bool_var(f"x[{r.index}]"))
        n.append(model.new_int_var(0, caps[r.index], f"replicas[{r.index}]"))
        # One configuration carries the whole demand unless mixing is allowed: then the load it carries
        # is a decision too. Keeping it an expression of x otherwise leaves a much smaller model.
        load.append(model.new_int_var(0, DEMAND_UNITS, f"load[{r.index}]") if mixing else DEMAND_UNITS * x[-1])
    compiled = CompiledModel(model=model, table=table, spec=spec, x=x, n=n,
                             load=load if mixing else [], replica_caps=caps)
    for r in rows:
        i = r.index
        model.add(n[i] >= x[i])
        model.add(n[i] <= caps[i] * x[i])
        if mixing:
            model.add(load[i] <= DEMAND_UNITS * x[i])
    _serve_demand(model, rows, x, load, mixing, table.decode_tp_at_least_prefill)

    for unit_id, bound in limits.items():
        lit = _literal(compiled, unit_id) if unit_id != "inventory.per_device" else None
        if unit_id in RATE_UNITS:
            for r in rows:
                rate = r.rate_limits.get(unit_id)
                if rate is None:
                    continue
                model.add(load[r.index] <= _rate_units(rate, demand) * n[r.index]).with_name(
                    f"{unit_id}[{r.index}]").only_enforce_if(lit)
                if unit_id == "throughput.max_utilization" and r.rate_limits.get("throughput.stable") is not None:
                    # With the cap dropped, replicas must still keep up (utilisation below 1): structural.
                    stable = _rate_units(r.rate_limits["throughput.stable"], demand)
                    model.add(load[r.index] <= stable * n[r.index]).with_name(
                        f"throughput.stable[{r.index}]").only_enforce_if(~lit)
                if unit_id == "latency.frame_budget" and r.min_rate > 0:
                    needed = int(math.ceil(r.min_rate / demand * DEMAND_UNITS))
                    model.add(load[r.index] >= needed * n[r.index]).with_name(
                        f"{unit_id}.fill_batch[{r.index}]").only_enforce_if(lit)
        elif unit_id == "devices.max_count":
            model.add(sum(n[r.index] * r.devices_per_replica for r in rows) <= to_bound(bound, 1)).with_name(
                unit_id).only_enforce_if(lit)
        elif unit_id == "inventory.per_device":
            for device, count in sorted(spec.limits.inventory.items()):
                terms = [n[r.index] * r.devices_per_replica for r in rows if r.candidate.device == device]
                if terms:
                    item = inventory_item(device)
                    model.add(sum(terms) <= count).with_name(item).only_enforce_if(_literal(compiled, item))
        elif unit_id == "power.site_cap":
            # The cap must hold the fleet at full load: peak watts per replica, whatever the load.
            terms = []
            for r in rows:
                if r.power_peak_w is None:
                    _force_out(compiled, [r.index], unit_id, lit)
                    continue
                terms.append(n[r.index] * to_fixed(r.power_peak_w, 1))
            model.add(sum(terms) <= to_bound(bound * 1000, 1)).with_name(unit_id).only_enforce_if(lit)
        elif unit_id == "budget.hourly":
            cost, unknown = _cost_terms(model, rows, n, load, per_unit_rate, compiled)
            model.add(sum(cost) <= to_bound(bound, MICRO)).with_name(unit_id).only_enforce_if(lit)
            _force_out(compiled, unknown, unit_id, lit)
        elif unit_id == "budget.job":
            continue  # training only
        else:
            raise SolveError(Problem(f"constraint `{unit_id}` has no replica formulation"))

    _replica_objective(model, compiled, rows, n, load, per_unit_rate, spec)
    ranked = sorted(rows, key=lambda r: r.latency_s)
    rank = {r.index: i for i, r in enumerate(ranked)}
    big = len(rows) + 1
    # Ties: no paid device idle first (more replicas on the instances already paid for cost nothing and
    # cut latency), then fewer devices, lower latency, the earlier row.
    devices = sum(n[r.index] * r.devices_per_replica for r in rows)
    compiled.secondary = (sum(compiled.idle_paid) * big * big * big + devices * big * big
                          + sum(x[r.index] * (rank[r.index] * big + r.index) for r in rows))
    compiled.secondary_coarse = devices * big + sum(x[r.index] * rank[r.index] for r in rows)
    return compiled


def _serve_demand(model, rows: list[ReplicaRow], x, load, mixing: bool, decode_tp_at_least_prefill: bool) -> None:
    """Whole-request rows and prefill pools carry the demand between them; every prefill pool's load is
    matched by decode pools of its pairing (a request is prefilled on one pool and decoded on the other)."""
    entry = [r.index for r in rows if r.role in ("both", "prefill")]
    if not entry:
        model.add_bool_or([])
        return
    if mixing:
        model.add(sum(load[i] for i in entry) == DEMAND_UNITS).with_name("demand.served")
    else:
        model.add_exactly_one([x[i] for i in entry])
    for pairing in dict.fromkeys(r.pairing for r in rows if r.role != "both"):
        prefill = [load[r.index] for r in rows if r.role == "prefill" and r.pairing == pairing]
        decode = [load[r.index] for r in rows if r.role == "decode" and r.pairing == pairing]
        model.add(sum(prefill) == sum(decode)).with_name("demand.decoded")
        if decode_tp_at_least_prefill:
            _decode_no_narrower(model, [r for r in rows if r.pairing == pairing and r.role != "both"], x)


def _decode_no_narrower(model, rows: list[ReplicaRow], x) -> None:
    """No decode pool narrower (in TP) than a prefill pool it pairs with: a literal per prefill TP degree in use."""
    def tp(r: ReplicaRow) -> int:
        return r.candidate.parallel.tp

    decode = [r for r in rows if r.role == "decode"]
    for degree in sorted({tp(r) for r in rows if r.role == "prefill"}):
        narrower = [r for r in decode if tp(r) < degree]
        if not narrower:
            continue
        used = model.new_bool_var(f"prefill_tp{degree}_used")
        for r in rows:
            if r.role == "prefill" and tp(r) == degree:
                model.add(x[r.index] <= used)
        for r in narrower:
            model.add(x[r.index] + used <= 1).with_name("demand.decode_tp")


def _power_uw(row: ReplicaRow, per_unit_rate: float, factor: float) -> tuple[int, int] | None:
    """(microwatts per replica at idle, microwatts per demand unit carried), both times `factor`."""
    if row.power_static_w is None:
        return None
    return (to_fixed(row.power_static_w * factor, MICRO), to_fixed(row.power_per_rate_w * per_unit_rate * factor, MICRO))


def _cost_terms(model, rows, n, load, per_unit_rate, compiled: CompiledModel) -> tuple[list, list[int]]:
    """Micro-USD per hour: billed units for cloud rows, electricity at the meter for owned rows.

    Returns the terms and the rows whose cost is unknown (owned hardware without an electricity price).
    """
    if compiled.cost_terms is not None:
        return compiled.cost_terms
    terms, unknown = [], []
    for r in rows:
        if r.usd_per_unit_hour is not None:
            price = to_fixed(r.usd_per_unit_hour, MICRO)
            if r.devices_per_replica % r.unit_devices == 0:
                # Replicas fill whole instances: the bill is linear in replicas, no rounding variable needed.
                terms.append(n[r.index] * (r.devices_per_replica // r.unit_devices * price))
                continue
            cap = compiled.replica_caps[r.index] * r.devices_per_replica // r.unit_devices + 1
            b = model.new_int_var(0, cap, f"billed_units[{r.index}]")
            model.add(b * r.unit_devices >= n[r.index] * r.devices_per_replica)
            compiled.idle_paid.append(b * r.unit_devices - n[r.index] * r.devices_per_replica)
            terms.append(b * price)
            continue
        site = r.site
        coeffs = None
        if site.electricity_usd_per_kwh is not None and site.pue is not None:
            # W x PUE x USD/kWh / 1000 = USD/h
            coeffs = _power_uw(r, per_unit_rate, site.pue * site.electricity_usd_per_kwh * 1e-3)
        if coeffs is None:
            unknown.append(r.index)
            continue
        terms += [n[r.index] * coeffs[0], load[r.index] * coeffs[1]]
    compiled.cost_terms = (terms, unknown)
    return compiled.cost_terms


def _force_out(compiled: CompiledModel, rows: list[int], key: str, lit=None) -> None:
    for i in rows:
        c = compiled.model.add(compiled.x[i] == 0)
        if lit is not None:
            c.only_enforce_if(lit)
    if rows:
        compiled.forced_out[key] = compiled.forced_out.get(key, 0) + len(rows)


def _replica_objective(model, compiled: CompiledModel, rows, n, load, per_unit_rate, spec: WorkloadSpec) -> None:
    if spec.objective == "cost":
        terms, unknown = _cost_terms(model, rows, n, load, per_unit_rate, compiled)
        _force_out(compiled, unknown, "objective.cost")
        compiled.objective = sum(terms)
        compiled.objective_scale = MICRO  # micro-USD per hour
        return
    terms, unknown = _footprint_terms(compiled, spec.objective)
    _force_out(compiled, unknown, f"objective.{spec.objective}")
    compiled.objective = sum(terms)
    compiled.objective_scale = MICRO  # micro-kWh/h or micro-kg/h


def _footprint_terms(compiled: CompiledModel, which: str) -> tuple[list, list[int]]:
    """Energy (kWh) or carbon (kg CO2e) as linear terms: per hour for replica rows (micro-units), per job
    for training rows (OBJECTIVE_UNITS); and the rows that lack the site figures to count it."""
    table = compiled.table
    terms, unknown = [], []
    if table.kind == "training":
        metric = {"energy": "energy_kwh_per_job", "carbon": "carbon_kg_per_job"}[which]
        for r in table.training_rows:
            value = r.evaluation.metrics.get(metric)
            if value is None:
                unknown.append(r.index)
            else:
                terms.append(compiled.x[r.index] * to_fixed(value, OBJECTIVE_UNITS[which]))
        return terms, unknown
    per_unit_rate = table.demand / DEMAND_UNITS
    load = compiled.load or [DEMAND_UNITS * x for x in compiled.x]
    for r in table.replica_rows:
        pue, intensity = r.site.pue, r.site.grid_gco2_per_kwh
        coeffs = None
        if pue is not None and (which == "energy" or intensity is not None):
            # energy: W x PUE / 1000 = kWh per hour; carbon: kWh/h x g/kWh / 1000 = kg per hour
            factor = pue * 1e-3 if which == "energy" else pue * intensity * 1e-6
            coeffs = _power_uw(r, per_unit_rate, factor)
        if coeffs is None:
            unknown.append(r.index)
            continue
        terms += [compiled.n[r.index] * coeffs[0], load[r.index] * coeffs[1]]
    return terms, unknown
