"""Edge devices: one device in one power mode as a target, and small LLMs on it.

Vision is `perf.edge_vision`. Small LLMs reuse the data-centre serving model (`perf.serving.replica_profile`)
on a one-device system built from the edge device in its mode: prefill is compute-bound, decode streams the
weights.

A published measurement of the same device, model and precision (`edge_measurements.yaml`) replaces the
model's decode rate: the answer says which basis it used. The analytical models' error against those
measurements is what `tests/validation/validate_edge.py` reports.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from planner.catalog.schema import (
    Accelerator,
    DeviceFamily,
    EdgeDevice,
    EdgeFamily,
    EdgeMeasurement,
    EdgeMode,
    EfficiencyFactor,
    Fraction,
    ScaleUp,
    System,
)
from planner.perf.serving import ReplicaProfile, replica_profile
from planner.perf.shapes import LLMFootprint
from planner.perf.types import COMPUTE_PEAK_KEY, Parallel
from planner.units import TERA

# Which peak a precision computes at. Weight-only INT4 (MLC q4f16, llama.cpp Q4) computes in 16 bit on
# GPUs; NPUs without a 16-bit peak compute it in INT8.
_COMPUTE_KEYS = {"fp32": ("tf32", "fp32"), "fp16": ("fp16",), "bf16": ("bf16", "fp16"), "int8": ("int8",),
                 "int4": ("fp16", "bf16", "int8")}


@dataclass(frozen=True)
class EdgeTarget:
    """One edge device in one power mode, with the host computer an add-on card needs."""

    device: EdgeDevice
    mode: EdgeMode
    family: EdgeFamily
    host: EdgeDevice | None = None

    @property
    def label(self) -> str:
        return f"{self.device.id}@{self.mode.name}"

    @property
    def power_w(self) -> float:
        """Board power at full load: the mode's budget plus the host's."""
        return self.mode.power_w + (self.host.modes[0].power_w if self.host else 0.0)

    @property
    def idle_power_w(self) -> float:
        return self.power_w * self.family.power_at_idle.value

    @property
    def memory_bw_gb_per_s(self) -> float | None:
        return self.mode.memory_bw_gb_per_s or self.device.memory_bw_gb_per_s

    @property
    def engine_peaks(self) -> dict[str, float]:
        """The peaks one engine reaches: the GPU's where the module also has DLAs, since the planner builds
        every engine (vision and LLM) for the GPU and leaves the DLAs idle."""
        return self.mode.gpu_peak_dense_tflops or self.mode.peak_dense_tflops

    def peak_flops(self, precision: str) -> float | None:
        peaks = self.engine_peaks
        for key in _COMPUTE_KEYS.get(precision, (precision,)):
            tflops = peaks.get(key)
            if tflops is not None:
                return tflops * TERA
        return None

    def supports(self, precision: str) -> bool:
        """A precision runs where the catalog knows the peak it computes at (FP32 at the TF32 tensor-core peak
        on GPUs; weight-only INT4 only on devices that run LLMs)."""
        if precision == "int4":
            return self.device.runs_llm and self.peak_flops(precision) is not None
        return self.peak_flops(precision) is not None


# Sequences an edge LLM runtime decodes together: Ollama's OLLAMA_NUM_PARALLEL auto-selects 4 (or 1 when
# memory is short; the KV fit below caps it), and llama.cpp's server batches its parallel slots the same way.
EDGE_LLM_SLOTS = 4

RUNTIMES = ("framework", "optimized")


def overhead_s(family: EdgeFamily, runtime: str) -> float:
    """What one call pays outside the accelerator's kernels; "kernels" (trtexec's GPU compute time) pays none."""
    if runtime == "kernels":
        return 0.0
    chosen = family.optimized_overhead_ms if runtime == "optimized" else None
    return (chosen or family.framework_overhead_ms).value / 1000


def mode_scale(target: EdgeTarget, precision: str) -> float:
    """This mode's peak as a share of the device's top mode (1 when peaks are unknown)."""
    top = target.device.modes[0]
    here = target.peak_flops(precision)
    ref = EdgeTarget(target.device, top, target.family).peak_flops(precision)
    return 1.0 if here is None or not ref else here / ref


# ---------------------------------------------------------------------------------------------- LLM


def as_accelerator(target: EdgeTarget) -> tuple[Accelerator, DeviceFamily, System]:
    """The device in its mode as the data-centre serving model sees one accelerator on its own."""
    d, fam = target.device, target.family
    # The serving model reads a precision's peak under COMPUTE_PEAK_KEY (INT4 -> bf16): give it the peak
    # this device computes that precision at.
    peaks = dict(target.engine_peaks)
    for precision, key in COMPUTE_PEAK_KEY.items():
        flops = target.peak_flops(precision)
        if flops is not None and key not in peaks:
            peaks[key] = flops / TERA
    memory = (d.memory_gb or 0.0) - fam.memory_reserve_gb
    acc = Accelerator(id=target.label, name=d.name, vendor=d.vendor, family=fam.id, kind="edge",
                      peak_dense_tflops=peaks, memory_gb=max(memory, 1e-3), memory_bw_gb_per_s=target.memory_bw_gb_per_s,
                      tdp_w=target.mode.power_w, source=d.source, as_of=d.as_of)
    family = DeviceFamily(
        id=fam.id, matmul_efficiency=fam.compute_efficiency, memory_bw_efficiency=fam.memory_bw_efficiency,
        collective_bw_efficiency=EfficiencyFactor(value=1.0, reason="one device: no collectives"),
        comm_overlap=Fraction(value=0.0, reason="one device"),
        power_at_full_load=EfficiencyFactor(value=1.0, reason="the mode's power budget is the board power at load"),
        power_at_idle=fam.power_at_idle, framework_overhead_gib=0.0,
        framework_overhead_reason="the OS and runtime share is the family's memory_reserve_gb")
    system = System(id=f"{target.label}-standalone", name=d.name, accelerator=acc.id, devices_per_node=1,
                    scaleup=ScaleUp(topology="pcie", domain_devices=1, hop_latency_us=0.0),
                    source=d.source, as_of=d.as_of)
    return acc, family, system


@dataclass(frozen=True)
class EdgeLLM:
    profile: ReplicaProfile
    basis: str


def transformer_unfit(target: EdgeTarget, precision: str) -> str | None:
    """Why the device cannot run a transformer (LLM, speech) at this precision, or None."""
    if not target.device.runs_llm:
        return "no transformer runtime in the catalog"
    if target.device.memory_gb is None or target.memory_bw_gb_per_s is None:
        return "no memory size or bandwidth in the catalog"
    if target.peak_flops(precision) is None:
        return "no peak in the catalog"
    return None


def edge_llm(target: EdgeTarget, fp: LLMFootprint, model_id: str, precision: str, input_tokens: int,
             output_tokens: int, measurements: dict[tuple, EdgeMeasurement]) -> EdgeLLM | str:
    """Batch-1 profile of a small LLM on the device, or why it cannot run it."""
    why = transformer_unfit(target, precision)
    if why:
        return why
    d = target.device
    acc, family, system = as_accelerator(target)
    prof = replica_profile(fp, input_tokens=input_tokens, output_tokens=output_tokens,
                           par=Parallel(tp=1, pp=1, dp=1, micro_batch=EDGE_LLM_SLOTS), precision=precision, device=acc,
                           family=family, system=system)
    if prof.max_batch_fit < 1:
        return f"weights and one request's KV cache exceed {acc.memory_gb:.1f} GB usable"
    if prof.max_batch_fit < EDGE_LLM_SLOTS:
        prof = replace(prof, batch=prof.max_batch_fit)
    m = measurements.get((d.id, model_id, precision, None, 1, "framework"))
    if m is not None and m.measured.get("tokens_per_s"):
        tpot = 1.0 / (m.measured["tokens_per_s"] * mode_scale(target, precision))
        return EdgeLLM(replace(prof, measured_tpot_s=tpot, states={}), m.id)
    return EdgeLLM(prof, "model")


def measured_power(target: EdgeTarget, measurements, model_id: str, precision: str) -> tuple[float, str] | None:
    """The power a published run of this model drew at full load on this device in this mode, plus its host's
    budget for an add-on card, and the run's id; None where no run published its power."""
    for m in measurements:
        watts = m.measured.get("power_w")
        mode = m.power_mode or target.device.modes[0].name
        if watts and m.device == target.device.id and m.model == model_id and m.precision == precision \
                and mode == target.mode.name:
            return watts + target.power_w - target.mode.power_w, m.id
    return None


def timed_by(m: EdgeMeasurement) -> str:
    """What timed a published result: a C++ benchmark harness (MLPerf's, trtexec's host latency, hailortcli
    behind the Hailo zoo's tables, Coral's C++ benchmarks) pays little per call, "optimized"; an application
    or a Python loop (Ultralytics, pycoral, Frigate, MLC) pays the framework's per-call cost, "framework";
    trtexec's GPU compute time counts the kernels alone, "kernels"."""
    runtime = (m.runtime or "").lower()
    if "gpu compute" in runtime:
        return "kernels"
    if m.scenario in ("singlestream", "offline", "multistream") or runtime in ("hailort", "trtexec") or "c++" in runtime:
        return "optimized"
    return "framework"


def measurement_index(measurements: list[EdgeMeasurement],
                      devices: dict[str, EdgeDevice]) -> dict[tuple, EdgeMeasurement]:
    """Results by (device, model, precision, resolution, batch, runtime); LLM rows have no resolution. The
    runtime is what timed the result (`timed_by`): a C++ harness's time does not stand for an application's.
    A result
    published for the same silicon under another name (`measured_as`) counts for the catalog device; one
    measured on the catalog's own host for an add-on card (`host_device`) wins over one on another host."""
    alias = {name: d.id for d in devices.values() for name in d.measured_as}
    index: dict[tuple, EdgeMeasurement] = {}
    for m in measurements:
        # Offline throughput at an unknown batch says nothing about any one call; a DLA-only run is not the
        # GPU engine the planner builds.
        if m.batch is None or m.precision is None or (m.runtime or "").endswith("-dla"):
            continue
        device = alias.get(m.device, m.device)
        # Lower modes scale the top mode's result; a result at another mode (or at a clock the catalog has no
        # peak for, Coral's reduced one) is not the top mode's.
        if m.power_mode is not None and device in devices and m.power_mode != devices[device].modes[0].name:
            continue
        key = (device, m.model, m.precision, tuple(m.input_resolution) if m.input_resolution else None, m.batch,
               timed_by(m))
        own_host = device in devices and devices[device].host is not None and m.host_device == devices[device].host
        if key not in index or own_host and index[key].host_device != m.host_device:
            index[key] = m
    return index


def edge_targets(devices: dict[str, EdgeDevice], families: dict[str, EdgeFamily], device_id: str) -> list[EdgeTarget]:
    """The device in each of its power modes, top mode first."""
    d = devices[device_id]
    host = devices.get(d.host) if d.host else None
    return [EdgeTarget(d, mode, families[d.family], host) for mode in d.modes]
