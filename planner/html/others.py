"""HTML pages for the other answers: compare side by side, the Pareto front, the edge-or-cloud tiering and a
sweep's summary. Each is built from its command's JSON, like the solve page."""

from __future__ import annotations

from planner.html.charts import bar_chart, slack_bar
from planner.html.explanation import explanation_sections
from planner.html.page import e, number, page, section, table


def compare_page(rows: list[dict], title: str) -> str:
    body = [f"<h1>{e(title)}</h1><p class=\"headline\">Each option at its own optimum.</p>"]
    for workload in dict.fromkeys(r["workload"] for r in rows):
        mine = [r for r in rows if r["workload"] == workload]
        money = "usd_per_job" if any(r.get("usd_per_job") is not None for r in mine) else "usd_per_hour"
        ok = [r for r in mine if r["status"] == "ok" and r.get(money) is not None]
        best = min(ok, key=lambda r: r[money]) if ok else None
        chart = bar_chart([(f"{r['kind']} {r['name']}", r.get(money) if r["status"] == "ok" else None, r is best,
                            ", ".join(r.get("deciding") or []) or r["status"]) for r in mine], money, "compare")
        cells = [[e(f"{r['kind']} {r['name']}"), number(r.get("devices")) if r["status"] == "ok" else "impossible",
                  number(r.get("usd_per_hour")), number(r.get(money)) if money != "usd_per_hour" else "",
                  e(", ".join(r.get("deciding") or []))] for r in mine]
        body.append(section(workload, chart + table(["option", "devices", "USD/h", money.replace("_", " "),
                                                     "decided by"], cells, numeric={1, 2, 3}), "w-" + str(len(body))))
    return page(title, "".join(body))


def pareto_page(front: dict, title: str, width: int = 640, height: int = 360) -> str:
    """Cost against the second axis: the front as a step line, each point optimal for its limit, the
    spec's own plan (the cheapest) marked, and the spec's limit as a dashed line."""
    metric, points, slo = front["metric"], front["points"], front.get("slo")
    body = [f"<h1>{e(title)}: cost against {e(front['axes'][1])}</h1>"]
    if not points:
        return page(title, "".join(body) + "<p>No point of the front was traced.</p>")
    xs = [p[metric] for p in points] + ([slo] if slo is not None else [])
    ys = [p["objective_usd"] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    pad_x, pad_y = (x1 - x0) * 0.08 or 1.0, (y1 - y0) * 0.12 or 1.0
    left, right, top, bottom = 70, 20, 20, 40

    def sx(v: float) -> float:
        return left + (v - x0 + pad_x) / (x1 - x0 + 2 * pad_x) * (width - left - right)

    def sy(v: float) -> float:
        return height - bottom - (v - y0 + pad_y) / (y1 - y0 + 2 * pad_y) * (height - top - bottom)

    ordered = sorted(points, key=lambda p: p[metric])
    path = " ".join(f"{'M' if i == 0 else 'L'}{sx(p[metric]):.1f},{sy(p['objective_usd']):.1f}"
                    for i, p in enumerate(ordered))
    cheapest = min(points, key=lambda p: p["objective_usd"])
    svg = [f'<svg class="pareto" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="Pareto front">',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="var(--line)"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="var(--line)"/>',
           f'<path d="{path}" fill="none" stroke="var(--other)"/>']
    if slo is not None:
        near_right = sx(slo) > 0.7 * width
        svg.append(f'<line class="slo" x1="{sx(slo):.1f}" y1="{top}" x2="{sx(slo):.1f}" y2="{height - bottom}" '
                   f'stroke="var(--bad)" stroke-dasharray="4 3"/><text x="{sx(slo) + (-4 if near_right else 4):.1f}" '
                   f'y="{top + 12}" text-anchor="{"end" if near_right else "start"}" fill="var(--bad)">'
                   f'the spec\'s limit {number(slo)}</text>')
    for p in points:
        chosen = p is cheapest
        svg.append(f'<circle class="point{" chosen" if chosen else ""}" cx="{sx(p[metric]):.1f}" '
                   f'cy="{sy(p["objective_usd"]):.1f}" r="{6 if chosen else 4}" '
                   f'fill="{"var(--chosen)" if chosen else "var(--other)"}"><title>{e(p["plan"])}</title></circle>')
        anchor = "end" if sx(p[metric]) > width / 2 else "start"
        dx = -8 if anchor == "end" else 8
        svg.append(f'<text x="{sx(p[metric]) + dx:.1f}" y="{sy(p["objective_usd"]) - 6:.1f}" text-anchor="{anchor}">'
                   f'{e(p.get("label", ""))}</text>')
    svg.append(f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">{e(metric)}</text>')
    svg.append(f'<text x="14" y="{(top + height - bottom) / 2}" transform="rotate(-90 14 {(top + height - bottom) / 2})" '
               f'text-anchor="middle">{e(front["unit"])}</text>')
    for value in (y0, y1):
        svg.append(f'<text x="{left - 6}" y="{sy(value) + 4:.1f}" text-anchor="end">{number(value)}</text>')
    for value in (min(p[metric] for p in points), max(p[metric] for p in points)):
        svg.append(f'<text x="{sx(value):.1f}" y="{height - bottom + 14}" text-anchor="middle">{number(value)}</text>')
    svg.append("</svg>")
    rows = [[number(p["objective_usd"]), number(p[metric]), e(p["plan"])] for p in ordered]
    body.append(section("The front", "".join(svg) + table([front["unit"], metric, "plan"], rows, numeric={0, 1}),
                        "front"))
    notes = front.get("off_front", []) + [f"not traced: {s}" for s in front.get("skipped", [])]
    if notes:
        body.append(section("Notes", "<ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>", "notes"))
    return page(title, "".join(body))


def tier_page(data: dict, spec_text: str | None = None) -> str:
    body = [f"<h1>{e(data['name'])}</h1><p class=\"headline\"><span class=\"status {e(data['status'])}\">"
            f"{e(data['status'])}</span> {number(data.get('usd_per_site_month'))} USD per site per month over "
            f"{e(data.get('sites'))} sites</p>"]
    rows = []
    for w in data.get("workloads", []):
        for o in w.get("options", []):
            rows.append([e(w["name"]), e(w["tier"]), e(o.get("role")), e(f"{o.get('units')} x {o.get('device')}"),
                         e(o.get("model")), e(o.get("precision")), e(o.get("region") or ""),
                         number(o.get("usd_per_month")), number(o.get("latency_ms")), e(o.get("basis"))])
    body.append(section("Where each workload runs", table(["workload", "tier", "role", "devices", "model", "precision",
                                                           "region", "USD/month", "latency (ms)", "basis"], rows,
                                                          numeric={7, 8}), "plan"))
    shared = data.get("shared_devices") or []
    if shared:
        srows = [[e(f"{p['units']} x {p['device']} @{p['mode']}"), e(" + ".join(p["workloads"])),
                  number(100 * p["load"]), number(p["usd_per_month"])] for p in shared]
        body.append(section("Shared edge devices", table(["devices", "workloads", "load (%)", "USD/month"], srows,
                                                         numeric={2, 3}), "shared"))
    explanation = data.get("explanation")
    if explanation:
        unit = "USD/site-month" if data.get("objective") == "cost" else "kWh/site-month"
        body.append(explanation_sections(explanation, unit, ("this plan", data.get(
            "usd_per_site_month" if data.get("objective") == "cost" else "kwh_per_site_month"))))
    else:
        lrows = [[f"<code>{e(c['id'])}</code>", number(c.get("value")), number(c.get("limit")),
                  slack_bar(c.get("value"), c.get("limit"))] for c in data.get("checks") or []]
        body.append(section("Every limit and its slack", table(["limit", "value", "bound", "used"], lrows,
                                                               numeric={1, 2}), "limits"))
    if spec_text:
        body.append(section("The spec it answers", f"<pre>{e(spec_text)}</pre>", "spec"))
    return page(f"planner tier: {data['name']}", "".join(body))


def sweep_page(rows: list[dict], flips: list[dict], title: str) -> str:
    from planner.sweep.summary import answer, axes_of, decider

    axes = axes_of(rows)
    cells = [[e(r[f"axis:{a}"]) for a in axes] + [e(answer(r)), number(r.get("objective_value")), e(decider(r))]
             for r in rows]
    body = [f"<h1>{e(title)}</h1><p class=\"headline\">{len(rows)} scenarios, {len(flips)} places where the "
            "answer flips.</p>"]
    if len(axes) >= 2:
        body.append(section("Winning device", _heatmap(rows, axes[0], axes[1]), "heatmap"))
    frows = [[e(f["axis"]), e(f"{f['from']} → {f['to']}"), e(", ".join(f"{k}={v}" for k, v in f["held"].items())),
              e(f"{f['answer_before']} → {f['answer_after']}"), e(f"{f['tight_before']} → {f['tight_after']}")]
             for f in flips]
    body.append(section("Where the answer flips, and which limits decide it",
                        table(["axis", "step", "others held at", "plan", "deciding limits"], frows), "flips"))
    body.append(section("Every scenario", table(axes + ["plan", "objective", "deciding limits"], cells,
                                                 numeric={len(axes) + 1}), "scenarios"))
    return page(title, "".join(body))


PALETTE = ("#2b6cb0", "#2f855a", "#b7791f", "#9f7aea", "#c53030", "#319795", "#d53f8c", "#718096")


def _heatmap(rows: list[dict], x: str, y: str) -> str:
    others = [a.removeprefix("axis:") for a in rows[0] if a.startswith("axis:") and a not in (f"axis:{x}", f"axis:{y}")]
    held = {a: rows[0][f"axis:{a}"] for a in others}
    cells = [r for r in rows if all(r[f"axis:{a}"] == v for a, v in held.items())]
    xs = sorted({r[f"axis:{x}"] for r in cells}, key=lambda v: (isinstance(v, str), v))
    ys = sorted({r[f"axis:{y}"] for r in cells}, key=lambda v: (isinstance(v, str), v))
    winners = sorted({r["device"] or r["status"] for r in cells})
    cw, ch, left, top = 56, 26, 90, 10
    width, height = left + cw * len(xs) + 150, top + ch * len(ys) + 40
    svg = [f'<svg class="heatmap" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="winning device">']
    for r in cells:
        i, j = xs.index(r[f"axis:{x}"]), ys.index(r[f"axis:{y}"])
        who = r["device"] or r["status"]
        svg.append(f'<rect class="cell" x="{left + i * cw}" y="{top + (len(ys) - 1 - j) * ch}" width="{cw - 2}" '
                   f'height="{ch - 2}" fill="{PALETTE[winners.index(who) % len(PALETTE)]}"><title>{e(answer_text(r))}'
                   "</title></rect>")
    for i, v in enumerate(xs):
        svg.append(f'<text x="{left + i * cw + cw / 2}" y="{top + len(ys) * ch + 14}" text-anchor="middle">{e(v)}</text>')
    for j, v in enumerate(ys):
        svg.append(f'<text x="{left - 6}" y="{top + (len(ys) - 1 - j) * ch + 17}" text-anchor="end">{e(v)}</text>')
    svg.append(f'<text x="{left + cw * len(xs) / 2}" y="{height - 4}" text-anchor="middle">{e(x)}</text>')
    for k, who in enumerate(winners):
        svg.append(f'<rect x="{left + cw * len(xs) + 12}" y="{top + k * 18}" width="12" height="12" '
                   f'fill="{PALETTE[k % len(PALETTE)]}"/><text x="{left + cw * len(xs) + 30}" y="{top + k * 18 + 11}">'
                   f"{e(who)}</text>")
    svg.append("</svg>")
    caption = f'<p class="note">Rows: {e(y)}. Other axes held at ' + (
        ", ".join(f"{k}={v}" for k, v in held.items()) or "—") + ".</p>"
    return "".join(svg) + caption


def answer_text(row: dict) -> str:
    from planner.sweep.summary import answer

    return answer(row)


def fleet_page(data: dict, title: str) -> str:
    """A fleet over its horizon: what to buy and rent, the total cost of ownership by part against renting
    everything, and the purchase price at which buying stops paying."""
    body = [f"<h1>{e(title)}</h1><p class=\"headline\"><span class=\"status {e(data['status'])}\">{e(data['status'])}"
            f"</span> total cost of ownership <b>${number(data.get('tco_usd'))}</b> over {number(data.get('horizon_years'))}"
            f" years (${number(data.get('usd_per_hour'))}/h)</p>"]
    rent = data.get("rent_only") or {}
    if rent.get("tco_usd") is not None:
        body.append(section("Against renting everything", bar_chart(
            [("this fleet", data.get("tco_usd"), True, "buy and rent"),
             ("rent only", rent.get("tco_usd"), False, "no purchase")], "USD", "fleet"),
            "rent") + f"<p>Saving <b>${number(data.get('saving_vs_rent_only_usd'))}</b> over the horizon.</p>")
    parts = data.get("tco_breakdown_usd") or {}
    body.append(section("Where the money goes", table(["part", "USD"], [[e(k.replace("_", " ")), number(v)]
                                                                      for k, v in parts.items()], numeric={1}), "parts"))
    bought = data.get("bought") or {}
    body.append(section("Bought", table(["device", "units", "break-even purchase price (USD/device)"],
                                        [[e(d), number(n), number((data.get("break_even_purchase_usd_per_device") or {})
                                                                  .get(d))] for d, n in bought.items()],
                                        numeric={1, 2}), "bought"))
    plans = data.get("plans") or {}
    body.append(section("Each workload's plan", table(["workload", "this fleet", "rent only"],
                                                      [[e(w), e(p), e((rent.get("plans") or {}).get(w, ""))]
                                                       for w, p in plans.items()]), "plans"))
    body.append(explanation_sections(data.get("explanation"), "USD/h (TCO over the horizon)",
                                     ("this fleet", data.get("usd_per_hour"))))
    return page(title, "".join(body))
