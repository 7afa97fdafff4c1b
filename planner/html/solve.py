"""The solve report as a page a capacity planner forwards: the plan and its cost, every limit with its
slack, what relaxing each saves, why each other option lost, the break-even price, the provenance of
every figure, and the spec it answers. Built from the result's JSON (`planner.api.SolveReport.to_dict()`),
so the page and `--format json` say the same."""

from __future__ import annotations

from planner.html.charts import slack_bar
from planner.html.explanation import explanation_sections
from planner.html.page import e, number, page, section, table

# Figures shown, in order, with their labels; others in the JSON (duplicates, the engine) are left out.
LABELS = {"ttft_mean_ms": "TTFT mean (ms)", "ttft_p50_ms": "TTFT p50 (ms)", "ttft_p90_ms": "TTFT p90 (ms)",
          "ttft_p99_ms": "TTFT p99 (ms)", "tpot_mean_ms": "TPOT mean (ms)",
          "tpot_p99_ms": "TPOT p99 (ms)", "e2e_mean_ms": "end-to-end mean (ms)", "e2e_p99_ms": "end-to-end p99 (ms)",
          "tokens_per_s": "tokens/s", "max_num_seqs": "running-sequence cap",
          "max_requests_per_s": "max requests/s per replica", "running_batch": "running sequences per replica",
          "utilization": "utilisation", "memory_gib_per_device": "memory per device (GiB)", "power_kw": "IT power (kW)",
          "step_time_s": "step time (s)", "mfu": "MFU", "time_to_train_days": "time to train (days)",
          "latency_ms": "frame latency (ms)", "fps_capacity": "capacity (frames/s)",
          "usd_per_hour": "cost (USD/h)", "usd_per_job": "cost per job (USD)",
          "usd_per_million_tokens": "cost per 1M tokens (USD)", "usd_per_million_output_tokens":
          "cost per 1M output tokens (USD)", "energy_kwh_per_hour": "energy (kWh/h)", "energy_kwh_per_job":
          "energy per job (kWh)", "carbon_kg_per_hour": "carbon (kg CO2e/h)", "carbon_kg_per_job":
          "carbon per job (kg CO2e)", "spot_overhead_factor": "spot stretch factor"}


def _plan_cards(plan: dict, objective: dict) -> str:
    o = plan.get("offering") or {}
    where = (f"{o.get('provider')} {o.get('region') or ''} {o.get('pricing')} ({o.get('instance')})"
             if o.get("provider") != "onprem" else f"owned ({o.get('instance')})")
    p = plan["parallel"]
    layout = f"TP{p['tp']} PP{p['pp']} DP{p['dp']}" + (f" EP{p['ep']}" if p.get("ep", 1) > 1 else "")
    cards = [("devices", f"{plan['devices']} × {plan['device']}"), ("where", where),
             ("layout", f"{layout}, {plan['precision']}"), ("replicas", plan.get("replicas")),
             ("nodes", plan.get("nodes")),
             (objective["name"], f"{number(objective['value'])} {objective['unit']}")]
    for role, parts in (plan.get("roles") or {}).items():
        # A disaggregated plan: the cards above describe one pool; each pool gets its own.
        cards.append((f"{role} pool", "; ".join(
            f"{q['devices']} × {q['device']} TP{q['parallel']['tp']} × {q['replicas']}" for q in parts)))
    html = "".join(f'<div class="card"><div class="k">{e(k)}</div><div class="v">{e(v)}</div></div>'
                   for k, v in cards)
    price = ""
    if o.get("usd_per_hour_per_instance") is not None:
        price = (f'<p class="note">Price ${o["usd_per_hour_per_instance"]:,.2f}/h per {o["devices_per_instance"]}-device '
                 f'instance, <b>{e(o["confidence"])} confidence</b>, as of {e(o["as_of"])} '
                 f'(sources {e(", ".join(o.get("source", [])))}).</p>')
    return f'<div class="cards">{html}</div>{price}'


def _predicted(plan: dict) -> str:
    pred = plan.get("predicted", {})
    bands = pred.get("expected_error_pct", {})
    # tpot_ms is the mean's older name: its band is the mean's.
    rows = [[e(LABELS[k]), number(v), f"±{bands[k]:.0f}%" if k in bands else ""]
            for k, v in pred.items() if k in LABELS and isinstance(v, (int, float)) and not isinstance(v, bool)]
    cost = [[e(LABELS.get(k, k)), number(v), ""] for k, v in plan.get("cost", {}).items()]
    note = (f'<p class="note"><b>{e(pred.get("provenance", "estimated"))}</b> prediction; expected error is the '
            f'{e(pred.get("expected_error_basis", ""))}.</p>')
    return table(["figure", "predicted", "p90 error"], rows + cost, numeric={1, 2}) + note


def _limits(data: dict) -> str:
    rows = []
    for c in data.get("constraints", []):
        if c.get("spec_path") is None and c["id"] != "memory.fits_device":
            continue
        tags = []
        if c.get("binding"):
            tags.append('<span class="tag binding">binding</span>')
        elif c.get("tight"):
            tags.append('<span class="tag tight">tight</span>')
        relax = c.get("relax") or {}
        saving = ""
        if c.get("drop_saving"):
            saving = f"dropping it saves {number(c['drop_saving'])}"
        if relax.get("saving"):
            saving += ("; " if saving else "") + f"to {number(relax['to'])}: saves {number(relax['saving'])}"
        elif "to" in relax and not saving:
            saving = f"nothing at {number(relax['to'])} ({relax.get('change') or 'same plan'})"
        rows.append([f"<code>{e(c['id'])}</code> {' '.join(tags)}<br><span class=\"note\">{e(c.get('spec_path') or '')}"
                     "</span>", number(c.get("value")), number(c.get("limit")), e(c.get("unit")),
                     slack_bar(c.get("value"), c.get("limit"), bool(c.get("binding"))), e(saving)])
    return table(["limit", "value", "bound", "unit", "used", "what relaxing it saves"], rows, numeric={1, 2})


def solve_page(data: dict, spec_name: str, spec_text: str | None = None) -> str:
    status = data["status"]
    objective = data["objective"]
    plan = data.get("plan")
    head = (f'<h1>{e(spec_name)}</h1><p class="headline"><span class="status {e(status)}">{e(status)}</span> ')
    if plan:
        head += (f"{plan['devices']} × <b>{e(plan['device'])}</b>, {e(objective['name'])} "
                 f"<b>{number(objective['value'])} {e(objective['unit'])}</b>")
        if data.get("gap"):
            head += f" (gap {100 * data['gap']:.2f}%)"
    else:
        head += "no plan meets every limit"
    head += "</p>"
    body = [head]
    if plan:
        body.append(section("The plan", _plan_cards(plan, objective), "plan"))
        body.append(section("Predicted figures", _predicted(plan), "predicted"))
    body.append(section("Every limit, its slack, and what relaxing it saves", _limits(data), "limits"))
    explanation = {"alternatives": data.get("alternatives"), "conflict": data.get("conflict"),
                   "flips": (data.get("explanation") or {}).get("flips")}
    if data.get("explanation") is not None or data.get("conflict"):
        body.append(explanation_sections(explanation, objective["unit"],
                                         (plan["device"], objective["value"]) if plan else None, limits=False))
    else:
        body.append(section("Why not the others", '<p class="note">Not analysed (solved without the explanation).'
                                                  '</p>', "whynot"))
    notes = data.get("price_notes") or []
    if notes:
        body.append(section("Prices left out", "<ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>",
                            "prices"))
    if spec_text:
        body.append(section("The spec it answers", f"<pre>{e(spec_text)}</pre>", "spec"))
    return page(f"planner: {spec_name}", "".join(body))
