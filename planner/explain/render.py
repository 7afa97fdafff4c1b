"""Explanations for people, for every model alike: terminal text (rich) and Markdown for procurement
documents (the JSON is each part's `as_dict`)."""

from __future__ import annotations

from planner.explain import Explanation
from planner.explain.question import Limit
from planner.explain.whynot import Alternative


def format_value(x: float | None, unit: str) -> str:
    if x is None:
        return "—"
    if unit == "level":
        from planner.tier.spec import LOCALITY_RANK

        return {rank: name for name, rank in LOCALITY_RANK.items()}.get(round(x), f"{x:g}")
    if unit.lower().startswith("usd"):
        return format_objective(x, unit)
    if unit == "devices":
        return f"{x:,.0f} device" + ("" if round(x) == 1 else "s")
    text = f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"
    return text if unit == "ratio" else f"{text} {unit}".rstrip()


def format_objective(x: float | None, unit: str) -> str:
    """An objective or a price: `$1,234.50/h`, `$12.00/site/month`, `3.2 kwh/hour`."""
    if x is None:
        return "—"
    if unit.lower().startswith("usd"):
        per = unit.lower().replace("usd", "").replace("_per_", "/").replace("_", "/").strip("/ ")
        per = {"hour": "h", "h": "h", "job": "", "site/month": "site/month", "month": "month"}.get(per, per)
        return f"${x:,.2f}" + (f"/{per}" if per else "")
    return f"{x:,.3g} " + unit.replace("_per_", "/").replace("_", " ")


def _limit_text(item: Limit) -> str:
    where = f"{item.spec_path} = {format_value(item.bound, item.unit)}"
    return f"{item.id} ({where})"


def ruling_reason(item: Limit, need: float | None) -> str:
    """Why one limit rules a choice out: what the choice needs against the limit, or, when it is within the
    limit on its own (2 devices in 2 slots is no violation), that it rules it out only with the others."""
    if need is None:
        return item.id
    beyond = need < item.bound * (1 - 1e-9) if item.lower else need > item.bound * (1 + 1e-9)
    if beyond:
        return f"{item.id} (needs {format_value(need, item.unit)} against {format_value(item.bound, item.unit)})"
    return (f"{item.id} (together with the others; without them the choice uses {format_value(need, item.unit)} "
            f"of {format_value(item.bound, item.unit)})")


def _alternative_line(a: Alternative, objective_unit: str) -> str:
    head = f"  {a.workload + ': ' if a.workload else ''}{a.kind} {a.name}"
    if a.objective is not None:
        return f"{head}: {a.delta:+.0%} ({format_objective(a.objective, objective_unit)}): {a.reason}"
    if a.ruled_out_by and a.limits:
        reasons = [ruling_reason(a.limits[i], a.needs.get(i)) for i in a.ruled_out_by]
        lead = "ruled out by each of " if a.each_alone and len(reasons) > 1 else "ruled out by "
        return f"{head}: {lead}{', '.join(reasons)}{a.note}"
    return f"{head}: {a.reason}"


def lines(expl: Explanation) -> list[str]:
    unit = expl.objective_unit
    out: list[str] = []
    if expl.conflict is not None:
        c = expl.conflict
        if c.physical:
            out.append(f"No plan exists even without any of your limits: {c.physical}")
            return out
        out.append("These limits cannot hold together: " + " and ".join(_limit_text(i) for i in c.items) +
                   ("" if c.verified else " (minimality not verified)"))
        for r in c.relaxations:
            if r.to is None:
                out.append(f"  {r.item.id}: relaxing it alone is not enough (another conflict remains)")
            else:
                out.append(f"  {r.item.id} {format_value(r.item.bound, r.item.unit)} → {format_value(r.to, r.item.unit)}"
                           f" makes it feasible: {format_objective(r.objective, unit)}"
                           + (f", {r.plan}" if r.plan else ""))
        return out
    binding = [p for p in expl.limits if p.binding]
    if binding:
        out.append("Binding limits (dropping them lowers the objective):")
    for p in binding:
        u = p.item.unit
        text = (f"  {_limit_text(p.item)}: at {format_value(p.value, u)}{', tight' if p.tight else ''}; dropping it "
                f"saves {100 * p.drop_saving:.0f}%" + (f" ({p.drop_change})" if p.drop_change else ""))
        if p.relax_saving is not None and p.relax_saving > 1e-6:
            text += (f"; relaxing to {format_value(p.relaxed_to, u)} saves {100 * p.relax_saving:.0f}%"
                     + (f" ({p.relax_change})" if p.relax_change else ""))
        elif p.relaxed_to is not None:
            text += f"; relaxing to {format_value(p.relaxed_to, u)} alone saves nothing"
        out.append(text)
    loose = [p for p in expl.limits if not p.binding]
    if loose:
        out.append("Not binding: " + ", ".join(
            f"{p.item.id} ({format_value(p.value, p.item.unit)} of {format_value(p.item.bound, p.item.unit)}"
            f"{', tight' if p.tight else ''})" for p in loose))
    if expl.alternatives:
        out.append("Why not:")
        for a in sorted(expl.alternatives, key=lambda a: (a.workload or "", a.kind, a.objective is None,
                                                          a.objective or 0, a.name)):
            out.append(_alternative_line(a, unit))
    flips = [f for f in expl.flips if f.sentence]
    if flips:
        out.append("Where the decision flips:")
        out += [f"  {f.sentence}" for f in flips]
    if expl.skipped:
        out.append(f"Time limit reached; not explained: {', '.join(expl.skipped)} (raise --time-limit for them)")
    return out


def render(expl: Explanation) -> None:
    from rich.console import Console

    console = Console()
    for line in lines(expl) + [f"({expl.solves} re-solves, {expl.seconds:.2f}s)"]:
        console.print(line, highlight=False, markup=False)


def markdown(expl: Explanation) -> str:
    out = ["## Why this plan", ""]
    for line in lines(expl):
        out.append(f"- {line.strip()}" if line.startswith("  ") else f"\n**{line}**" if line.endswith(":") else line)
    return "\n".join(out)
