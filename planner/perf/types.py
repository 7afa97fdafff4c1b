"""Inputs and outputs of the performance model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from planner.units import GIB

# Which dense peak a precision computes at. int4 is weight-only (W4A16): weights are dequantised and
# multiplied at 16-bit, so it saves memory and bandwidth but not FLOPs.
COMPUTE_PEAK_KEY = {
    "fp32": "tf32",
    "bf16": "bf16",
    "fp16": "fp16",
    "fp8": "fp8",
    "int8": "int8",
    "int4": "bf16",
    "fp4": "fp4",
    # MXFP4 weights are multiplied at 16 bits where the GPU has no FP4 tensor cores (roofline.compute_precision).
    "mxfp4": "bf16",
}


@dataclass(frozen=True)
class Parallel:
    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    # Context parallelism splits each sequence over `cp` devices (ring attention); training only.
    cp: int = 1
    micro_batch: int = 1
    zero_stage: int = 1
    recompute: Literal["none", "selective", "full"] = "selective"
    # Interleaved 1F1B: each device holds `virtual_stages` model chunks, dividing the bubble by as much.
    virtual_stages: int = 1
    # Devices a ZeRO/FSDP shard spans; 0 = every data-parallel replica (full sharding). Hybrid sharding
    # (HSDP) shards within a smaller group, typically a node, and all-reduces across the groups.
    shard_group: int = 0
    # Serving MoE: the replica's tp devices run attention (and the dense layers) data parallel, each on its own
    # sequences with whole weights, and hold the experts expert-parallel (ep = tp) behind an all-to-all
    # (SGLang --enable-dp-attention, vLLM data parallel + expert parallel, TensorRT-LLM enable_attention_dp).
    attention_dp: bool = False

    @property
    def shard_size(self) -> int:
        replicas = self.dp * self.cp
        return min(self.shard_group, replicas) if self.shard_group else replicas

    @property
    def devices_per_replica(self) -> int:
        return self.tp * self.pp

    @property
    def devices(self) -> int:
        return self.tp * self.cp * self.pp * self.dp


@dataclass(frozen=True)
class Adapter:
    """Parameter-efficient fine-tuning of a frozen base (the spec's `workload.adapter`)."""

    method: Literal["lora", "qlora"] = "lora"
    rank: int = 32
    targets: tuple[str, ...] = ("attention", "mlp")


@dataclass
class MemoryBreakdown:
    """Bytes per device (the most loaded one)."""

    weights: float = 0.0
    gradients: float = 0.0
    optimizer: float = 0.0
    activations: float = 0.0
    kv_cache: float = 0.0
    framework: float = 0.0

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.kv_cache + self.framework

    def gib(self) -> dict[str, float]:
        out = {k: round(v / GIB, 3) for k, v in asdict(self).items()}
        out["total"] = round(self.total / GIB, 3)
        return out


@dataclass
class Prediction:
    """One configuration's predicted behaviour. Times in seconds; the breakdown says where time goes."""

    kind: Literal["training", "serving", "vision"]
    devices: int
    memory: MemoryBreakdown
    memory_capacity_bytes: float
    breakdown: dict[str, float] = field(default_factory=dict)
    # training
    step_time_s: float | None = None
    mfu: float | None = None
    hfu: float | None = None
    time_to_train_s: float | None = None
    # serving
    ttft_p99_s: float | None = None
    ttft_mean_s: float | None = None
    ttft_p50_s: float | None = None
    ttft_p90_s: float | None = None
    tpot_s: float | None = None  # mean
    tpot_p99_s: float | None = None
    e2e_p99_s: float | None = None
    e2e_mean_s: float | None = None
    prefill_s: float | None = None
    utilization: float | None = None
    running_batch: float | None = None
    max_batch_fit: int | None = None
    max_requests_per_s: float | None = None  # per replica, within every SLO and the utilisation cap
    engine: str | None = None
    cached_prompt_tokens: int = 0  # per request, from the prefix cache (whole KV blocks)
    tokens_per_step: float | None = None  # speculative decoding's mean accept length
    # vision
    latency_s: float | None = None
    fps_capacity: float | None = None
    # all
    tokens_per_s: float | None = None
    power_w: float | None = None  # average IT power at the predicted utilisation (energy, carbon)
    peak_power_w: float | None = None  # IT power with every device at full load (what a site cap must hold)
    notes: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.memory.total <= self.memory_capacity_bytes

    @property
    def memory_gib_per_device(self) -> float:
        return self.memory.total / GIB
