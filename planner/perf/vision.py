"""Vision inference: roofline latency at a batch, frames per second, and the frame-deadline check.

    latency(b) = max(b * FLOPs / (peak * eta_mm), (weights + b * activations) / (bw * eta_mem))
A device serving lambda frames/s at batch b first waits for b frames ((b-1)/lambda) and then runs the
batch, so a frame's worst latency is (b-1)/lambda + latency(b). Capacity is b / latency(b) frames/s.
"""

from __future__ import annotations

from planner.catalog.schema import Accelerator, DeviceFamily, VisionShape
from planner.perf.roofline import achievable_bandwidth, achievable_flops
from planner.perf.types import MemoryBreakdown, Parallel, Prediction
from planner.units import BYTES_PER_ELEMENT, GIB


def predict_vision(shape: VisionShape, *, streams: int, fps_per_stream: float, par: Parallel, precision: str,
                   device: Accelerator, family: DeviceFamily) -> Prediction:
    compute = achievable_flops(device, family, precision)
    batch = par.micro_batch
    flops = shape.gflops_per_inference * 1e9
    weights = shape.params_m * 1e6 * BYTES_PER_ELEMENT[precision]
    activations = (shape.activation_mb or 0.0) * 1e6 * batch
    compute_s = batch * flops / compute
    memory_s = (weights + activations) / achievable_bandwidth(device, family)
    latency = max(compute_s, memory_s)
    capacity = batch / latency
    demand_per_device = streams * fps_per_stream / par.dp
    batching_wait = (batch - 1) / demand_per_device
    pred = Prediction(
        kind="vision",
        devices=par.dp,
        memory=MemoryBreakdown(weights=weights, activations=activations, framework=family.framework_overhead_gib * GIB),
        memory_capacity_bytes=device.memory_gb * 1e9,
        breakdown={"compute": compute_s, "memory": memory_s, "batching_wait": batching_wait},
        latency_s=batching_wait + latency,
        fps_capacity=capacity * par.dp,
        utilization=demand_per_device / capacity,
    )
    if pred.utilization >= 1.0:
        pred.notes.append(f"overloaded: {demand_per_device:.0f} frames/s per device against a capacity of {capacity:.0f}")
    return pred
