"""Side by side: the same workload priced on every device type and provider of its search space, each at
its own optimum, with the cost per job (training) or per million tokens (serving), energy, carbon and the
limit that decides it. For procurement spreadsheets (`--format csv`) and documents (`--format markdown`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.catalog.loader import Catalog
from planner.check import check_plan
from planner.evaluate import ResolvedWorkload
from planner.explain.question import Question
from planner.explain.solve_questions import provider_of, solve_questions
from planner.explain.whynot import ruling_limits
from planner.solve import SolverSettings, solve

TIGHT = 0.05  # a limit within 5% of its bound at a device's best plan is named as what decides it


@dataclass
class CompareRow:
    workload: str
    kind: str  # device or provider
    name: str
    status: str
    devices: int | None
    plan: str | None
    usd_per_hour: float | None
    usd_per_job: float | None
    usd_per_million_tokens: float | None
    energy_kwh: float | None  # per job (training) or per hour (serving, vision)
    carbon_kg: float | None
    deciding: list[str]
    # What the row's figures cannot show, said rather than left blank (a region the catalog has no PUE for).
    notes: list[str] = field(default_factory=list)

    COLUMNS = ("workload", "kind", "name", "status", "devices", "plan", "usd_per_hour", "usd_per_job",
               "usd_per_million_tokens", "energy_kwh", "carbon_kg", "deciding", "notes")

    def values(self) -> list:
        return [getattr(self, c) if c not in ("deciding", "notes") else "; ".join(getattr(self, c))
                for c in self.COLUMNS]


def footprint_gaps(plan, catalog: Catalog) -> list[str]:
    """Each device and cloud region of a plan whose energy or carbon the catalog cannot give, and why."""
    notes = []
    for part in plan.parts:
        c = part.evaluation.candidate
        if part.evaluation.metrics.get("power_avg_kw") is None:
            notes.append(f"{c.device}: the catalog has no power figure for it, so energy and "
                         "carbon are unknown")
            continue
        o = c.offering
        if o is None:
            continue
        region = catalog.region(o.provider, o.region)
        if region is None or region.pue is None:
            what = "no entry for the region" if region is None else "no PUE for it"
            notes.append(f"{o.provider} {o.region}: the catalog has {what}, so energy and carbon are unknown")
        elif region.grid_gco2_per_kwh is None:
            notes.append(f"{o.provider} {o.region}: the catalog has no grid carbon intensity for it, so carbon "
                         "is unknown")
    return notes


def compare(work: ResolvedWorkload, catalog: Catalog, settings: SolverSettings | None = None) -> list[CompareRow]:
    from planner.explain.diff import describe

    settings = settings or SolverSettings()
    result = solve(work, catalog, settings)
    model = solve_questions(work, catalog, result, [], settings)
    rows_of = model.runner.rows_of
    training = work.kind == "training"
    groups = [("device", d, rows_of(lambda r, d=d: r.candidate.device == d))
              for d in sorted(set(work.spec.search.devices) | {r.candidate.device for r in result.table.rows})]
    groups += [("provider", p, rows_of(lambda r, p=p: provider_of(r.candidate) == p))
               for p in sorted({provider_of(r.candidate) for r in result.table.rows})]
    model.ask_many([Question(allowed=rows) for _, _, rows in groups if rows])
    out = []
    for kind, name, rows in groups:
        outcome = model.ask(Question(allowed=rows)) if rows else None
        if outcome is None or not outcome.feasible:
            deciding = ruling_limits(model, rows)[0] if rows else []
            if not deciding:
                deciding = sorted(result.table.excluded_by_device.get(name, {})) or ["no configuration"]
            out.append(CompareRow(work.spec.name, kind, name, "impossible", None, None, None, None, None, None, None,
                                  deciding))
            continue
        plan = outcome.plan
        totals = plan.totals
        checks = check_plan(work, catalog, plan)
        deciding = [c.id for c in checks if c.spec_path and c.slack is not None and c.limit
                    and abs(c.slack) <= TIGHT * abs(c.limit)]
        out.append(CompareRow(
            workload=work.spec.name, kind=kind, name=name, status="ok", devices=totals.get("devices"),
            plan=describe(plan), usd_per_hour=totals.get("usd_per_hour"), usd_per_job=totals.get("usd_per_job"),
            usd_per_million_tokens=plan.main.evaluation.metrics.get("usd_per_million_tokens"),
            energy_kwh=totals.get("energy_kwh_per_job" if training else "energy_kwh_per_hour"),
            carbon_kg=totals.get("carbon_kg_per_job" if training else "carbon_kg_per_hour"),
            deciding=deciding or ["price"], notes=footprint_gaps(plan, catalog)))
    key = "usd_per_job" if training else "usd_per_hour"
    return sorted(out, key=lambda r: (r.kind, r.status != "ok", getattr(r, key) or 0.0, r.name))
