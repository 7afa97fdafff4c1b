"""The Python API: what the `planner` commands do, as functions that take a spec (a path or a dict) and
return typed reports whose `to_dict()` is exactly the command's `--format json` output.

    >>> from planner import api
    >>> report = api.solve("examples/llama3-70b-chat.yaml", explain=False, reproducible=True)
    >>> report.status, report.plan["device"]
    ('optimal', 'h200-sxm')

The CLI is a thin layer over these functions (it renders their reports), so the two cannot disagree. See
docs/API.md.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.catalog.loader import Catalog

Spec = str | Path | dict


def load_catalog(prices: tuple[Path, ...] = (), price_scenario: Path | None = None,
                 calibration: Path | None = None, catalog_dir: Path | None = None) -> Catalog:
    """The shipped catalogs, with fresher SkyPilot-style price CSVs, a price scenario and a calibration
    overlay on top (each optional), as `--prices`, `--price-scenario` and `--calibration` apply them."""
    from planner.catalog.loader import load_catalogs

    catalog = load_catalogs(catalog_dir)
    if prices or price_scenario:
        from planner.catalog.prices_io import apply_scenario, read_skypilot_csv, with_prices

        for path in prices:
            offerings, _ = read_skypilot_csv(Path(path), catalog)
            catalog = with_prices(catalog, offerings, Path(path).name)
        if price_scenario:
            catalog, _ = apply_scenario(catalog, Path(price_scenario))
    if calibration:
        from planner.calibrate.overlay import apply_calibration

        catalog = apply_calibration(catalog, Path(calibration))
    return catalog


def load_workload_spec(spec: Spec, name: str | None = None):
    """(spec, its name in messages) from a YAML path, a dict (whose `include:` profiles resolve from the
    working directory) or an already loaded WorkloadSpec."""
    from planner.spec import WorkloadSpec, load_spec, spec_from_document
    from planner.yamlio import YamlDocument

    if isinstance(spec, WorkloadSpec):
        return spec, name or spec.name
    if isinstance(spec, dict):
        here = Path.cwd() / "<dict>"
        return spec_from_document(YamlDocument(file="<dict>", data=copy.deepcopy(spec), text=""), here), "<dict>"
    return load_spec(spec), str(spec)


def _json_round_trip(data: Any) -> Any:
    from planner.report import to_json

    return json.loads(to_json(data))


@dataclass(frozen=True)
class Report:
    """A command's result: `to_dict()` is its `--format json` output."""

    data: dict | list

    def to_dict(self) -> Any:
        return copy.deepcopy(self.data)


@dataclass(frozen=True)
class SolveReport(Report):
    # The objects the CLI renders its table and Markdown from (not part of to_dict()).
    result: Any = field(default=None, repr=False, compare=False)
    checks: list = field(default_factory=list, repr=False, compare=False)
    explanation: Any = field(default=None, repr=False, compare=False)
    work: Any = field(default=None, repr=False, compare=False)
    simulations: list = field(default_factory=list, repr=False, compare=False)

    @property
    def status(self) -> str:
        return self.data["status"]

    @property
    def objective(self) -> dict:
        return self.data["objective"]

    @property
    def plan(self) -> dict | None:
        return self.data["plan"]

    @property
    def constraints(self) -> list[dict]:
        return self.data["constraints"]

    def to_html(self, spec_text: str | None = None) -> str:
        """The page `planner solve --format html` writes."""
        from planner.html.solve import solve_page

        return solve_page(self.data, self.work.spec.name if self.work else "plan", spec_text)


def solve(spec: Spec, *, catalog: Catalog | None = None, objective: str | None = None, top: int = 1,
          time_limit_s: float = 30.0, workers: int | None = None, reproducible: bool = False,
          explain: bool = True, allow_mix: bool = False, simulate: bool = False, started: float | None = None,
          name: str | None = None) -> SolveReport:
    """The proven-optimal plan (`planner solve`), with its explanation unless `explain=False`."""
    import time

    from planner.check import check_plan
    from planner.evaluate import resolve_workload
    from planner.report import result_dict, workload_dict
    from planner.solve import DEFAULT_WORKERS, SolverSettings, with_every_price
    from planner.solve import solve as run_solve

    started = started or time.monotonic()
    loaded, name = load_workload_spec(spec, name)
    updates: dict = {}
    if objective:
        updates["objective"] = objective
    if allow_mix:
        updates["search"] = loaded.search.model_copy(update={"allow_mix": True})
    if updates:
        loaded = loaded.model_copy(update=updates)
    catalog = catalog or load_catalog()
    work = resolve_workload(loaded, catalog, name)
    settings = SolverSettings.for_command(time_limit_s, started=started,
                                          workers=1 if reproducible else (workers or DEFAULT_WORKERS))
    result = run_solve(work, catalog, settings, top=top)
    with_every_price(work, catalog, result, settings)
    checks = check_plan(work, catalog, result.plan) if result.plan else []
    explanation = None
    if explain and result.status in ("optimal", "feasible", "infeasible"):
        from planner.explain import explain as run_explain

        explanation = run_explain(work, catalog, result, checks, settings)
    device = catalog.accelerators[result.plan.main.evaluation.candidate.device] if result.plan else None
    data = result_dict(result, checks, explanation, workload_dict(work, catalog, device))
    sims = []
    if simulate and result.plan is not None and work.kind == "serving":
        from planner.simulate.run import simulate_parts

        demand = loaded.workload.traffic.requests_per_s
        sims = simulate_parts(work, catalog, [(p.evaluation, demand * p.load_share) for p in result.plan.parts],
                              requests=2000, seed=0)
        data["simulation"] = [s.as_dict() for s in sims]
    return SolveReport(_json_round_trip(data), result=result, checks=checks, explanation=explanation, work=work,
                       simulations=sims)


@dataclass(frozen=True)
class EstimateReport(Report):
    evaluation: Any = field(default=None, repr=False, compare=False)
    checks: list = field(default_factory=list, repr=False, compare=False)

    @property
    def metrics(self) -> dict:
        return self.data["metrics"]

    @property
    def fits(self) -> bool:
        return self.data["fits"]


def estimate(spec: Spec, *, device: str, catalog: Catalog | None = None, **layout) -> EstimateReport:
    """One fixed configuration (`planner estimate`): `layout` takes estimate's flags by name (tp, pp, dp, ep,
    cp, precision, micro_batch, zero_stage, shard_group, recompute, virtual_stages, system_id, provider,
    region, pricing)."""
    from planner.estimate import estimate_configuration
    from planner.report import evaluation_dict

    loaded, name = load_workload_spec(spec)
    ev, checks = estimate_configuration(loaded, catalog or load_catalog(), spec_file=name, device=device, **layout)
    return EstimateReport(_json_round_trip(evaluation_dict(ev, checks)), evaluation=ev, checks=checks)


@dataclass(frozen=True)
class CompareReport(Report):
    rows: list = field(default_factory=list, repr=False, compare=False)


def compare(specs: list[Spec], *, catalog: Catalog | None = None, time_limit_s: float = 30.0) -> CompareReport:
    """Each device type and provider at its own optimum, side by side (`planner compare SPEC...`)."""
    import time

    from planner.compare import compare as run_compare
    from planner.evaluate import resolve_workload
    from planner.report import compare_dicts
    from planner.solve import SolverSettings

    catalog = catalog or load_catalog()
    settings = SolverSettings.for_command(time_limit_s, started=time.monotonic())
    rows = []
    for spec in specs:
        loaded, name = load_workload_spec(spec)
        rows += run_compare(resolve_workload(loaded, catalog, name), catalog, settings)
    return CompareReport(compare_dicts(rows), rows=rows)


@dataclass(frozen=True)
class FleetReport(Report):
    result: Any = field(default=None, repr=False, compare=False)  # planner.fleet.RentOrBuy

    @property
    def status(self) -> str:
        return self.result.buy.status


def fleet(fleet_file: str | Path, *, catalog: Catalog | None = None, explain: bool = True,
          time_limit_s: float = 30.0) -> FleetReport:
    """A fleet planned together, the rent-only alternative and the explanation (`planner compare FLEET`)."""
    import time

    from planner.fleet import rent_or_buy
    from planner.report import fleet_dict
    from planner.solve import SolverSettings

    catalog = catalog or load_catalog()
    settings = SolverSettings.for_command(time_limit_s, started=time.monotonic())
    result = rent_or_buy(Path(fleet_file), catalog, settings, explain=explain)
    return FleetReport(_json_round_trip(fleet_dict(result, catalog)), result=result)


@dataclass(frozen=True)
class TierReport(Report):
    result: Any = field(default=None, repr=False, compare=False)

    @property
    def status(self) -> str:
        return self.result.plan.status


def tier(spec: str | Path, *, catalog: Catalog | None = None, explain: bool = True) -> TierReport:
    """Edge, cloud or split for each workload of a tier spec (`planner tier`)."""
    from planner.tier import plan_tier_file
    from planner.tier.report import as_dict

    result = plan_tier_file(spec, catalog or load_catalog(), explain=explain)
    return TierReport(json.loads(json.dumps(as_dict(result), default=str)), result=result)


@dataclass(frozen=True)
class SimulationReport(Report):
    simulations: list = field(default_factory=list, repr=False, compare=False)


def simulate(spec: Spec, *, catalog: Catalog | None = None, requests: int = 2000, seed: int = 0,
             lengths: str = "fixed", trace: Path | None = None, device: str | None = None,
             **layout) -> SimulationReport:
    """Replay a serving configuration request by request beside the closed form (`planner simulate`):
    `device` and `layout` fix one configuration; without them, the plan `solve` picks."""
    from planner.errors import Problem, SolveError
    from planner.evaluate import resolve_workload
    from planner.simulate.run import simulate_parts

    loaded, name = load_workload_spec(spec)
    catalog = catalog or load_catalog()
    work = resolve_workload(loaded, catalog, name)
    if work.kind != "serving":
        raise SolveError(Problem(f"a {work.kind} spec: simulate replays LLM serving", file=name))
    demand = loaded.workload.traffic.requests_per_s
    if device is not None:
        from planner.estimate import estimate_configuration

        ev, _ = estimate_configuration(loaded, catalog, spec_file=name, device=device, **layout)
        parts = [(ev, demand)]
    else:
        from planner.solve import SolverSettings
        from planner.solve import solve as run_solve

        result = run_solve(work, catalog, SolverSettings(time_limit_s=30.0))
        if result.plan is None:
            raise SolveError(Problem(f"no plan to simulate (solve status {result.status})", file=name,
                                     fix="fix the spec or give a device"))
        parts = [(p.evaluation, demand * p.load_share) for p in result.plan.parts]
    sims = simulate_parts(work, catalog, parts, requests=requests, seed=seed, lengths=lengths, trace=trace)
    return SimulationReport(_json_round_trip({"spec": loaded.name, "parts": [s.as_dict() for s in sims]}),
                            simulations=sims)


@dataclass(frozen=True)
class SweepReport(Report):
    @property
    def scenarios(self) -> list[dict]:
        return self.data["scenarios"]

    @property
    def flips(self) -> list[dict]:
        return self.data["flips"]


def sweep(sweep_file: str | Path, results: str | Path, *, backend: str = "local", workers: int | None = None,
          address: str | None = None) -> SweepReport:
    """Run (or resume) a sweep into `results` and read it back as `planner sweep --summarize --format json`."""
    from planner.sweep.run import run_sweep
    from planner.sweep.spec import load_sweep

    run_sweep(load_sweep(Path(sweep_file)), Path(results), backend=backend, workers=workers, address=address)
    return summarize_sweep(results)


def summarize_sweep(results: str | Path) -> SweepReport:
    from planner.sweep.summary import flips, read_results

    rows = read_results(Path(results))
    return SweepReport(json.loads(json.dumps({"scenarios": rows, "flips": flips(rows)}, default=str)))


__all__ = ["load_catalog", "load_workload_spec", "solve", "estimate", "compare", "tier", "simulate", "sweep",
           "summarize_sweep", "Report", "SolveReport", "EstimateReport", "CompareReport", "TierReport",
           "SimulationReport", "SweepReport"]
