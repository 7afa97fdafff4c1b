"""Achievable rates of one device: dense peak x the family's efficiency for the precision."""

from __future__ import annotations

from planner.catalog.schema import Accelerator, DeviceFamily
from planner.perf.types import COMPUTE_PEAK_KEY
from planner.units import TERA


def compute_precision(device: Accelerator, precision: str) -> str:
    """The precision a weight format multiplies at. MXFP4 weights meet MXFP8 activations on Blackwell and BF16
    ones on Hopper (TensorRT-LLM's gpt-oss MoE support matrix, examples/models/core/gpt_oss/README.md; source
    Q2): the FP8 rate where the GPU has FP4 tensor cores, the 16-bit rate elsewhere."""
    if precision == "mxfp4":
        return "fp8" if "fp4" in device.peak_dense_tflops else "bf16"
    return precision


def peak_flops(device: Accelerator, precision: str) -> float | None:
    tflops = device.peak_dense_tflops.get(COMPUTE_PEAK_KEY[compute_precision(device, precision)])
    return None if tflops is None else tflops * TERA


def matmul_efficiency(family: DeviceFamily, precision: str) -> float:
    # FP4 GEMMs (NVFP4) run on the same tensor-core paths as FP8 with block scaling: FP8's share is used.
    if precision in ("fp8", "fp4") and family.fp8_matmul_efficiency is not None:
        return family.fp8_matmul_efficiency.value
    return family.matmul_efficiency.value


def achievable_flops(device: Accelerator, family: DeviceFamily, precision: str) -> float:
    peak = peak_flops(device, precision)
    if peak is None:
        raise ValueError(f"{device.id} has no {precision} peak in the catalog")
    return peak * matmul_efficiency(family, precision)


def achievable_bandwidth(device: Accelerator, family: DeviceFamily) -> float:
    if device.memory_bw_gb_per_s is None:
        raise ValueError(f"{device.id} has no memory bandwidth in the catalog")
    return device.memory_bw_gb_per_s * 1e9 * family.memory_bw_efficiency.value
