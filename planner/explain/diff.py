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
    if plan.disaggregated:
        # The pools are the layout: one device, TP or batch would describe only one of them.
        for key in ("device", "TP", "PP", "batch"):
            facts.pop(key)
        facts["pools"] = " + ".join(
            f"{c.role} {part.replicas} x {c.device} TP{c.parallel.tp}"
            for part in sorted(plan.parts, key=lambda part: part.evaluation.candidate.role != "prefill")
            for c in [part.evaluation.candidate])
    elif len(plan.parts) > 1:
        facts["mix"] = "+".join(sorted(part.evaluation.candidate.device for part in plan.parts))
    return facts


def describe_change(before: Plan, after: Plan) -> str:
    a, b = _facts(before), _facts(after)
    changes = [f"{k} {a.get(k, '-')} → {b.get(k, '-')}" for k in
               ("device", "devices", "replicas", "DP", "TP", "PP", "precision", "batch", "where", "mix", "pools")
               if a.get(k) != b.get(k)]
    return ", ".join(changes) if changes else "same configuration"


def describe(plan: Plan) -> str:
    f = _facts(plan)
    if "pools" in f:
        return f"{f['devices']} devices, {f['pools']} ({f['precision']}) on {f['where']}"
    layout = f"TP{f['TP']}" + (f" PP{f['PP']}" if f["PP"] != "1" else "")
    count = (f"{f['replicas']} replica" + ("s" if f["replicas"] != "1" else "")) if "replicas" in f else f"DP{f['DP']}"
    return f"{f['devices']} x {f['device']} ({layout}, {count}, {f['precision']}) on {f['where']}"
