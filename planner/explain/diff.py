"""Say in a few words how two plans differ: what a relaxation or another device changes."""

from __future__ import annotations

from planner.plan import Plan


def _facts(plan: Plan) -> dict[str, str]:
    main = plan.main.evaluation.candidate
    p = main.parallel
    o = main.offering
    facts = {
        "device": main.device,
        "devices": str(plan.totals.get("devices") or main.devices),
        "where": f"{o.provider} {o.region} {o.pricing}" if o else "owned",
        "precision": main.precision,
        "TP": str(p.tp),
        "PP": str(p.pp),
        "batch": str(p.micro_batch),
    }
    if plan.main.replicas is not None:
        facts["replicas"] = str(sum(part.replicas or 0 for part in plan.parts))
    else:
        facts["DP"] = str(p.dp)
    if len(plan.parts) > 1:
        facts["mix"] = "+".join(sorted(part.evaluation.candidate.device for part in plan.parts))
    return facts


def describe_change(before: Plan, after: Plan) -> str:
    a, b = _facts(before), _facts(after)
    changes = [f"{k} {a.get(k, '-')} → {b.get(k, '-')}" for k in
               ("device", "devices", "replicas", "DP", "TP", "PP", "precision", "batch", "where", "mix")
               if a.get(k) != b.get(k)]
    return ", ".join(changes) if changes else "same configuration"


def describe(plan: Plan) -> str:
    f = _facts(plan)
    layout = f"TP{f['TP']}" + (f" PP{f['PP']}" if f["PP"] != "1" else "")
    count = (f"{f['replicas']} replica" + ("s" if f["replicas"] != "1" else "")) if "replicas" in f else f"DP{f['DP']}"
    return f"{f['devices']} x {f['device']} ({layout}, {count}, {f['precision']}) on {f['where']}"
