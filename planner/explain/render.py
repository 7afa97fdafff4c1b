"""Explanations for people: terminal text (rich) and Markdown for procurement documents."""

from __future__ import annotations

from planner.explain import Explanation


def _num(x: float | None, unit: str = "") -> str:
    if x is None:
        return "—"
    if unit == "ratio":
        unit = ""
    text = f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"
    return f"{text} {unit}".rstrip()


def _money(x: float | None, unit: str) -> str:
    if x is None:
        return "—"
    if unit.startswith("usd"):
        return f"${x:,.2f}" + ("/h" if unit.endswith("hour") else "")
    return _num(x, unit.replace("_per_", "/").replace("_", " "))


def lines(expl: Explanation, objective_unit: str) -> list[str]:
    out: list[str] = []
    if expl.conflict is not None:
        c = expl.conflict
        if c.physical:
            out.append(f"No plan exists even without any of your limits: {c.physical}")
            return out
        names = " and ".join(f"{i.id} ({i.spec_path} = {_num(i.value, i.unit)})" for i in c.items)
        out.append(f"These limits cannot hold together: {names}" +
                   ("" if c.verified else " (minimality not verified)"))
        for r in c.relaxations:
            if r.to is None:
                out.append(f"  {r.item.id}: relaxing it alone is not enough (another conflict remains)")
            else:
                out.append(f"  {r.item.id} {_num(r.item.value, r.item.unit)} → {_num(r.to, r.item.unit)} makes it "
                           f"feasible: {_money(r.objective, objective_unit)}, {r.plan and _describe(r.plan)}")
        return out
    binding = [p for p in expl.limits if p.binding]
    if binding:
        out.append("Binding limits (dropping them lowers the objective):")
    for p in binding:
        text = (f"  {p.item.id} ({p.item.spec_path} = {_num(p.item.value, p.item.unit)}): at {_num(p.value, p.item.unit)}"
                f"{', tight' if p.tight else ''}; dropping it saves {100 * p.drop_saving:.0f}% ({p.drop_change})")
        if p.relax_saving is not None and p.relax_saving > 1e-6:
            text += (f"; relaxing to {_num(p.relaxed_to, p.item.unit)} saves {100 * p.relax_saving:.0f}% "
                     f"({p.relax_change})")
        elif p.relax_saving is not None:
            text += f"; relaxing to {_num(p.relaxed_to, p.item.unit)} alone saves nothing"
        out.append(text)
    loose = [p for p in expl.limits if not p.binding]
    if loose:
        out.append("Not binding: " + ", ".join(
            f"{p.item.id} ({_num(p.value, p.item.unit)} of {_num(p.item.value, p.item.unit)}"
            f"{', tight' if p.tight else ''})" for p in loose))
    if expl.alternatives:
        out.append("Why not:")
        for a in sorted(expl.alternatives, key=lambda a: (a.kind, a.objective is None, a.objective or 0, a.name)):
            if a.objective is not None:
                out.append(f"  {a.kind} {a.name}: +{100 * a.delta:.0f}% ({_money(a.objective, objective_unit)}): "
                           f"{a.reason}")
            else:
                out.append(f"  {a.kind} {a.name}: {a.reason}")
    if expl.break_even:
        out.append("Break-even: " + expl.break_even.sentence())
    if expl.skipped:
        out.append(f"Time limit reached; not explained: {', '.join(expl.skipped)} (raise --time-limit for them)")
    out.append(f"({expl.solves} re-solves, {expl.seconds:.2f}s)")
    return out


def _describe(plan) -> str:
    from planner.explain.diff import describe

    return describe(plan)


def render(expl: Explanation, objective_unit: str) -> None:
    from rich.console import Console

    console = Console()
    for line in lines(expl, objective_unit):
        console.print(line, highlight=False, markup=False)


def markdown(expl: Explanation, objective_unit: str) -> str:
    body = lines(expl, objective_unit)
    out = ["## Why this plan", ""]
    for line in body:
        out.append(f"- {line.strip()}" if line.startswith("  ") else f"\n**{line}**" if line.endswith(":") else line)
    return "\n".join(out)
