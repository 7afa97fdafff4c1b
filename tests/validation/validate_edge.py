"""Predicted versus published: edge inference at batch 1 (catalogs/edge_measurements.yaml).

    python tests/validation/validate_edge.py

Only the analytical model is compared (the planner itself prefers a matching measurement when one exists).
Vision rows compare one frame's latency (or 1 / FPS when only FPS is published); LLM rows compare decode
tokens per second. Rows the model cannot rebuild (offline throughput at an unknown batch, DLA-only runs,
models or devices not in the catalogs, CPU boxes with no peak) are listed with the reason.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass

from planner.catalog.loader import Catalog, load_catalogs
from planner.catalog.schema import LLMShape
from planner.perf.edge import EdgeTarget, edge_llm, edge_targets, model_vision
from planner.perf.shapes import llm_footprint


@dataclass
class EdgeCase:
    id: str
    device: str
    quantity: str
    published: float
    predicted: float

    @property
    def error(self) -> float:
        return (self.predicted - self.published) / self.published


def _target(catalog: Catalog, device: str, power_mode: str | None) -> EdgeTarget:
    targets = edge_targets(catalog.edge_devices, catalog.edge_families, device)
    return next((t for t in targets if t.mode.name == power_mode), targets[0])


def run(catalog: Catalog) -> tuple[list[EdgeCase], list[tuple[str, str]]]:
    cases: list[EdgeCase] = []
    skipped: list[tuple[str, str]] = []
    for m in catalog.edge_measurements:
        if m.device not in catalog.edge_devices:
            skipped.append((m.id, f"device {m.device} is not in edge.yaml"))
            continue
        if m.model not in catalog.models:
            skipped.append((m.id, f"model {m.model} is not in models.yaml"))
            continue
        if m.batch != 1:
            skipped.append((m.id, "throughput at an unknown or DLA-only batch"))
            continue
        target = _target(catalog, m.device, m.power_mode)
        shape = catalog.models[m.model].shape
        if isinstance(shape, LLMShape):
            llm = edge_llm(target, llm_footprint(shape), m.model, m.precision, 128, 128, {})
            if isinstance(llm, str) or not m.measured.get("tokens_per_s"):
                skipped.append((m.id, llm if isinstance(llm, str) else "no tokens/s published"))
                continue
            cases.append(EdgeCase(m.id, m.device, "tokens/s", m.measured["tokens_per_s"], 1.0 / llm.profile.tpot_s))
            continue
        # MLPerf SingleStream runs a tuned C++ harness; every other source times a framework pipeline.
        runtime = "optimized" if m.scenario == "singlestream" else "framework"
        vision = model_vision(target, shape, m.precision, m.input_resolution, runtime)
        if vision is None:
            skipped.append((m.id, f"no {m.precision} peak for {m.device} (measured-only device)"))
            continue
        published = m.measured.get("latency_ms") or 1000.0 / m.measured["fps"]
        cases.append(EdgeCase(m.id, m.device, "latency ms", published, vision.latency_s * 1000))
    return cases, skipped


def summary(cases: list[EdgeCase]) -> dict:
    errors = [abs(c.error) for c in cases]
    return {"rows": len(cases), "median_abs_error": statistics.median(errors), "max_abs_error": max(errors)}


def main() -> int:
    cases, skipped = run(load_catalogs())
    print(f"{'measurement':50} {'quantity':10} {'published':>10} {'predicted':>10} {'error':>7}")
    for c in cases:
        print(f"{c.id:50} {c.quantity:10} {c.published:10.2f} {c.predicted:10.2f} {100 * c.error:+6.1f}%")
    s = summary(cases)
    print(f"\n{s['rows']} rows: median |error| {100 * s['median_abs_error']:.1f}%, "
          f"max {100 * s['max_abs_error']:.1f}%")
    for rid, why in skipped:
        print(f"skipped {rid}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
