"""Score speculative decoding against published speed-ups (tests/validation/speculative.yaml).

Each row is a batch-1 run with a chain of k drafts and its stated accept length, beside the same engine,
model and GPU without speculation; the model's speed-up (TPOT without / with, both from the closed form
at a vanishing load) is compared with the measured one. Two engine parameters are fitted per engine with
rows (`draft_pass_overhead_us`, `speculative_step_overhead_ms`, catalogs/engines.yaml); leaving a source
out leaves its engine without rows, and it is then predicted with the other engines' values, as an engine
nobody measured is.

    python tests/validation/validate_speculative.py [--fit] [--loso]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from validate_serving import (  # the serving validation's device map and statistics
    SYSTEM_FOR_DEVICE,
    error_stats,
)

from planner.catalog.loader import Catalog, load_catalogs
from planner.perf.serving import (
    EngineParams,
    ServingFeatures,
    latencies_at,
    replica_profile,
)
from planner.perf.shapes import llm_footprint
from planner.perf.speculative import acceptance_for_length, speculation
from planner.perf.types import Parallel

HERE = Path(__file__).resolve().parent
PASS_GRID_US = [50.0 * i for i in range(41)]  # 0-2 ms per draft pass
STEP_GRID_MS = [0.2 * i for i in range(16)]  # 0-3 ms per verification step


@dataclass(frozen=True)
class Row:
    id: str
    source: str
    engine: str
    method: str
    model: str
    system: str
    tp: int
    ep: int
    precision: str
    input_tokens: int
    output_tokens: int
    draft_tokens: int
    accept_length: float
    measured_speedup: float


@dataclass(frozen=True)
class Case:
    row: Row
    predicted: float

    @property
    def error(self) -> float:
        return self.predicted / self.row.measured_speedup - 1.0


def source_of(raw: dict) -> str:
    return "vLLM issue tracker" if "vllm-project" in raw["url"] else "NVIDIA TensorRT-LLM blog"


def load_rows() -> list[Row]:
    rows = []
    for raw in yaml.safe_load((HERE / "speculative.yaml").read_text())["measurements"]:
        m = raw["measured"]
        if "tpot_mean_ms" in m:
            speedup = m["baseline_tpot_mean_ms"] / m["tpot_mean_ms"]
        else:
            speedup = m["output_tokens_per_s_per_user"] / m["baseline_output_tokens_per_s_per_user"]
        spec = raw["speculative"]
        rows.append(Row(raw["id"], source_of(raw), raw["engine"], spec["method"], raw["model_name"],
                        SYSTEM_FOR_DEVICE[raw["device"]], raw["tp"], raw.get("ep", 1), raw["precision"],
                        raw["input_tokens"], raw["output_tokens"], spec["tokens"], spec["acceptance_length"], speedup))
    return rows


def _tpot(catalog: Catalog, row: Row, engine: EngineParams, features: ServingFeatures) -> float:
    system = catalog.systems[row.system]
    device = catalog.accelerators[system.accelerator]
    prof = replica_profile(llm_footprint(catalog.models[row.model].shape), input_tokens=row.input_tokens,
                           output_tokens=row.output_tokens, par=Parallel(tp=row.tp, ep=row.ep, micro_batch=1),
                           precision=row.precision, device=device, family=catalog.family_of(device), system=system,
                           engine=engine, features=features)
    return latencies_at(prof, 1e-6).tpot_s


def predict(catalog: Catalog, row: Row, params: dict[str, tuple[float, float]] | None = None) -> float:
    """The modelled speed-up; `params`: engine -> (draft pass overhead us, step overhead ms) to try."""
    system = catalog.systems[row.system]
    device = catalog.accelerators[system.accelerator]
    engine = EngineParams.of(catalog.engines[row.engine], device, row.tp * 1)
    if params is not None and row.engine in params:
        per_pass, per_step = params[row.engine]
        engine = replace(engine, draft_pass_overhead_s=per_pass / 1e6, speculative_step_overhead_s=per_step / 1e3)
    shape = catalog.models[row.model].shape
    spec = speculation(shape, row.method, row.draft_tokens, acceptance_for_length(row.draft_tokens, row.accept_length),
                       mtp_layers=shape.mtp_layers)
    plain = _tpot(catalog, row, engine, ServingFeatures())
    return plain / _tpot(catalog, row, engine, ServingFeatures(speculation=spec))


def fit_engine(catalog: Catalog, rows: list[Row], engine: str) -> tuple[float, float]:
    """The grid point with the least squared log error over the engine's rows."""
    mine = [r for r in rows if r.engine == engine]
    best, best_loss = (0.0, 0.0), math.inf
    for per_step in STEP_GRID_MS:
        for per_pass in PASS_GRID_US:
            trial = {engine: (per_pass, per_step)}
            loss = sum(math.log(predict(catalog, r, trial) / r.measured_speedup) ** 2 for r in mine)
            if loss < best_loss:
                best, best_loss = (per_pass, per_step), loss
    return best


def fit(catalog: Catalog, rows: list[Row]) -> dict[str, tuple[float, float]]:
    return {engine: fit_engine(catalog, rows, engine) for engine in sorted({r.engine for r in rows})}


def unmeasured_value(fitted: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """What an engine without rows takes: the mean of the measured engines' values."""
    values = list(fitted.values())
    return (statistics.fmean(v[0] for v in values), statistics.fmean(v[1] for v in values))


def in_sample(catalog: Catalog, rows: list[Row]) -> list[Case]:
    return [Case(r, predict(catalog, r)) for r in rows]


def leave_one_source_out(catalog: Catalog, rows: list[Row]) -> list[Case]:
    cases = []
    for source in sorted({r.source for r in rows}):
        kept = [r for r in rows if r.source != source]
        fitted = fit(catalog, kept)
        fallback = unmeasured_value(fitted)
        for r in rows:
            if r.source == source:
                cases.append(Case(r, predict(catalog, r, {**fitted, r.engine: fitted.get(r.engine, fallback)})))
    return cases


def table(title: str, cases: list[Case]) -> None:
    print(f"== {title}")
    for name, key in (("all", lambda c: "all"), ("engine", lambda c: c.row.engine), ("method", lambda c: c.row.method),
                      ("source", lambda c: c.row.source)):
        for value in sorted({key(c) for c in cases}):
            part = [c for c in cases if key(c) == value]
            med, p90, _, bias = error_stats(part)
            label = value if name == "all" else f"{name}={value}"
            print(f"  {label:38s} n={len(part):2d}  median {med:6.1%}  p90 {p90:6.1%}  bias {bias:+6.1%}")


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--fit", action="store_true", help="refit the engine parameters and print them")
    args.add_argument("--loso", action="store_true", help="also leave each source out")
    opts = args.parse_args(argv)
    catalog = load_catalogs()
    rows = load_rows()
    if opts.fit:
        for engine, (per_pass, per_step) in fit(catalog, rows).items():
            entry = catalog.engines[engine]
            print(f"{engine}: draft_pass_overhead_us {per_pass:g} (catalog {entry.draft_pass_overhead_us.value:g}), "
                  f"speculative_step_overhead_ms {per_step:g} (catalog {entry.speculative_step_overhead_ms.value:g})")
    cases = in_sample(catalog, rows)
    for c in cases:
        print(f"  {c.row.id:48s} AL {c.row.accept_length:4.2f}  measured x{c.row.measured_speedup:5.3f}  "
              f"predicted x{c.predicted:5.3f}  {c.error:+6.1%}")
    table("in sample (speed-up over no speculation)", cases)
    if opts.loso:
        table("leave one source out", leave_one_source_out(catalog, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
