"""Render a tier result: the plan per workload with its real-time verdict and cost per site per month, the
checker's verdicts, and the explanation, as text (terminal), Markdown or a JSON-ready dict."""

from __future__ import annotations

from planner.explain.render import lines as explanation_lines
from planner.tier import TierResult
from planner.tier.options import TierOption
from planner.tier.spec import HOURS_PER_MONTH, VisionTierWorkload
from planner.tier.units import pool_loads, shared_wait_ms


def _option_line(o: TierOption) -> str:
    parts = " + ".join(f"{k} ${v:,.2f}" for k, v in o.cost_parts.items())
    basis = "" if o.basis == "model" else f", measured ({o.basis})"
    tpot = "" if o.tpot_ms is None else f", TPOT {o.tpot_ms:.1f} ms"
    where = f"{o.role}: {o.label()}" + (f" [{o.model}]" if o.model else "")
    edge = ""
    if o.role != "pool" and o.tier == "edge" and o.detail.get("batch", 1) > 1:
        edge += f", batch {o.detail['batch']}"
    if o.host_load is not None:
        decoder = o.detail.get("decoder")
        edge += f", host {100 * o.host_load:.0f}% busy" + (f" ({decoder} decode)" if decoder and decoder != "none" else "")
    if "power_basis" in o.detail:
        edge += f", draws {o.detail['busy_w']:.1f} W busy (measured, {o.detail['power_basis']})"
    return (f"  {where}\n    latency {o.latency_ms:.1f} ms{tpot}{edge}, site power {o.site_power_w:g} W, uplink "
            f"{o.uplink_mbps:.2f} Mbps; ${o.usd_per_month:,.2f}/site/month ({parts}){basis}")


def lines(result: TierResult) -> list[str]:
    spec, plan = result.spec, result.plan
    out = [f"{spec.name}: {plan.status}, {spec.site.count} site(s), objective {spec.objective}"]
    if plan.value is not None:
        total = plan.usd_per_site_month
        energy = plan.kwh_per_site_month
        out.append(f"cost ${total:,.2f} per site per month (${total * spec.site.count:,.0f} per month for all sites)"
                   + (f", energy {energy:,.1f} kWh per site per month" if energy is not None else ""))
        for w in spec.workloads:
            tier = plan.tier_of(w.name)
            out.append(f"{w.name} ({w.kind}, {w.model}): {tier.upper()}")
            for o in plan.of(w.name):
                out.append(_option_line(o))
            if isinstance(w, VisionTierWorkload):
                worst = _worst_latency_ms(w, plan)
                verdict = "meets" if worst <= w.frame_budget_ms + 1e-9 else "misses"
                out.append(f"    real time: {worst:.1f} ms per frame against the {w.frame_budget_ms:.1f} ms frame "
                           f"budget at {w.fps:g} FPS ({verdict} it; {w.streams} streams = "
                           f"{w.streams * w.fps:g} frames/s per site)")
                if w.video.codec == "none" and plan.tier_of(w.name) != "cloud":
                    out.append("    video: frames arrive decoded (video.codec none, MIPI/USB cameras); for IP "
                               "cameras set video.codec so the site's decoding is planned")
        for pool in (o for o in plan.options if o.role == "pool"):
            users = [o.workload for o in plan.options if o.role == "edge-shared"
                     and o.detail["pool"] == pool.detail["pool"]]
            load = pool_loads(plan.options)[pool.detail["pool"]]
            out.append(f"shared: {pool.label()} running {' + '.join(users)} ({100 * load:.0f}% loaded)")
            out.append(_option_line(pool))
        failed = [c for c in result.checks if not c.satisfied] + [None] * len(result.check_problems)
        out.append("checker: " + ("every limit holds on the rebuilt plan" if not failed else
                                  f"{len(failed)} problem(s): " + "; ".join(
                                      [c.id for c in result.checks if not c.satisfied] + result.check_problems)))
    ex = result.explanation
    if ex is not None:
        out += explanation_lines(ex)
    excluded = [f"  {w}: {reason} {', '.join(at)}".rstrip() for w, reasons in result.table.excluded.items()
                for reason, at in reasons.items()]
    if excluded:
        out.append("Not considered:")
        out += excluded
    out.append(f"({len(result.table.options)} options, {ex.solves if ex else 0} explanation solves, "
               f"{result.seconds:.2f} s)")
    return out


def markdown(result: TierResult) -> str:
    body = lines(result)
    return f"# {body[0]}\n\n" + "\n".join(f"    {line}" if line.startswith(" ") else f"- {line}" for line in body[1:])


def as_dict(result: TierResult) -> dict:
    plan = result.plan
    return {
        "name": result.spec.name,
        "status": plan.status,
        "objective": plan.objective,
        "usd_per_site_month": None if plan.value is None else round(plan.usd_per_site_month, 4),
        "kwh_per_site_month": None if plan.kwh_per_site_month is None or not plan.options
        else round(plan.kwh_per_site_month, 4),
        "sites": result.spec.site.count,
        "hours_per_month": HOURS_PER_MONTH,
        "workloads": [_workload_dict(w, plan) for w in result.spec.workloads],
        "shared_devices": _shared_dicts(plan),
        "checks": [c.as_dict() for c in result.checks],
        "check_problems": result.check_problems,
        "explanation": result.explanation.as_dict() if result.explanation else None,
        "excluded": _excluded_list(result.table.excluded),
        "options": len(result.table.options),
    }


def _excluded_list(excluded: dict[str, dict[str, list[str]]]) -> list[dict]:
    """One record per (workload, device, reason): what was not considered, keyed by fields, not prose."""
    out = []
    for workload, reasons in excluded.items():
        for text, at in reasons.items():
            subject, _, reason = text.partition(": ")
            out.append({"workload": workload, "device": subject, "reason": reason or subject, "at": list(at)})
    return out


def _worst_latency_ms(w, plan) -> float:
    """A frame's worst latency, a shared device's wait for the other workloads' calls included."""
    return max(o.latency_ms + shared_wait_ms(o, plan.options) for o in plan.of(w.name))


def _shared_dicts(plan) -> list[dict]:
    return [{"device": p.device, "mode": p.mode, "units": p.units, "load": round(pool_loads(plan.options)[
        p.detail["pool"]], 4), "workloads": [o.workload for o in plan.options if o.role == "edge-shared"
                                           and o.detail["pool"] == p.detail["pool"]],
             "usd_per_month": round(p.usd_per_month, 4)} for p in plan.options if p.role == "pool"]


def _workload_dict(w, plan) -> dict:
    out = {"name": w.name, "kind": w.kind, "tier": plan.tier_of(w.name) if plan.options else None,
           "options": [_option_dict(o) for o in plan.of(w.name)]}
    if isinstance(w, VisionTierWorkload) and plan.options:
        worst = _worst_latency_ms(w, plan)
        out["real_time"] = {"frame_budget_ms": round(w.frame_budget_ms, 4), "latency_ms": round(worst, 4),
                            "meets_frame_budget": worst <= w.frame_budget_ms + 1e-9}
    return out


def _option_dict(o: TierOption) -> dict:
    return {"role": o.role, "model": o.model, "device": o.device, "mode": o.mode, "precision": o.precision,
            "units": o.units, "region": o.region, "usd_per_month": round(o.usd_per_month, 4),
            "cost_parts": {k: round(v, 4) for k, v in o.cost_parts.items()}, "latency_ms": round(o.latency_ms, 4),
            "tpot_ms": None if o.tpot_ms is None else round(o.tpot_ms, 4), "site_power_w": o.site_power_w,
            "uplink_mbps": round(o.uplink_mbps, 4), "accuracy": round(o.accuracy, 6), "basis": o.basis,
            "host_load": None if o.host_load is None else round(o.host_load, 4),
            "detail": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in o.detail.items()}}
