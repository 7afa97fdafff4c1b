"""The explanation as page sections, one rendering for every model (solve, fleet, tier), from the
explanation's JSON (`planner.explain.Explanation.as_dict()`): every limit with its slack and price, why
not each other choice, the minimal conflict with the nearest feasible value of each limit, and where the
decision flips."""

from __future__ import annotations

from planner.html.charts import bar_chart, slack_bar
from planner.html.page import e, number, section, table


def _saving(limit: dict) -> str:
    drop, relax = limit.get("drop") or {}, limit.get("relax") or {}
    text = f"dropping it saves {number(drop['saving'])}" if limit.get("binding") and drop.get("saving") else ""
    if relax.get("saving"):
        text += ("; " if text else "") + f"to {number(relax['to'])}: saves {number(relax['saving'])}"
    elif relax.get("to") is not None:
        text += ("; " if text else "") + f"nothing at {number(relax['to'])}"
    return text


def limits_section(explanation: dict) -> str:
    rows = []
    for c in explanation.get("limits") or []:
        tag = (' <span class="tag binding">binding</span>' if c.get("binding") else
               ' <span class="tag tight">tight</span>' if c.get("tight") else "")
        rows.append([f"<code>{e(c['id'])}</code>{tag}<br><span class=\"note\">{e(c.get('spec_path') or '')}</span>",
                     number(c.get("value")), number(c.get("limit")), e(c.get("unit")),
                     slack_bar(c.get("value"), c.get("limit"), bool(c.get("binding"))), e(_saving(c))])
    return section("Every limit, its slack, and what relaxing it saves",
                   table(["limit", "value", "bound", "unit", "used", "what relaxing it saves"], rows, numeric={1, 2}),
                   "limits")


def why_not_section(explanation: dict, objective_unit: str, chosen: tuple[str, float | None] | None) -> str:
    alts = explanation.get("alternatives") or []
    if not alts:
        return section("Why not the others", '<p class="note">Nothing else to compare (or solved without the '
                                              'explanation).</p>', "whynot")

    def label(a: dict) -> str:
        return f"{a['workload'] + ': ' if a.get('workload') else ''}{a['kind']} {a['name']}"

    items = [(label(a), a.get("objective"), False, a.get("plan") or a.get("reason") or "") for a in alts]
    if chosen is not None:
        items.append((f"chosen: {chosen[0]}", chosen[1], True, "the plan"))
    rows = [[e(label(a)), number(a.get("objective")), e(a.get("reason")), e(a.get("plan") or "")]
            for a in sorted(alts, key=lambda a: (a.get("objective") is None, a.get("objective") or 0))]
    return section("Why not the others", bar_chart(items, objective_unit, "whynot") +
                   table(["option", objective_unit, "why not", "its best plan"], rows, numeric={1}), "whynot")


def conflict_section(explanation: dict) -> str:
    conflict = explanation.get("conflict")
    if not conflict:
        return ""
    if conflict.get("physical"):
        body = f"<p>No plan exists even without any of your limits: {e(conflict['physical'])}</p>"
    else:
        rows = [[f"<code>{e(c['id'])}</code><br><span class=\"note\">{e(c.get('spec_path') or '')}</span>",
                 number(c.get("limit")), e(c.get("unit")),
                 number(c.get("nearest_feasible")) if c.get("nearest_feasible") is not None else "relaxing it alone is "
                 "not enough", number(c.get("objective_there"))] for c in conflict.get("limits") or []]
        body = table(["limit", "bound", "unit", "nearest feasible value", "objective there"], rows, numeric={1, 3, 4})
        if not conflict.get("minimal_verified", True):
            body += '<p class="note">Minimality not verified within the time limit.</p>'
    return section("Why no plan exists: the smallest set of limits that conflict", body, "conflict")


def flips_section(explanation: dict) -> str:
    flips = [f for f in explanation.get("flips") or [] if f.get("flips_at") is not None]
    if not flips:
        return ""
    rows = [[e(f["parameter"]), number(f.get("current")), number(f.get("flips_at")), e(f.get("unit")),
             e(_changes(f))] for f in flips]
    sentences = "".join(f"<li>{e(f['sentence'])}</li>" for f in flips if f.get("sentence"))
    return section("Where the decision flips", (f"<ul>{sentences}</ul>" if sentences else "") +
                   table(["parameter", "now", "flips at", "unit", "what changes"], rows, numeric={1, 2}), "flips")


def _changes(flip: dict) -> str:
    now, then = flip.get("now"), flip.get("then")
    if isinstance(now, dict) and isinstance(then, dict):
        return ", ".join(f"{w} {t} → {then.get(w)}" for w, t in now.items() if then.get(w) != t) or "infeasible"
    return f"{now} → {then}"


def explanation_sections(explanation: dict | None, objective_unit: str, chosen=None, limits: bool = True) -> str:
    if not explanation:
        return ""
    parts = [limits_section(explanation)] if limits else []
    parts += [why_not_section(explanation, objective_unit, chosen) if not explanation.get("conflict") else "",
              flips_section(explanation), conflict_section(explanation)]
    return "".join(parts)
