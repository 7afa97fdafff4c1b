"""Edge vision inference: one device in one power mode running a call of b frames.

Where each operator runs. A model's graph (`catalogs/operators.yaml`) is its segments in graph order, each
with the operator classes it uses and its share of the FLOPs. The device family's compiler maps what it
supports onto the accelerator (`place`):
    prefix       the Edge TPU compiler: segments before the first unsupported operator run on the
                 accelerator, that one and everything after it on the host CPU
    per_segment  each segment with an unsupported operator runs on the host, the others on the accelerator
    (no support entry: the runtime maps every operator, as TensorRT does on a Jetson GPU)

One call of b frames:
    accelerator = max(b F W / (peak eta), weights / (bw eta_mem)) + activations + spill + reload
    W           the accelerator's segments' FLOP shares, each divided by its operators' rate there
                (`OperatorSupport.rates`: the Edge TPU's depthwise convolutions)
    peak        the precision's dense peak of the engine that runs the graph (a Jetson's GPU, not its DLAs);
                for INT8, a share of the work at the FP16 rate where the family says so
    eta         the family's compute efficiency
    activations = b x pixels x activation_bytes_per_pixel x element bytes / (bw eta_mem): each layer's output
                written to DRAM and read back, what a GPU's many small layers wait on (an occupancy term
                P / (P + P_half) was tried instead and fitted to nothing)
    spill       = (weights - on-chip memory) / host link      (dataflow chips without DRAM: Coral, Hailo)
    reload      = switch + F x reload_per_gflop   when F > context_gflop: a Hailo graph too large for one
                                              context runs in several, all reloaded once per call
    host        = b F_host / host CPU rate  (+ b x megapixels x host_fallback_ms_per_megapixel where the graph
                is cut: the cut tensors' trip back and the host's float work on them)
    overhead    = per call (the runtime: an application's, or a C++ benchmark harness's) + b x per frame
                (a dataflow pipeline's transfer and fill)
    latency(b)  = overhead + accelerator + host,   capacity(b) = b / latency(b) frames/s
F scales with the pixel count when the input resolution differs from the model's reference one.

A published measurement of the same device, model, precision, resolution and batch, timed the way the
workload runs (`perf.edge.timed_by`: a C++ pipeline or an application; `edge_measurements.yaml`), replaces
the model's number: the answer says which basis it used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.catalog.schema import (
    EdgeMeasurement,
    OperatorGraph,
    OperatorSupport,
    VisionShape,
)
from planner.perf.edge import EdgeTarget, mode_scale, overhead_s
from planner.units import BYTES_PER_ELEMENT


@dataclass(frozen=True)
class EdgeVision:
    latency_s: float  # one call of `batch` frames
    fps_capacity: float
    basis: str  # "model" or the measurement id
    breakdown: dict[str, float]
    batch: int = 1
    host_cpu_s: float = 0.0  # host CPU seconds one call takes (fallback operators)


def vision_flops(shape: VisionShape, resolution: tuple[int, int] | None) -> float:
    flops = shape.gflops_per_inference * 1e9
    if resolution is None:
        return flops
    ref = shape.input_resolution
    return flops * (resolution[0] * resolution[1]) / (ref[0] * ref[1])


@dataclass(frozen=True)
class Placement:
    """Where a graph's segments run under a family's compiler (see the module docstring)."""

    host_share: float = 0.0  # of the FLOPs, left to the host CPU
    accelerator_work: float = 1.0  # the accelerator's FLOP share, each segment divided by its operators' rate
    missing: tuple[str, ...] = ()  # the unsupported operators that send segments to the host

    @property
    def cut(self) -> bool:
        """Some segment runs on the host, so tensors cross back to it on every call."""
        return bool(self.missing)


def place(graph: OperatorGraph | None, support: OperatorSupport | None) -> Placement:
    """Each segment on the accelerator or the host: everything from the first unsupported operator on
    (`prefix`), or each segment with one (`per_segment`); with no support entry the runtime maps all. A slow
    operator class (`OperatorSupport.rates`: a systolic array fills one column of its width on a depthwise
    convolution) weighs its segment's work."""
    if graph is None or support is None:
        return Placement()
    supported, falling = set(support.supported), False
    share, work, missing = 0.0, 0.0, []
    for seg in graph.segments:
        unsupported = [op for op in seg.operators if op not in supported]
        falling = (falling or bool(unsupported)) if support.placement == "prefix" else bool(unsupported)
        if falling:
            share += seg.flops_share
            missing += [op for op in unsupported if op not in missing]
        else:
            work += seg.flops_share / min((support.rates[op].value for op in seg.operators if op in support.rates),
                                          default=1.0)
    return Placement(share, work, tuple(missing))


def _effective_peak(target: EdgeTarget, precision: str, peak: float) -> float:
    """INT8 work of which a share runs at the FP16 rate: 1 / ((1 - s) / P_int8 + s / P_fp16)."""
    share, fp16 = target.family.int8_fp16_share, target.peak_flops("fp16")
    if precision != "int8" or share is None or fp16 is None:
        return peak
    return 1.0 / ((1 - share.value) / peak + share.value / fp16)


def model_vision(target: EdgeTarget, shape: VisionShape, precision: str, resolution: tuple[int, int] | None = None,
                 runtime: str = "framework", batch: int = 1, graph: OperatorGraph | None = None,
                 support: OperatorSupport | None = None) -> EdgeVision | None:
    """The analytical time of one call, or None when the catalog lacks what this precision or the host needs."""
    peak = target.peak_flops(precision)
    if peak is None:
        return None
    placed = place(graph, support)
    share = placed.host_share
    host_rate = target.host.host_cpu_gflops if target.host else target.device.host_cpu_gflops
    if share > 0 and host_rate is None:
        return None
    fam = target.family
    flops = vision_flops(shape, resolution)
    res = resolution or shape.input_resolution
    on_accelerator = batch * flops * placed.accelerator_work
    compute = on_accelerator / (_effective_peak(target, precision, peak) * fam.compute_efficiency.value)
    weights = shape.params_m * 1e6 * BYTES_PER_ELEMENT[precision]
    bw = target.memory_bw_gb_per_s
    memory = weights / (bw * 1e9 * fam.memory_bw_efficiency.value) if bw else 0.0
    activations = 0.0
    if bw and fam.activation_bytes_per_pixel is not None:
        pixels = batch * math.prod(res)
        traffic = pixels * fam.activation_bytes_per_pixel.value * BYTES_PER_ELEMENT[precision]
        activations = traffic / (bw * 1e9 * fam.memory_bw_efficiency.value)
    spill = 0.0
    onchip, link = target.device.onchip_memory_mb, target.device.host_link_gb_per_s
    if onchip is not None and link is not None and weights > onchip * 1e6:
        spill = (weights - onchip * 1e6) / (link * 1e9)
    switching = 0.0
    gflop_on_chip = flops * (1 - share) / 1e9
    if target.device.context_gflop is not None and gflop_on_chip > target.device.context_gflop.value:
        # Each call runs every context in turn, so a graph in several reloads all of them once per call.
        per_gflop = fam.context_reload_ms_per_gflop.value if fam.context_reload_ms_per_gflop else 0.0
        fixed = fam.context_switch_ms.value if fam.context_switch_ms else 0.0
        switching = (fixed + per_gflop * gflop_on_chip) / 1000
    host = batch * flops * share / (host_rate.value * 1e9) if share else 0.0
    if fam.host_fallback_ms_per_megapixel is not None and placed.cut:
        host += batch * math.prod(res) / 1e6 * fam.host_fallback_ms_per_megapixel.value / 1000
    overhead = overhead_s(fam, runtime) + batch * (fam.frame_overhead_ms.value / 1000 if fam.frame_overhead_ms else 0.0)
    # Small layers wait on their activations rather than overlap with the big ones' math: the two add.
    latency = overhead + max(compute, memory) + activations + spill + switching + host
    return EdgeVision(latency, batch / latency, "model",
                      {"overhead": overhead, "compute": compute, "memory": memory, "activations": activations,
                       "weight_streaming": spill,
                       "context_switching": switching, "host_operators": host}, batch, host)


def measured_vision(target: EdgeTarget, measurements: dict[tuple, EdgeMeasurement], model_id: str, precision: str,
                    resolution: tuple[int, int], batch: int = 1, runtime: str = "framework") -> EdgeVision | None:
    """A published result for this device, model, precision, resolution, batch and runtime (at the device's
    top mode; lower modes scale it by their share of the top mode's peak)."""
    m = measurements.get((target.device.id, model_id, precision, tuple(resolution), batch, runtime))
    if m is None:
        return None
    fps, latency_ms = m.measured.get("fps"), m.measured.get("latency_ms")
    if latency_ms is None and fps is None:
        return None
    # latency_ms is one call of `batch` frames; a result that publishes only throughput takes batch / fps.
    latency = latency_ms / 1000 if latency_ms is not None else batch / fps
    scale = mode_scale(target, precision)
    return EdgeVision(latency / scale, batch / latency * scale, m.id, {"measured": latency / scale}, batch)


def edge_vision(target: EdgeTarget, shape: VisionShape, model_id: str, precision: str,
                resolution: tuple[int, int] | None, measurements: dict[tuple, EdgeMeasurement],
                runtime: str = "framework", batch: int = 1, graph: OperatorGraph | None = None,
                support: OperatorSupport | None = None) -> EdgeVision | None:
    res = tuple(resolution or shape.input_resolution)
    return measured_vision(target, measurements, model_id, precision, res, batch, runtime) or model_vision(
        target, shape, precision, res, runtime, batch, graph, support)
