"""Pareto fronts by the epsilon-constraint method over CP-SAT.

Cost against latency (serving: TTFT p99 or TPOT), against time to train (training), or against energy or
carbon (both). Starting from the spec's own optimum, the second metric's limit is set just below the last
plan's value and the cost re-minimised; every point is optimal for its epsilon, and points another point
beats on both axes are dropped, so the front is mutually non-dominated. Latency and time bound the spec's
own limit fields; energy and carbon add a cap to the model (`compile_model(caps=...)`).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from planner.catalog.loader import Catalog
from planner.constraints import BY_ID
from planner.errors import Problem, SpecError
from planner.evaluate import ResolvedWorkload
from planner.explain.question import Limit
from planner.explain.scenario import ScenarioRunner
from planner.plan import Plan
from planner.candidates import enumerate_candidates
from planner.compile import compile_model
from planner.solve import SolverSettings, plan_value, solve, solve_compiled

# second axis -> (constraint unit, the plan metric it bounds, kinds it applies to)
AXES = {
    "latency": ("latency.ttft_p99", "ttft_p99_ms", ("serving",)),
    "ttft": ("latency.ttft_p99", "ttft_p99_ms", ("serving",)),
    "tpot": ("latency.tpot", "tpot_ms", ("serving",)),
    "time": ("time.deadline", "time_to_train_days", ("training",)),
    "energy": (None, "energy_kwh", ("serving", "training", "vision")),
    "carbon": (None, "carbon_kg", ("serving", "training", "vision")),
}


def axis_metric(axis: str, kind: str) -> str:
    metric = AXES[axis][1]
    if axis in ("energy", "carbon"):
        return f"{metric}_per_job" if kind == "training" else f"{metric}_per_hour"
    return metric
STEP = 1e-4  # each new epsilon sits this fraction below the last plan's value
UNCAPPED = 1e9  # kWh or kg per hour or job: a cap no plan reaches, to keep only rows with known footprints
MAX_POINTS = 25


@dataclass
class ParetoPoint:
    objective: float
    metric: float
    epsilon: float | None
    plan: Plan


def parse_axes(text: str, kind: str) -> str:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or parts[0] != "cost" or parts[1] not in AXES or kind not in AXES[parts[1]][2]:
        usable = ", ".join(f"cost,{a}" for a, (_, _, kinds) in AXES.items() if kind in kinds)
        raise SpecError(Problem(f"--pareto {text!r} is not available for a {kind} workload",
                                fix=f"use one of: {usable}"))
    return parts[1]


def pareto_front(work: ResolvedWorkload, catalog: Catalog, axis: str,
                 settings: SolverSettings | None = None, skipped: list[str] | None = None) -> list[ParetoPoint]:
    """The front, cheapest first. When the command's time limit runs out it stops where it is and says so
    in `skipped`, rather than present a front cut short as complete."""
    settings = settings or SolverSettings()
    unit_id = AXES[axis][0]
    metric = axis_metric(axis, work.kind)
    spec = work.spec.model_copy(update={"objective": "cost"})
    cost_work = ResolvedWorkload(spec=spec, model_id=work.model_id, shape=work.shape, footprint=work.footprint)
    if unit_id is None:
        # The table is built for the footprint objective (its pruning then keeps cleaner, dearer regions),
        # and only rows whose footprint is known can sit on this front (an uncapped cap forces the rest out).
        table = enumerate_candidates(ResolvedWorkload(spec=spec.model_copy(update={"objective": axis}),
                                                      model_id=work.model_id, shape=work.shape,
                                                      footprint=work.footprint), catalog)
        result = solve_compiled(cost_work, catalog, compile_model(table, spec, caps={axis: UNCAPPED}), settings)
        result.table = table
    else:
        result = solve(cost_work, catalog, settings)
    work = cost_work
    if result.plan is None and settings.expired:
        if skipped is not None:
            skipped.append("the whole front (the time limit was reached before the cheapest plan was found)")
        return []
    if result.plan is None or result.plan.metric(metric) is None:
        return []
    if unit_id is not None:
        runner = ScenarioRunner(work, catalog, result.table, result.compiled, settings)
        unit = BY_ID[unit_id]
        item = Limit(unit_id, unit_id, unit.spec_path, 0.0, unit.unit)
        first_epsilon = unit.limit_of(spec, None)

        def cheapest_below(epsilon: float):
            outcome = runner.at(item, epsilon)
            return outcome.plan if outcome.feasible else None
    else:
        first_epsilon = None

        def cheapest_below(epsilon: float):
            compiled = compile_model(result.table, spec, caps={axis: epsilon})
            return solve_compiled(work, catalog, compiled, settings).plan

    points = [ParetoPoint(result.objective_value, result.plan.metric(metric), first_epsilon, result.plan)]
    while len(points) < MAX_POINTS:
        epsilon = points[-1].metric * (1 - STEP)
        plan = None if settings.expired else cheapest_below(epsilon)
        if plan is None and settings.expired:
            if skipped is not None:
                skipped.append(f"the front below {axis} {points[-1].metric:,.4g} (the time limit was reached)")
            break
        if plan is None:
            break
        outcome_plan = plan
        value = outcome_plan.metric(metric)
        if value is None or value >= points[-1].metric:
            break  # the model cannot go lower
        points.append(ParetoPoint(plan_value(outcome_plan, work), value, epsilon, outcome_plan))
    return [p for p in points if not any(dominates(q, p) for q in points)]


def dominates(a: ParetoPoint, b: ParetoPoint) -> bool:
    return (a.objective <= b.objective and a.metric <= b.metric) and (a.objective < b.objective or a.metric < b.metric)


PLOT_FORMATS = (".png", ".svg", ".pdf")


def check_plot_path(path: Path) -> None:
    """Refuse a plot that could not be written before any front is computed, not after."""
    if importlib.util.find_spec("matplotlib") is None:
        raise SpecError(Problem("--plot needs matplotlib", fix="pip install 'planner[plot]'"))
    if path.is_dir():
        raise SpecError(Problem(f"--plot {path} is a folder", fix=f"give a file name, e.g. {path / 'front.png'}"))
    if path.suffix.lower() not in PLOT_FORMATS:
        raise SpecError(Problem(f"--plot {path}: cannot draw a `{path.suffix or '(no extension)'}` file",
                                fix=f"end the name in {', '.join(PLOT_FORMATS)}"))
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SpecError(Problem(f"--plot {path}: folder {folder} does not exist", fix="create it or pick another"))
    if not os.access(folder, os.W_OK):
        raise SpecError(Problem(f"--plot {path}: folder {folder} is not writable", fix="pick another folder"))


def plot(points: list[ParetoPoint], axis: str, chosen: ParetoPoint, path: str, title: str, unit: str,
         slo: float | None = None, labels: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [p.metric for p in points]
    ys = [p.objective for p in points]
    ax.step(xs, ys, where="post", color="0.6", linewidth=1)
    ax.scatter(xs, ys, color="tab:blue", zorder=3, label="optimal for its limit")
    ax.scatter([chosen.metric], [chosen.objective], color="tab:red", s=90, zorder=4, marker="*",
               label="the spec's own plan")
    if slo is not None:
        ax.axvline(slo, color="tab:red", linestyle="--", linewidth=1, label=f"the spec's limit ({slo:g})")
    for i, p in enumerate(points):
        main = p.plan.main.evaluation.candidate
        label = labels[i] if labels else f"{p.plan.totals.get('devices')}x {main.device}"
        # Labels lean into the frame: left of points on the right half, below points near the top.
        right = p.metric > (min(xs) + max(xs)) / 2
        ax.annotate(label, (p.metric, p.objective), fontsize=7, xytext=(-4 if right else 4, -10 if p.objective
                    > (min(ys) + max(ys)) / 2 else 4), textcoords="offset points", ha="right" if right else "left",
                    annotation_clip=True)
    ax.margins(x=0.08, y=0.12)
    ax.set_xlabel({"latency": "TTFT p99 (ms)", "ttft": "TTFT p99 (ms)", "tpot": "TPOT (ms)",
                   "time": "time to train (days)", "energy": "energy (kWh" + ("/h)" if "hour" in unit else ")"),
                   "carbon": "carbon (kg CO2e" + ("/h)" if "hour" in unit else ")")}[axis])
    ax.set_ylabel(unit.replace("_", " "))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def off_the_front(work: ResolvedWorkload, catalog: Catalog, axis: str, points: list[ParetoPoint],
                  settings: SolverSettings | None = None) -> list[str]:
    """Plans with no footprint figure (a region without PUE or grid carbon) cannot sit on an energy or
    carbon front; when one of them is the cheapest plan of all, say so rather than drop it silently."""
    if AXES[axis][0] is not None or not points:
        return []
    spec = work.spec.model_copy(update={"objective": "cost"})
    cheapest = solve(ResolvedWorkload(spec=spec, model_id=work.model_id, shape=work.shape, footprint=work.footprint),
                     catalog, settings or SolverSettings())
    if cheapest.plan is None or cheapest.objective_value >= min(p.objective for p in points) - 1e-9:
        return []
    c = cheapest.plan.main.evaluation.candidate
    where = f"{c.offering.provider} {c.offering.region}" if c.offering else "owned hardware"
    missing = "PUE" if axis == "energy" else "grid carbon intensity"
    return [f"the cheapest plan, {c.devices} x {c.device} on {where} at {cheapest.objective_value:,.4g}, is not on "
            f"this front: the catalog has no {missing} for {where}, so its {axis} is unknown"]
