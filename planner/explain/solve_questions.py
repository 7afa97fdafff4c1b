"""A solve as a what-if model: the questions of `question.py` answered on clones of the compiled model
(`scenario.py`), and what a solve's plans mean to the explainer: why another device or provider loses,
how two plans differ, and where the chosen device's price would hand the plan to the runner-up."""

from __future__ import annotations

from dataclasses import dataclass, replace

from planner._ortools import cp_model
from planner.compile import compile_model
from planner.explain.diff import describe, describe_change
from planner.explain.question import (
    Answer,
    Choice,
    Limit,
    Parameter,
    Question,
    Questions,
)
from planner.explain.scenario import ScenarioRunner, limit_items
from planner.perf.disaggregated import pool_vendor_problem
from planner.perf.serving import wide_ep_domains
from planner.plan import Plan
from planner.solve import OBJECTIVE_UNITS, solve_compiled


@dataclass
class BreakEven:
    device: str
    runner_up: str
    price_now: float  # USD per device-hour of the chosen offering
    price_at_swap: float

    def as_dict(self) -> dict:
        return {"device": self.device, "runner_up": self.runner_up, "usd_per_device_hour_now": self.price_now,
                "usd_per_device_hour_at_swap": self.price_at_swap}

    def sentence(self) -> str:
        return (f"{self.device} stays best while its price is at most ${self.price_at_swap:.2f} per device-hour "
                f"(now ${self.price_now:.2f}); above that {self.runner_up} wins")


class SolveQuestions(Questions):
    def __init__(self, runner: ScenarioRunner, plan: Plan | None, checks):
        super().__init__()
        self.runner = runner
        self.plan = plan
        self.checks = {c.id: c for c in checks}
        spec, kind = runner.work.spec, runner.work.kind
        self.objective = spec.objective
        self.objective_unit = OBJECTIVE_UNITS[(spec.objective, kind == "training")]
        self._limits = limit_items(spec, runner.table.kind)
        self._by_id = {i.id: i for i in self._limits}
        self._runner_up: str | None = None

    def limits(self) -> list[Limit]:
        return self._limits

    def answer(self, question: Question) -> Answer:
        r = self.runner
        if question.parameter is not None:
            _, price = question.parameter
            device = self.plan.main.evaluation.candidate.device
            factor = price / self.plan.main.evaluation.candidate.offering.usd_per_device_hour
            compiled = compile_model(_scaled(r.table, device, factor), r.work.spec)
            result = solve_compiled(r.work, r.catalog, compiled, r.settings)
            return Answer(result.status, result.objective_value, result.plan)
        if question.bounds:
            if len(question.bounds) > 1 or question.dropped:
                raise ValueError("a solve question re-bounds one limit at a time, with nothing dropped")
            (item_id, value), = question.bounds
            outcome = r.at(self._by_id[item_id], value, question.allowed, question.feasibility_only)
        else:
            outcome = r.base(question.dropped, question.allowed, question.feasibility_only)
        return Answer(outcome.status, outcome.value if outcome.feasible else None, outcome.plan)

    def usage(self, limit: Limit, plan) -> float | None:
        if plan is not self.plan:
            return None  # only the chosen plan has been checked; others would need a re-evaluation
        if limit.unit_id == "inventory.per_device":
            return float(plan.devices_of(limit.id[len("inventory.per_device["):-1]))
        check = self.checks.get(limit.unit_id)
        return None if check is None else check.value

    def seed(self, ids: list[str], allowed) -> list[str] | None:
        """CP-SAT's assumption core, with one worker: cores are wrong with several (or-tools #3102, #5141)."""
        r = self.runner
        compiled = r.compiled if allowed is None else r.sub_model(allowed)
        model = compiled.model.clone()  # literals free: assume them on instead of fixing them
        literals = {compiled.limit_literals[i].index: i for i in ids if i in compiled.limit_literals}
        model.add_assumptions([model.get_bool_var_from_proto_index(idx) for idx in literals])
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.max_time_in_seconds = r.settings.seconds_left()
        if solver.solve(model) != cp_model.INFEASIBLE:
            return None
        core = {literals[i] for i in solver.sufficient_assumptions_for_infeasibility() if i in literals}
        return [i for i in ids if i in core] or None

    def physical(self) -> str:
        excluded = self.runner.table.excluded
        return "; ".join(f"{k}: {v.count} configurations, e.g. {v.example}" for k, v in excluded.items()) or \
            "no configuration in the search space"

    unrunnable = "memory.fits_device or the structure"

    def describe(self, plan, choice: Choice | None = None) -> str:
        return describe(plan)

    def change(self, before, after) -> str | None:
        return describe_change(before, after)

    def why_worse(self, chosen, other, choice: Choice) -> str:
        if choice.kind in ("serving mode", "expert layout"):
            return mode_worse(chosen, other)
        return why_worse(chosen, other, self.objective)

    def choices(self, plan: Plan) -> list[Choice]:
        r = self.runner
        spec = r.work.spec
        chosen_devices = {p.evaluation.candidate.device for p in plan.parts}
        devices = sorted({row.candidate.device for row in r.table.rows} | set(spec.search.devices))
        out = []
        for d in devices:
            if d in chosen_devices:
                continue
            rows = r.rows_of(lambda row, d=d: row.candidate.device == d)
            unavailable, by = (None, ()) if rows else self._no_rows(d)
            out.append(Choice("device", d, rows, unavailable=unavailable, unavailable_by=by))
        chosen_providers = {provider_of(p.evaluation.candidate) for p in plan.parts}
        for p in sorted({provider_of(row.candidate) for row in r.table.rows} - chosen_providers):
            out.append(Choice("provider", p, r.rows_of(lambda row, p=p: provider_of(row.candidate) == p)))
        if r.work.kind == "serving":
            out.append(self._other_mode(plan))
            layout = self._other_expert_layout(plan)
            if layout is not None:
                out.append(layout)
        return out

    def _other_expert_layout(self, plan: Plan) -> Choice | None:
        """MoE serving searched with wide expert parallel: the experts over several nodes, or within one node's
        scale-up domain, whichever was not chosen (None when no wide layout was searched)."""
        r = self.runner

        def wide(cand) -> bool:
            return wide_ep_domains(cand.parallel, r.catalog.systems[cand.system]) > 1

        chosen = any(wide(p.evaluation.candidate) for p in plan.parts)
        if not chosen and not any(wide(row.candidate) for row in r.table.rows):
            return None
        return Choice("expert layout", "within one node" if chosen else "wide expert parallel",
                      r.rows_of(lambda row: wide(row.candidate) != chosen))

    def _other_mode(self, plan: Plan) -> Choice:
        """Serving whole requests on every replica, or in a prefill and a decode pool: whichever was not chosen."""
        r = self.runner
        pools = plan.disaggregated
        rows = r.rows_of(lambda row: (row.role == "both") == pools)
        if rows:
            return Choice("serving mode", "aggregated" if pools else "disaggregated", rows)
        spec = r.work.spec
        engine = r.catalog.engine(spec.workload.engine)
        if pools:
            why = "search.disaggregated is always"
        elif spec.search.disaggregated == "never":
            why = "search.disaggregated is never"
        elif not engine.disaggregated:
            why = f"{engine.name} {engine.version} is planned aggregated only: {engine.disaggregated_reason}"
        elif all(pool_vendor_problem(engine, r.catalog.accelerators[d])
                 for d in {row.candidate.device for row in r.table.rows}):
            why = (f"{engine.name} {engine.version}'s KV connector is planned on "
                   f"{', '.join(engine.disaggregated_vendors)} devices only, none of which the search holds")
        else:
            why = "no searched system has a scale-out network in the catalog to send KV caches between pools"
        return Choice("serving mode", "aggregated" if pools else "disaggregated", rows, unavailable=why)

    def _no_rows(self, device: str) -> tuple[str, tuple[str, ...]]:
        r = self.runner
        reasons = sorted(r.table.excluded_by_device.get(device, {}))
        if "memory.fits_device" in reasons:
            bigger = next_memory_size(r.catalog, device)
            hint = f"; the next memory size, {bigger}, is in the catalog" if bigger else ""
            cap = node_cap(r.catalog, device) if r.work.kind == "training" else None
            hint = f"; {cap}" + hint if cap else hint
            return (f"memory.fits_device (no layout in the search space fits the model in its memory{hint})",
                    ("memory.fits_device",))
        why = ", ".join(reasons + offering_reasons(r.catalog, r.work.spec, device))
        return why or "no offering or system in the search space", ()

    def note(self, choice: Choice) -> str:
        if choice.kind == "device" and self.runner.work.kind == "training":
            cap = node_cap(self.runner.catalog, choice.name)
            return f" ({cap})" if cap else ""
        return ""

    def parameters(self, plan: Plan, alternatives) -> list[Parameter]:
        """The chosen device's price, for the cost objective, a single cloud device type and a feasible
        runner-up on another device."""
        devices = [a for a in alternatives if a.kind == "device" and a.objective is not None]
        runner_up = min(devices, key=lambda a: a.objective, default=None)
        cand = plan.main.evaluation.candidate
        if self.objective != "cost" or runner_up is None or len(plan.parts) != 1 or cand.offering is None:
            return []
        own = plan.totals.get("usd_per_job" if self.runner.table.kind == "training" else "usd_per_hour")
        if not own:
            return []
        self._runner_up = runner_up.name
        price = cand.offering.usd_per_device_hour
        # The chosen plan's cost is linear in its device's price, so the swap is expected at the cost ratio;
        # bisection takes over if another plan of the same device intervenes.
        ratio = runner_up.objective / own
        return [Parameter(f"price of {cand.device}", price, (price * max(1.0, ratio) * 2,), "USD per device-hour",
                          expected=price * ratio)]

    def decision(self, plan) -> str | None:
        return plan.main.evaluation.candidate.device if plan is not None else None

    def break_even(self, flips) -> BreakEven | None:
        flip = next((f for f in flips if f.at is not None), None)
        if flip is None:
            return None
        return BreakEven(flip.now, self._runner_up, flip.parameter.current, flip.holds_until)

    def flip_sentence(self, flip) -> str:
        return BreakEven(flip.now, self._runner_up, flip.parameter.current, flip.holds_until).sentence()


def solve_questions(work, catalog, result, checks, settings) -> SolveQuestions:
    return SolveQuestions(ScenarioRunner(work, catalog, result.table, result.compiled, settings), result.plan, checks)


def provider_of(candidate) -> str:
    return candidate.offering.provider if candidate.offering else "onprem"


def _scaled(table, device: str, factor: float):
    """The candidate table with one device's cloud prices multiplied by `factor`."""
    if table.kind == "training":
        rows = []
        for r in table.training_rows:
            if r.candidate.device == device and r.candidate.offering is not None:
                m = dict(r.evaluation.metrics)
                for key in ("usd_per_hour", "usd_per_job"):
                    if m.get(key) is not None:
                        m[key] *= factor
                r = replace(r, evaluation=replace(r.evaluation, metrics=m))
            rows.append(r)
        return replace(table, training_rows=rows)
    rows = [replace(r, usd_per_unit_hour=r.usd_per_unit_hour * factor)
            if r.candidate.device == device and r.usd_per_unit_hour is not None else r for r in table.replica_rows]
    return replace(table, replica_rows=rows)


def why_worse(chosen: Plan, other: Plan, objective_name: str) -> str:
    c, o = chosen.main.evaluation, other.main.evaluation
    c_dev, o_dev = chosen.totals.get("devices") or 0, other.totals.get("devices") or 0
    if c.prediction.kind == "training":
        # A job's cost is price per device-hour x device-hours: compare the two factors.
        c_rate = (c.metrics.get("tokens_per_s") or 0) / max(c_dev, 1)
        o_rate = (o.metrics.get("tokens_per_s") or 0) / max(o_dev, 1)
        speed = c_rate / o_rate if o_rate else float("inf")
        if objective_name == "cost":
            c_price = (c.metrics.get("usd_per_hour") or 0) / max(c_dev, 1)
            o_price = (o.metrics.get("usd_per_hour") or 0) / max(o_dev, 1)
            cheaper = "cheaper" if o_price < c_price else "dearer"
            return (f"${o_price:.2f} per device-hour ({cheaper} than ${c_price:.2f}) but "
                    f"{speed:.1f}x slower per device ({o_dev} devices against {c_dev})") if speed > 1 else (
                    f"${o_price:.2f} per device-hour against ${c_price:.2f}, {o_dev} devices against {c_dev}")
        return f"{speed:.1f}x slower per device, {o_dev} devices against {c_dev}"
    if objective_name == "cost":
        c_price = (c.metrics.get("usd_per_hour") or 0) / max(c_dev, 1)
        o_price = (o.metrics.get("usd_per_hour") or 0) / max(o_dev, 1)
        if o_price > c_price and o_dev <= c_dev:
            return "higher price per device-hour outweighs needing " + (
                "fewer devices" if o_dev < c_dev else "as many devices")
        if o_dev > c_dev and o_price <= c_price:
            return f"cheaper per device-hour but needs {o_dev} devices against {c_dev}"
        return f"{o_dev} devices at ${o_price:.2f}/device-h against {c_dev} at ${c_price:.2f}"
    return f"{o_dev} devices drawing {other.totals.get('power_kw') or 0:.1f} kW against {c_dev} at " \
           f"{chosen.totals.get('power_kw') or 0:.1f} kW"


def mode_worse(chosen: Plan, other: Plan) -> str:
    """Aggregated against disaggregated in the figures that decide between them: devices, and the decode
    steps that prompts no longer slow down against the prefill pool's extra wait and KV transfer."""
    def pools(plan: Plan) -> str:
        if not plan.disaggregated:
            return f"{plan.totals.get('devices')} devices"
        count = {role: sum(p.evaluation.candidate.devices for p in plan.parts if p.evaluation.candidate.role == role)
                 for role in ("prefill", "decode")}
        return f"{plan.totals.get('devices')} devices ({count['prefill']} prefill, {count['decode']} decode)"

    def latency(plan: Plan, key: str) -> str:
        value = plan.worst(key)
        return "?" if value is None else f"{value:,.1f} ms"

    return (f"{pools(other)} against {pools(chosen)}; TPOT {latency(other, 'tpot_ms')} against "
            f"{latency(chosen, 'tpot_ms')}, mean TTFT {latency(other, 'ttft_mean_ms')} against "
            f"{latency(chosen, 'ttft_mean_ms')}")


def next_memory_size(catalog, device_id: str) -> str | None:
    """The same vendor's next larger-memory device of the same or a newer family (A100 40 -> 80 GB,
    H100 -> H200, MI300X -> MI325X), which is what "memory to the next device size" means to a buyer."""
    device = catalog.accelerators[device_id]
    bigger = [a for a in catalog.accelerators.values()
              if a.vendor == device.vendor and a.kind == device.kind and a.memory_gb > device.memory_gb
              and a.form_factor == device.form_factor and a.peak_dense_tflops.get("bf16", 0)
              >= device.peak_dense_tflops.get("bf16", 0)]
    return min(bigger, key=lambda a: (a.memory_gb, a.id)).id if bigger else None


def node_cap(catalog, device: str) -> str | None:
    """The catalog gap that caps a device at one node for training, when every system of it lacks a
    scale-out network: that, not the user limit it then trips, is why it loses."""
    systems = [sy for sy in catalog.systems.values() if sy.accelerator == device]
    if not systems or any(sy.scaleout is not None for sy in systems):
        return None
    biggest = max(systems, key=lambda sy: sy.devices_per_node)
    return (f"the catalog has no scale-out network for {', '.join(sorted(sy.id for sy in systems))}, so at most "
            f"{biggest.devices_per_node} devices; a sourced NIC figure for it would lift the cap")


def offering_reasons(catalog, spec, device: str) -> list[str]:
    """Why none of a device's offerings is in the search space, filter by filter."""
    from planner.evaluate import confident_enough, owned_hardware_allowed

    systems = {sy.id for sy in catalog.systems.values() if sy.accelerator == device}
    offers = [o for o in catalog.offerings if o.system in systems]
    if not offers:
        return [] if owned_hardware_allowed(spec, device) else [f"no cloud offering of {device} in the catalog"]
    s = spec.search
    counts = {
        "search.providers": sum(1 for o in offers if s.providers and o.provider not in s.providers),
        "search.regions": sum(1 for o in offers if s.regions and o.region not in s.regions),
        "search.pricing": sum(1 for o in offers if s.pricing and o.pricing not in s.pricing),
        f"search.min_price_confidence ({s.min_price_confidence})": sum(1 for o in offers if not confident_enough(o, spec)),
    }
    out = [f"{n} of its {len(offers)} offerings left out by {field}" for field, n in counts.items() if n]
    return out
