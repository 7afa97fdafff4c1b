"""Predicted versus published: edge inference (catalogs/edge_measurements.yaml).

    python tests/validation/validate_edge.py [--fit] [--loso]

Only the analytical model is compared (the planner itself prefers a matching measurement when one exists).
Vision rows compare one call's time at the published batch (one frame's latency at batch 1, or batch / FPS
when throughput is published); LLM rows compare decode tokens per second. Rows the model cannot rebuild
(offline throughput at an unknown batch, models or devices not in the catalogs, CPU boxes with no peak) are
listed with the reason.

--fit   refits every family's parameters (FIT_PARAMETERS) on all rows and prints them: the values
        catalogs/edge.yaml carries.
--loso  leave one source out: for each publisher, refits every family without that publisher's rows and
        predicts them. These are the figures that say how the model does on rows it has not seen.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, replace

from planner.catalog.loader import Catalog, load_catalogs
from planner.catalog.schema import Fraction, LLMShape, Parameter
from planner.perf.edge import EdgeTarget, edge_llm, edge_targets, timed_by
from planner.perf.edge_vision import model_vision, place, vision_flops
from planner.perf.shapes import llm_footprint


@dataclass
class EdgeCase:
    id: str
    publisher: str
    device: str
    family: str
    model: str
    batch: int
    regime: str  # fully mapped | partly mapped | llm
    quantity: str
    published: float
    predicted: float
    runtime: str = "llm"  # optimized (a C++ harness) | framework (an application) | llm
    gflop_on_chip: float = 0.0  # one frame's FLOPs the accelerator runs

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
        if m.batch is None or m.precision is None:
            skipped.append((m.id, "throughput at an unknown batch or precision"))
            continue
        if (m.runtime or "").endswith("-dla"):
            skipped.append((m.id, "DLA-only run (the model has the GPU and DLAs together)"))
            continue
        device = catalog.edge_devices[m.device]
        if m.power_mode is not None and m.power_mode not in {mode.name for mode in device.modes}:
            skipped.append((m.id, f"power mode {m.power_mode} is not in edge.yaml (no sourced peak for it)"))
            continue
        target = _target(catalog, m.device, m.power_mode)
        family = target.family.id
        shape = catalog.models[m.model].shape
        if isinstance(shape, LLMShape):
            llm = edge_llm(target, llm_footprint(shape), m.model, m.precision, 128, 128, {})
            if isinstance(llm, str) or not m.measured.get("tokens_per_s"):
                skipped.append((m.id, llm if isinstance(llm, str) else "no tokens/s published"))
                continue
            cases.append(EdgeCase(m.id, m.publisher, m.device, family, m.model, m.batch, "llm", "tokens/s",
                                  m.measured["tokens_per_s"], 1.0 / llm.profile.tpot_s))
            continue
        runtime = timed_by(m)
        graph = catalog.operator_graphs.get(shape.graph)
        support = catalog.operator_support.get(family)
        vision = model_vision(target, shape, m.precision, m.input_resolution, runtime, m.batch, graph, support)
        if vision is None:
            skipped.append((m.id, f"no {m.precision} peak or host rate for {m.device} (measured-only device)"))
            continue
        latency_ms, fps = m.measured.get("latency_ms"), m.measured.get("fps")
        published = latency_ms if latency_ms is not None else 1000.0 * m.batch / fps
        placed = place(graph, support)
        share = placed.host_share
        regime = "partly mapped" if placed.cut else "fully mapped"
        on_chip = vision_flops(shape, m.input_resolution) * (1 - share) / 1e9
        cases.append(EdgeCase(m.id, m.publisher, m.device, family, m.model, m.batch, regime, "call ms", published,
                              vision.latency_s * 1000, runtime, on_chip))
    return cases, skipped


# ---------------------------------------------------------------------------------------------- fitting

# What is fitted, per family, and why each is a family property rather than a row's:
#   compute_efficiency        the share of peak the runtime's kernels reach on a call that fills the device
#   framework/optimized_overhead_ms   what every call pays in the runtime (Python pipeline; tuned C++ harness)
#   frame_overhead_ms         what each frame pays through a dataflow pipeline (Hailo: transfer and fill)
#   context_switch_ms, context_reload_ms_per_gflop   a graph in several contexts reloading them every call
#   activation_bytes_per_pixel  a GPU's activation traffic per input pixel (TensorRT)
#   int8_fp16_share           the share of an INT8 engine TensorRT keeps at the FP16 rate
#   host_fallback_ms_per_megapixel  what a graph cut between accelerator and host costs per input megapixel
FIT_PARAMETERS = {
    "jetson-orin": ("compute_efficiency", "framework_overhead_ms", "optimized_overhead_ms", "activation_bytes_per_pixel",
                    "int8_fp16_share"),
    "hailo": ("compute_efficiency", "framework_overhead_ms", "optimized_overhead_ms", "frame_overhead_ms",
              "context_switch_ms", "context_reload_ms_per_gflop"),
    "coral-edgetpu": ("compute_efficiency", "framework_overhead_ms", "optimized_overhead_ms", "rate:depthwise_conv_2d",
                      "host_fallback_ms_per_megapixel"),
}
# `rate:operator` is the family's rate on that operator class relative to the rest (operators.yaml,
# support.rates). How much one Hailo context holds is read off the rows, not fitted (context_sizes).
BOUNDS = {"compute_efficiency": (0.005, 1.0), "framework_overhead_ms": (0.01, 20.0), "optimized_overhead_ms": (0.01, 5.0),
          "context_switch_ms": (0.01, 50.0),
          "context_gflop": (0.5, 500.0), "frame_overhead_ms": (0.01, 20.0), "context_reload_ms_per_gflop": (0.001, 10.0),
          "activation_bytes_per_pixel": (1.0, 10000.0), "int8_fp16_share": (0.01, 1.0), "depthwise_conv_2d": (0.001, 1.0),
          "host_fallback_ms_per_megapixel": (0.1, 1000.0)}


def _bounds(name: str) -> tuple[float, float]:
    return BOUNDS[name.split(":")[-1]]


def _get(catalog: Catalog, family: str, name: str) -> float | None:
    if name.startswith("rate:"):
        value = catalog.operator_support[family].rates.get(name.split(":")[1])
    else:
        value = getattr(catalog.edge_families[family], name)
    return None if value is None else value.value


def _set(catalog: Catalog, family: str, values: dict[str, float]) -> Catalog:
    fam = catalog.edge_families[family]
    update = {}
    support = dict(catalog.operator_support)
    for name, v in values.items():
        if name.startswith("rate:"):
            op = name.split(":")[1]
            rates = dict(support[family].rates)
            rates[op] = rates[op].model_copy(update={"value": v}) if op in rates else Parameter(value=v, reason="refit")
            support[family] = support[family].model_copy(update={"rates": rates})
        else:
            old = getattr(fam, name)
            kind = Fraction if name == "int8_fp16_share" else Parameter
            update[name] = old.model_copy(update={"value": v}) if old is not None else kind(value=v, reason="refit")
    families = {**catalog.edge_families, family: fam.model_copy(update=update)}
    return replace(catalog, edge_families=families, operator_support=support)


def _score(cases: list[EdgeCase]) -> float:
    """Mean absolute log error: symmetric in over- and under-prediction, and smooth enough to descend."""
    return statistics.fmean(abs(math.log(c.predicted / c.published)) for c in cases) if cases else 0.0


def fit_family(catalog: Catalog, family: str, keep) -> tuple[Catalog, dict[str, float]]:
    """Coordinate descent in log space on the family's rows that `keep` admits. It starts from the middle of
    each parameter's range, not from the catalog's value: that value was fitted on every row, and a
    parameter the kept rows do not pin down would otherwise keep what the left-out source taught it."""
    names = list(FIT_PARAMETERS[family])
    values = {n: math.sqrt(_bounds(n)[0] * _bounds(n)[1]) for n in names}

    def score(vals: dict[str, float]) -> float:
        cases, _ = run(_set(catalog, family, vals))
        return _score([c for c in cases if c.family == family and keep(c)])

    best = score(values)
    step = 2.0
    while step > 1.01:
        improved = False
        for n in names:
            lo, hi = _bounds(n)
            for value in (min(hi, max(lo, values[n] * f)) for f in (step, 1 / step)):
                trial = {**values, n: value}
                s = score(trial)
                if s < best - 1e-9:
                    best, values, improved = s, trial, True
        if not improved:
            step = math.sqrt(step)
    return _set(catalog, family, values), values


# Devices whose graphs split into contexts, and how the size of one context is read off their rows: a network
# that fits one context runs at the same rate per frame at batch 1 and 8 (the zoo's two columns), one that
# does not amortises its reload over the batch. The size lies between the largest network of the first kind
# and the smallest larger one of the second.
CONTEXT_DEVICES = ("hailo-8", "hailo-8l")
SAME_RATE = 0.10


def context_sizes(cases: list[EdgeCase]) -> dict[str, float | None]:
    sizes = {}
    for device in CONTEXT_DEVICES:
        per_frame = defaultdict(dict)
        for c in cases:
            if c.device == device and c.publisher == "hailo-model-zoo":
                per_frame[(c.model, c.gflop_on_chip)][c.batch] = c.published / c.batch
        pairs = [(gflop, rates[8] < (1 - SAME_RATE) * rates[1]) for (_, gflop), rates in per_frame.items()
                 if 1 in rates and 8 in rates]
        fits = [g for g, gains in pairs if not gains]
        larger = [g for g, gains in pairs if gains and fits and g > max(fits)]
        sizes[device] = math.sqrt(max(fits) * min(larger)) if larger else None
    return sizes


def _with_context_sizes(catalog: Catalog, sizes: dict[str, float | None]) -> Catalog:
    devices = dict(catalog.edge_devices)
    for device, size in sizes.items():
        old = devices[device].context_gflop
        value = None if size is None else (old.model_copy(update={"value": size}) if old else
                                           Parameter(value=size, reason="refit"))
        devices[device] = devices[device].model_copy(update={"context_gflop": value})
    return replace(catalog, edge_devices=devices)


PRIOR_FAMILY = "jetson-orin"


def _unmeasured(catalog: Catalog, family: str, prior: dict[str, float]) -> tuple[Catalog, dict[str, float]]:
    """A family none of whose rows may be used gets what the catalog gives a family nobody measured: the prior
    family's fitted values where the parameter is shared, and no slow operator."""
    values = {n: prior[n] for n in FIT_PARAMETERS[family] if n in prior}
    catalog = _set(catalog, family, values)
    support = dict(catalog.operator_support)
    if family in support:
        support[family] = support[family].model_copy(update={"rates": {}})
    return replace(catalog, operator_support=support), values


def fit_all(catalog: Catalog, keep=lambda c: True) -> tuple[Catalog, dict[str, dict[str, float]]]:
    fitted: dict[str, dict[str, float]] = {}
    rows, _ = run(catalog)
    sizes = context_sizes([c for c in rows if keep(c)])
    catalog = _with_context_sizes(catalog, sizes)
    fitted["context_gflop"] = {d: s for d, s in sizes.items() if s is not None}
    for family, names in FIT_PARAMETERS.items():
        # Fewer rows than parameters pin nothing down: the family counts as unmeasured.
        kept = sum(c.family == family and keep(c) for c in rows)
        if kept >= len(names) or family == PRIOR_FAMILY:
            catalog, fitted[family] = fit_family(catalog, family, keep)
        else:
            catalog, fitted[family] = _unmeasured(catalog, family, fitted[PRIOR_FAMILY])
    return catalog, fitted


def leave_one_source_out(catalog: Catalog) -> list[EdgeCase]:
    cases, _ = run(catalog)
    out = []
    for publisher in sorted({c.publisher for c in cases}):
        refit, _ = fit_all(catalog, keep=lambda c, p=publisher: c.publisher != p)
        out += [c for c in run(refit)[0] if c.publisher == publisher]
    return out


# ---------------------------------------------------------------------------------------------- report


def summary(cases: list[EdgeCase]) -> dict:
    errors = sorted(abs(c.error) for c in cases)
    p90 = errors[min(len(errors) - 1, math.ceil(0.9 * len(errors)) - 1)]
    return {"rows": len(cases), "median_abs_error": statistics.median(errors), "p90_abs_error": p90,
            "max_abs_error": errors[-1], "bias": statistics.median(c.error for c in cases)}


def _table(title: str, cases: list[EdgeCase]) -> None:
    print(f"\n{title}")
    print(f"  {'slice':36} {'rows':>4} {'median':>7} {'p90':>7} {'bias':>7}")
    for label, key in (("family", lambda c: c.family), ("source", lambda c: c.publisher),
                       ("regime", lambda c: c.regime), ("runtime", lambda c: c.runtime),
                       ("batch", lambda c: "batch 1" if c.batch == 1 else "batched")):
        groups = defaultdict(list)
        for c in cases:
            groups[key(c)].append(c)
        for name, group in sorted(groups.items()):
            s = summary(group)
            print(f"  {label + ' ' + name:36} {s['rows']:4d} {100 * s['median_abs_error']:6.1f}% "
                  f"{100 * s['p90_abs_error']:6.1f}% {100 * s['bias']:+6.1f}%")
    s = summary(cases)
    print(f"  {'all':36} {s['rows']:4d} {100 * s['median_abs_error']:6.1f}% {100 * s['p90_abs_error']:6.1f}% "
          f"{100 * s['bias']:+6.1f}%   (max {100 * s['max_abs_error']:.0f}%)")


def _rows(cases: list[EdgeCase]) -> None:
    print(f"{'measurement':56} {'quantity':9} {'published':>10} {'predicted':>10} {'error':>7}")
    for c in cases:
        print(f"{c.id:56} {c.quantity:9} {c.published:10.2f} {c.predicted:10.2f} {100 * c.error:+6.1f}%")


def main() -> int:
    catalog = load_catalogs()
    if "--fit" in sys.argv:
        _, fitted = fit_all(catalog)
        sizes = fitted.pop("context_gflop")
        for family, values in fitted.items():
            print(family + ": " + ", ".join(f"{k} = {v:.4g} (catalog {_get(catalog, family, k)})"
                                             for k, v in values.items()))
        print("context_gflop (read off the zoo's batch-1 and batch-8 columns): " + ", ".join(
            f"{d} = {v:.3g} (catalog {catalog.edge_devices[d].context_gflop.value})" for d, v in sizes.items()))
        return 0
    if "--loso" in sys.argv:
        cases = leave_one_source_out(catalog)
        _rows(cases)
        _table("leave one source out (every family refitted without the publisher's rows)", cases)
        return 0
    cases, skipped = run(catalog)
    _rows(cases)
    _table("in sample (the catalog's fitted values)", cases)
    for rid, why in skipped:
        print(f"skipped {rid}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
