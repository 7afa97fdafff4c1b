"""Why not each other device type (and provider): its best plan and the difference, or the limits that
rule it out (a minimal set, found by deletion on clones restricted to that device's rows)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from planner.explain.diff import describe
from planner.explain.scenario import ScenarioRunner, limit_items
from planner.plan import Plan


@dataclass
class Alternative:
    kind: str  # "device" or "provider"
    name: str
    objective: float | None
    delta: float | None  # relative to the chosen plan
    reason: str
    ruled_out_by: list[str]
    plan: Plan | None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "objective": self.objective, "delta": self.delta,
                "reason": self.reason, "ruled_out_by": self.ruled_out_by,
                "plan": describe(self.plan) if self.plan else None}


def _why_worse(chosen: Plan, other: Plan, objective_name: str) -> str:
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


def ruling_limits(runner: ScenarioRunner, rows: frozenset[int]) -> list[str]:
    """A minimal set of the user's limits under which these rows cannot make a plan ([] if none can)."""
    from planner.explain.conflict import minimal_subset

    items = [i.id for i in limit_items(runner.work.spec, runner.table.kind)]
    if not runner.base(frozenset(items), rows).feasible:
        return []  # infeasible with every user limit gone: physical (memory, missing figures)
    return minimal_subset(runner, items, rows)


def next_memory_size(catalog, device_id: str) -> str | None:
    """The same vendor's next larger-memory device of the same or a newer family (A100 40 -> 80 GB,
    H100 -> H200, MI300X -> MI325X), which is what "memory to the next device size" means to a buyer."""
    device = catalog.accelerators[device_id]
    bigger = [a for a in catalog.accelerators.values()
              if a.vendor == device.vendor and a.kind == device.kind and a.memory_gb > device.memory_gb
              and a.form_factor == device.form_factor and a.peak_dense_tflops.get("bf16", 0)
              >= device.peak_dense_tflops.get("bf16", 0)]
    return min(bigger, key=lambda a: (a.memory_gb, a.id)).id if bigger else None


def alternatives(runner: ScenarioRunner, chosen: Plan, objective: float) -> list[Alternative]:
    spec = runner.work.spec
    name = spec.objective
    chosen_devices = {p.evaluation.candidate.device for p in chosen.parts}
    devices = sorted({r.candidate.device for r in runner.table.rows} | set(spec.search.devices)) \
        if spec.search.devices else sorted({r.candidate.device for r in runner.table.rows})
    def provider_of(r) -> str:
        return r.candidate.offering.provider if r.candidate.offering else "onprem"

    groups = [("device", d, runner.rows_of(lambda r, d=d: r.candidate.device == d))
              for d in devices if d not in chosen_devices]
    chosen_providers = {(p.evaluation.candidate.offering.provider if p.evaluation.candidate.offering else "onprem")
                        for p in chosen.parts}
    providers = sorted({provider_of(r) for r in runner.table.rows})
    groups += [("provider", p, runner.rows_of(lambda r, p=p: provider_of(r) == p))
               for p in providers if p not in chosen_providers]
    runner.many([("base", frozenset(), rows) for _, _, rows in groups if rows])
    with ThreadPoolExecutor(max_workers=2) as pool:  # see ScenarioRunner.many: two solves at a time
        return list(pool.map(lambda g: _alternative(runner, g[0], g[1], g[2], chosen, objective, name), groups))


def _alternative(runner, kind, name, rows, chosen, objective, objective_name) -> Alternative:
    if not rows:
        reasons = sorted(runner.table.excluded_by_device.get(name, {})) if kind == "device" else []
        if "memory.fits_device" in reasons:
            bigger = next_memory_size(runner.catalog, name)
            hint = f"; the next memory size, {bigger}, is in the catalog" if bigger else ""
            cap = node_cap(runner.catalog, name) if runner.work.kind == "training" else None
            hint = f"; {cap}" + hint if cap else hint
            return Alternative(kind, name, None, None, "impossible: memory.fits_device (no layout in the search "
                               f"space fits the model in its memory{hint})", ["memory.fits_device"], None)
        why = ", ".join(reasons + (offering_reasons(runner.catalog, runner.work.spec, name) if kind == "device" else []))
        return Alternative(kind, name, None, None, f"impossible: {why or 'no offering or system in the search space'}",
                           [], None)
    best = runner.base(frozenset(), rows)
    if best.feasible:
        delta = (best.value - objective) / objective if objective else None
        return Alternative(kind, name, best.value, delta, _why_worse(chosen, best.plan, objective_name), [],
                           best.plan)
    limits = ruling_limits(runner, rows)
    reason = "impossible: " + (", ".join(limits) if limits else "memory.fits_device or the structure")
    if kind == "device" and runner.work.kind == "training":
        cap = node_cap(runner.catalog, name)
        if cap:
            reason += f" ({cap})"
    return Alternative(kind, name, None, None, reason, limits, None)


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
