"""The solver-free checker: does a plan satisfy every constraint? The independent twin of the model.

It re-evaluates each part of the plan from the spec and the catalogs with the performance model (in
floating point, without the solver's fixed-point tables) and runs every constraint unit on the result:
per-part limits on the worst part, fleet-wide limits on the sums. Structural validity, memory fit and
full coverage of the demand are checked too.
"""

from __future__ import annotations

import math

from planner.catalog.loader import Catalog
from planner.constraints import UNITS, ConstraintCheck
from planner.evaluate import ResolvedWorkload, evaluate, structural_issues, with_demand
from planner.plan import ADDITIVE, Plan, PlanPart


def demand_of(work: ResolvedWorkload) -> float:
    w = work.spec.workload
    if w.kind == "serving":
        return w.traffic.requests_per_s
    if w.kind == "vision":
        return w.streams * w.fps_per_stream
    return 1.0


def rebuild(work: ResolvedWorkload, catalog: Catalog, parts: list[tuple]) -> Plan:
    """A plan from (candidate, load share) pairs, every part evaluated at its share of the demand."""
    demand = demand_of(work)
    built = []
    for cand, share in parts:
        part_work = with_demand(work, demand * share) if work.kind != "training" else work
        replicas = cand.parallel.dp if work.kind != "training" else None
        built.append(PlanPart(evaluate(part_work, catalog, cand), replicas, share))
    return Plan.of(built)


def check_plan(work: ResolvedWorkload, catalog: Catalog, plan: Plan) -> list[ConstraintCheck]:
    """Every applicable constraint's verdict on `plan`, recomputed from scratch."""
    fresh = rebuild(work, catalog, [(p.evaluation.candidate, p.load_share) for p in plan.parts])
    spec = work.spec
    out: list[ConstraintCheck] = []
    for part in fresh.parts:
        issues = structural_issues(work, catalog, part.evaluation.candidate)
        if issues:
            out.append(ConstraintCheck("structural", "The layout can run", None, 0.0, float(len(issues)), "issues",
                                       -float(len(issues)), False))
    shares = sum(p.load_share for p in fresh.parts if p.evaluation.candidate.role != "decode")
    if work.kind != "training":
        out.append(ConstraintCheck("demand.served", "The parts together serve the whole demand", None, 1.0,
                                   shares, "share", 0.0, abs(shares - 1.0) < 1e-6))
    prefilled = sum(p.load_share for p in fresh.parts if p.evaluation.candidate.role == "prefill")
    decoded = sum(p.load_share for p in fresh.parts if p.evaluation.candidate.role == "decode")
    if prefilled or decoded:
        out.append(ConstraintCheck("demand.decoded", "Decode pools take every request the prefill pools prefill",
                                   None, prefilled, decoded, "share", 0.0, abs(prefilled - decoded) < 1e-6))
        if catalog.engine(spec.workload.engine).disaggregated_tp == "decode_at_least_prefill":
            widest = max(p.evaluation.candidate.parallel.tp for p in fresh.parts
                         if p.evaluation.candidate.role == "prefill")
            narrowest = min(p.evaluation.candidate.parallel.tp for p in fresh.parts
                            if p.evaluation.candidate.role == "decode")
            out.append(ConstraintCheck("demand.decode_tp", "Decode pools are no narrower in TP than the prefill "
                                       "pools whose KV caches they receive", None, float(widest), float(narrowest),
                                       "tp", float(narrowest - widest), narrowest >= widest))
    for unit in UNITS:
        if unit.id == "inventory.per_device":
            for device, count in sorted(spec.limits.inventory.items()):
                value = float(fresh.devices_of(device))
                out.append(ConstraintCheck(unit.id, unit.title, f"limits.inventory.{device}", float(count), value,
                                           unit.unit, count - value, value <= count))
            continue
        limits = [unit.limit_of(spec, p.evaluation) for p in fresh.parts]
        if all(limit is None for limit in limits):
            continue
        if unit.metric in ADDITIVE:
            value = fresh.totals.get(unit.metric)
            limit = limits[0]
            ok = value is not None and value <= limit + 1e-9
            out.append(ConstraintCheck(unit.id, unit.title, unit.spec_path, float(limit), value, unit.unit,
                                       None if value is None else limit - value, ok))
            continue
        # Per-part limit (latency, memory, utilisation): the tightest part decides the slack.
        worst_slack, worst_value, worst_limit, ok = math.inf, None, None, True
        for part, limit in zip(fresh.parts, limits):
            value = part.evaluation.metrics.get(unit.metric)
            good = value is not None and not math.isnan(value) and value <= limit + 1e-9
            ok = ok and good
            slack = -math.inf if value is None else limit - value
            if slack < worst_slack:
                worst_slack, worst_value, worst_limit = slack, value, limit
        out.append(ConstraintCheck(unit.id, unit.title, unit.spec_path, float(worst_limit), worst_value, unit.unit,
                                   None if worst_value is None else worst_slack, ok))
    return out


def violations(checks: list[ConstraintCheck]) -> list[ConstraintCheck]:
    return [c for c in checks if not c.satisfied]
