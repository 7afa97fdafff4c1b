"""Run a sweep's scenarios on a local process pool or as Ray tasks, streaming one Parquet row per scenario.

Each scenario is one `solve` (one CP-SAT worker and a fixed seed, so every backend gives the same answer
and tasks never oversubscribe cores) followed by the solver-free check, whose tight limits say what
decides the plan. Rows are written in parts as they finish (every PART_ROWS rows or FLUSH_S seconds); a
rerun skips every scenario whose key a part already holds. An interrupted sweep (Ctrl-C, a failed task)
writes what finished before it stops, so it loses only what was in flight; a killed one loses at most the
last FLUSH_S seconds of finished rows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from planner.errors import PlannerError, Problem, SweepError
from planner.sweep.spec import Scenario, Sweep, scenario_document

# A limit whose slack is under this share of its bound counts as tight (it decides the plan or nearly does).
TIGHT_SHARE = 0.01
PART_ROWS = 50  # rows per Parquet part: small enough to lose little, large enough to read fast
FLUSH_S = 5.0
COLUMNS = ("key", "index", "status", "objective", "objective_value", "objective_unit", "device", "devices",
           "provider", "region", "pricing", "instance", "replicas", "tp", "pp", "dp", "ep", "precision",
           "tight_limits", "closest_limit", "closest_slack_pct", "error", "solve_s")


def run_scenario(sweep_dir: str, base_path: str, values: dict[str, Any], key: str, index: int,
                 time_limit_s: float) -> dict:
    """One scenario's row (plain values only: it crosses process and Ray boundaries)."""
    from planner.catalog.loader import load_catalogs
    from planner.check import check_plan
    from planner.evaluate import resolve_workload
    from planner.solve import SolverSettings, solve
    from planner.spec import spec_from_document

    started = time.perf_counter()
    row: dict[str, Any] = {c: None for c in COLUMNS} | {"key": key, "index": index}
    row |= {f"axis:{k}": _cell(v) for k, v in values.items()}
    try:
        catalog = load_catalogs()
        if values.get("price_scenario"):
            from planner.catalog.prices_io import apply_scenario

            catalog, _ = apply_scenario(catalog, Path(sweep_dir) / values["price_scenario"])
        if values.get("calibration"):
            from planner.calibrate.overlay import apply_calibration

            catalog = apply_calibration(catalog, Path(sweep_dir) / values["calibration"])
        spec = spec_from_document(scenario_document(Path(base_path), values), Path(base_path))
        work = resolve_workload(spec, catalog, base_path)
        result = solve(work, catalog, SolverSettings.for_command(time_limit_s, workers=1, seed=0))
        row |= {"status": result.status, "objective": result.objective_name,
                "objective_value": result.objective_value, "objective_unit": result.objective_unit}
        if result.plan is not None:
            part = result.plan.main
            c = part.evaluation.candidate
            p = c.parallel
            o = c.offering
            row |= {"device": c.device, "devices": result.plan.totals.get("devices"),
                    "provider": o.provider if o else "onprem", "region": o.region if o else None,
                    "pricing": o.pricing if o else "owned", "instance": o.instance if o else c.system,
                    "replicas": part.replicas, "tp": p.tp, "pp": p.pp, "dp": p.dp, "ep": p.ep,
                    "precision": c.precision}
            # The user's limits with their slack as a share of the bound: the tight ones decide the plan,
            # the closest one is what a little more load or a tighter target would hit first.
            shares = sorted((abs(ch.slack) / abs(ch.limit), ch.id) for ch in check_plan(work, catalog, result.plan)
                            if ch.spec_path and ch.limit and ch.slack is not None)
            row["tight_limits"] = ",".join(sorted(i for share, i in shares if share <= TIGHT_SHARE))
            if shares:
                row["closest_limit"], row["closest_slack_pct"] = shares[0][1], round(100 * shares[0][0], 2)
    except PlannerError as exc:
        row |= {"status": "error", "error": exc.problems[0].render()}
    row["solve_s"] = round(time.perf_counter() - started, 3)
    return row


def _cell(value: Any) -> Any:
    # Parquet columns hold one type: numbers stay numbers, anything else is written as text.
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _task(sweep: Sweep, s: Scenario) -> tuple:
    return (str(sweep.file.parent), str(sweep.base_path), s.values, s.key, s.index, sweep.time_limit_s)


def local_rows(sweep: Sweep, todo: list[Scenario], workers: int) -> Iterator[dict]:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if workers <= 1:
        for s in todo:
            yield run_scenario(*_task(sweep, s))
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_scenario, *_task(sweep, s)) for s in todo]
        for future in as_completed(futures):
            yield future.result()


def ray_rows(sweep: Sweep, todo: list[Scenario], address: str | None) -> Iterator[dict]:
    try:
        import ray
    except ImportError:
        raise SweepError(Problem("the Ray backend needs Ray", fix="pip install 'planner[ray]'")) from None
    if not ray.is_initialized():
        import logging

        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, logging_level=logging.WARNING)
    task = ray.remote(num_cpus=1)(run_scenario)
    pending = [task.remote(*_task(sweep, s)) for s in todo]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


def _pyarrow():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise SweepError(Problem("sweep results are Parquet files, which need pyarrow",
                                 fix="pip install 'planner[sweep]'")) from None


def done_keys(results: Path) -> set[str]:
    _pyarrow()
    import pyarrow.parquet as pq

    keys: set[str] = set()
    for part in sorted(results.glob("part-*.parquet")):
        keys.update(pq.read_table(part, columns=["key"]).column("key").to_pylist())
    return keys


def _write_part(results: Path, rows: list[dict], axes: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(COLUMNS) + [f"axis:{a}" for a in axes]
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
    number = len(list(results.glob("part-*.parquet")))
    tmp = results / f".part-{number:05d}.tmp"
    pq.write_table(table, tmp)
    tmp.rename(results / f"part-{number:05d}.parquet")  # a part is whole or absent, never half-written


def run_sweep(sweep: Sweep, results: Path, backend: str = "local", workers: int | None = None,
              address: str | None = None, progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
    """(scenarios run now, scenarios already in `results`)."""
    if results.exists() and not results.is_dir():
        raise SweepError(Problem("exists and is not a folder", file=str(results), fix="give a folder for the results"))
    results.mkdir(parents=True, exist_ok=True)
    have = done_keys(results)
    todo = [s for s in sweep.scenarios if s.key not in have]
    skipped = len(sweep.scenarios) - len(todo)
    rows: Iterable[dict] = (ray_rows(sweep, todo, address) if backend == "ray"
                            else local_rows(sweep, todo, workers or os.cpu_count() or 1))
    axes = [a.path for a in sweep.axes]
    batch: list[dict] = []
    finished = 0
    flushed = time.monotonic()
    try:
        for row in rows:
            batch.append(row)
            finished += 1
            if progress:
                progress(finished, len(todo))
            if len(batch) >= PART_ROWS or time.monotonic() - flushed >= FLUSH_S:
                _write_part(results, batch, axes)
                batch, flushed = [], time.monotonic()
    finally:
        # Interrupted (Ctrl-C, a failed worker) or done: what finished is kept for the next run to skip.
        if batch:
            _write_part(results, batch, axes)
    return finished, skipped


__all__ = ["done_keys", "run_scenario", "run_sweep"]
