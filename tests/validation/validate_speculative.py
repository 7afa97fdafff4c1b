"""Score speculative decoding against published speed-ups (tests/validation/speculative.yaml).

Each row is a run with a chain of k drafts or a tree (top-k candidates a pass, N nodes verified) and its
stated accept length, beside the same engine, model and GPU without speculation; the model's speed-up is
compared with the measured one: at batch 1, TPOT without / with from the closed form at a vanishing load;
at a fixed batch of b prompts, the decode step at b without / with over the accept length. Two engine parameters are fitted per engine with
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
# The fit's grid: coarse over 0-3 ms per draft pass and 0-6 ms per verification step, then 50 us / 0.2 ms steps
# around the best coarse point.
PASS_COARSE_US, PASS_FINE_US, PASS_MAX_US = 250.0, 50.0, 3000.0
STEP_COARSE_MS, STEP_FINE_MS, STEP_MAX_MS = 1.0, 0.2, 6.0


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
    batch: int = 1
    topk: int = 1
    tree_tokens: int = 0


@dataclass(frozen=True)
class Case:
    row: Row
    predicted: float

    @property
    def error(self) -> float:
        return self.predicted / self.row.measured_speedup - 1.0


def source_of(raw: dict) -> str:
    for marker, name in (("vllm-project", "vLLM issue tracker"), ("AngelSlim", "AngelSlim issue tracker"),
                         ("SpecForge", "SpecForge issue tracker")):
        if marker in raw["url"]:
            return name
    return "NVIDIA TensorRT-LLM blog"


def load_rows() -> list[Row]:
    rows = []
    for raw in yaml.safe_load((HERE / "speculative.yaml").read_text())["measurements"]:
        m = raw["measured"]
        if "tpot_mean_ms" in m:
            speedup = m["baseline_tpot_mean_ms"] / m["tpot_mean_ms"]
        elif "output_tokens_per_s" in m:
            speedup = m["output_tokens_per_s"] / m["baseline_output_tokens_per_s"]
        else:
            speedup = m["output_tokens_per_s_per_user"] / m["baseline_output_tokens_per_s_per_user"]
        spec = raw["speculative"]
        tree = spec.get("tree") or {}
        rows.append(Row(raw["id"], source_of(raw), raw["engine"], spec["method"], raw["model_name"],
                        SYSTEM_FOR_DEVICE[raw["device"]], raw["tp"], raw.get("ep", 1), raw["precision"],
                        raw["input_tokens"], raw["output_tokens"], spec["tokens"], spec["acceptance_length"], speedup,
                        raw.get("batch", 1), tree.get("topk", 1), tree.get("verified_tokens", 0)))
    return rows


def _tpot(catalog: Catalog, row: Row, engine: EngineParams, features: ServingFeatures) -> float:
    """Seconds a token per sequence: at batch 1 the closed form's TPOT at a vanishing load; at a fixed batch the
    decode step of that many sequences over the tokens a step yields."""
    system = catalog.systems[row.system]
    device = catalog.accelerators[system.accelerator]
    prof = replica_profile(llm_footprint(catalog.models[row.model].shape), input_tokens=row.input_tokens,
                           output_tokens=row.output_tokens, par=Parallel(tp=row.tp, ep=row.ep, micro_batch=row.batch),
                           precision=row.precision, device=device, family=catalog.family_of(device), system=system,
                           engine=engine, features=features)
    if row.batch == 1:
        return latencies_at(prof, 1e-6).tpot_s
    return prof.decode_step_s(row.batch) / prof.tokens_per_step


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
                       mtp_layers=shape.mtp_layers, branches=row.topk, tree_tokens=row.tree_tokens)
    if row.id not in _PLAIN:  # no drafting parameter changes the TPOT without speculation: once per row
        _PLAIN[row.id] = _tpot(catalog, row, engine, ServingFeatures())
    return _PLAIN[row.id] / _tpot(catalog, row, engine, ServingFeatures(speculation=spec))


_PLAIN: dict[str, float] = {}


def _grid(center: float, step: float, top: float, span: int) -> list[float]:
    return [v for v in (center + step * i for i in range(-span, span + 1)) if -1e-9 <= v <= top + 1e-9]


def fit_engine(catalog: Catalog, rows: list[Row], engine: str) -> tuple[float, float]:
    """The grid point with the least squared log error over the engine's rows: coarse, then fine around it."""
    mine = [r for r in rows if r.engine == engine]

    def loss(point: tuple[float, float]) -> float:
        return sum(math.log(predict(catalog, r, {engine: point}) / r.measured_speedup) ** 2 for r in mine)

    coarse = [(p, q) for q in _grid(0.0, STEP_COARSE_MS, STEP_MAX_MS, int(STEP_MAX_MS / STEP_COARSE_MS))
              for p in _grid(0.0, PASS_COARSE_US, PASS_MAX_US, int(PASS_MAX_US / PASS_COARSE_US))]
    p0, q0 = min(coarse, key=loss)
    fine = [(round(p, 6), round(q, 6)) for q in _grid(q0, STEP_FINE_MS, STEP_MAX_MS, 5)
            for p in _grid(p0, PASS_FINE_US, PASS_MAX_US, 5)]
    return min(fine, key=loss)


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
                      ("drafts", lambda c: "tree" if c.row.tree_tokens else "chain"),
                      ("batch", lambda c: "1" if c.row.batch == 1 else "4-64"), ("source", lambda c: c.row.source)):
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
