"""Pydantic models of the catalog YAML files.

Every catalog file has `schema_version`; `sources.yaml` holds the one table of sources (id -> title, url,
as_of) and every entry in the other files cites those ids. A figure that no source gives is absent (None), never zero: the performance model turns
an absent figure it needs into an EstimateError naming the entry and field.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from planner.strict import Strict

Precision = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4", "mxfp4"]
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4", "mxfp4")
PricingModel = Literal["on-demand", "spot", "reserved-1y", "reserved-3y", "capacity-block"]
PRICING_MODELS: tuple[str, ...] = ("on-demand", "spot", "reserved-1y", "reserved-3y", "capacity-block")
# A reservation bills every hour of its term, used or not; it is searched only when a spec asks for it.
COMMITMENT_HOURS = {"reserved-1y": 8760.0, "reserved-3y": 3 * 8760.0}




class Source(Strict):
    title: str
    url: str | None = None
    as_of: dt.date


class Cited(Strict):
    """An entry whose figures come from the listed source ids of its file."""

    source: list[str] = Field(min_length=1)
    as_of: dt.date
    notes: str | None = None


class SourcedValue(Strict):
    value: float
    source: list[str] = Field(min_length=1)
    as_of: dt.date
    notes: str | None = None


# ---------------------------------------------------------------------------------------------- devices


class Accelerator(Cited):
    id: str
    name: str
    vendor: str
    family: str
    kind: Literal["datacenter", "edge"] = "datacenter"
    form_factor: str | None = None
    # Dense peak per precision, TFLOP/s (TOPS for int8/int4). Sparse figures never go here.
    peak_dense_tflops: dict[Precision, float]
    memory_gb: float = Field(gt=0)
    # What the driver reports (nvidia-smi / rocm-smi total), GiB: HBM is sold in binary units, so an "80 GB"
    # H100 holds 81,559 MiB. Serving engines size their KV cache from it. Absent: memory_gb x 1e9 bytes.
    memory_visible_gib: float | None = Field(default=None, gt=0)
    memory_bw_gb_per_s: float | None = Field(default=None, gt=0)
    tdp_w: float | None = Field(default=None, gt=0)
    scaleup_link: str | None = None
    scaleup_bw_gb_per_s_bidir: float | None = Field(default=None, gt=0)
    host_link: str | None = None
    release_year: int | None = None
    # False: the vendor's software stack serves models on it but does not train them (AWS Inferentia).
    trains: bool = True

    @property
    def memory_bytes(self) -> float:
        return self.memory_visible_gib * 2**30 if self.memory_visible_gib else self.memory_gb * 1e9

    @field_validator("peak_dense_tflops")
    @classmethod
    def _positive_peaks(cls, peaks: dict[str, float]) -> dict[str, float]:
        for precision, tflops in peaks.items():
            if tflops <= 0:
                raise ValueError(f"peak for {precision} must be > 0 (leave it out if unknown)")
        return peaks


class EfficiencyFactor(Strict):
    """A modelling parameter: a fraction of a datasheet peak that real software reaches."""

    value: float = Field(gt=0, le=1)
    reason: str
    source: list[str] = Field(default_factory=list)


class OverlapExponent(Strict):
    """A fitted shape parameter (>= 1) with its reason."""

    value: float = Field(ge=1, le=64)
    reason: str
    source: list[str] = Field(default_factory=list)


class GemmHalfDimension(Strict):
    """A fitted GEMM dimension (elements) at which a kernel reaches half its large-shape efficiency."""

    value: float = Field(ge=0, le=4096)
    reason: str
    source: list[str] = Field(default_factory=list)


class Fraction(Strict):
    """A modelling share that may be zero (overlap, idle power)."""

    value: float = Field(ge=0, le=1)
    reason: str
    source: list[str] = Field(default_factory=list)


class DeviceFamily(Strict):
    """Efficiency defaults shared by the devices of one architecture (never tuned per validation row)."""

    id: str
    matmul_efficiency: EfficiencyFactor
    # FP8 recipes run only the GEMMs in FP8 (attention, norms and casts stay 16-bit), so the fraction of the
    # FP8 peak reached is lower than the BF16 fraction of the BF16 peak. Absent: the family has no FP8 data.
    fp8_matmul_efficiency: EfficiencyFactor | None = None
    memory_bw_efficiency: EfficiencyFactor
    # Share of the dense peak that inference GEMMs reach (forward only, no recompute, tuned serving kernels),
    # at the precision's own peak. Absent: the training figures (matmul / fp8_matmul) are used.
    inference_matmul_efficiency: EfficiencyFactor | None = None
    # The same for 4-bit floating-point GEMMs (NVFP4) against their doubled peak; absent: the family has none.
    inference_fp4_matmul_efficiency: EfficiencyFactor | None = None
    # How a kernel near its ridge point combines its memory and compute times: (m^k + c^k)^(1/k). Large k
    # is the plain roofline max; a GEMM whose tiles wait on both memory and math is slower. Absent: max.
    roofline_overlap_exponent: "OverlapExponent | None" = None
    # Decode reads the KV cache in pages scattered over HBM (paged attention), slower than streaming weights.
    # Absent: the family's memory_bw_efficiency is used.
    kv_read_efficiency: EfficiencyFactor | None = None
    # Training GEMMs reach matmul_efficiency only on large shapes: a GEMM whose smallest dimension d (tokens,
    # hidden / tp or ffn / tp) is small fills fewer SMs per wave, reaching d / (d + half) of it. Absent: shape-free.
    gemm_half_dim: GemmHalfDimension | None = None
    # Share of the 16-bit peak the training attention core (FlashAttention forward + backward) reaches on
    # the FLOPs the MFU convention counts (full, unmasked s x s). Absent: matmul_efficiency.
    attention_efficiency: EfficiencyFactor | None = None
    collective_bw_efficiency: EfficiencyFactor
    # Share of the data-parallel gradient sync that overlaps the backward pass (bucketed reduction).
    comm_overlap: Fraction
    # Fraction of TDP drawn when compute-bound at full load, and when idle-but-allocated.
    power_at_full_load: EfficiencyFactor
    power_at_idle: Fraction
    # Framework memory overhead (CUDA context, allocator fragmentation, workspace), GiB per device.
    framework_overhead_gib: float = Field(ge=0)
    framework_overhead_reason: str


class EngineRule(Strict):
    """A default that depends on the device or the entry point; the first rule that matches wins."""

    memory_below_gb: float | None = Field(default=None, gt=0)
    devices: list[str] = []
    offline: bool | None = None  # True: the offline entry point (vLLM's LLM class, trtllm-bench); None: either
    value: float = Field(ge=0)
    per_rank: float = Field(default=0.0, ge=0)  # added per device of the replica (tp x pp)


class EngineValue(Strict):
    """One serving-engine parameter: a default read from the engine's source, or fitted with a reason."""

    value: float = Field(ge=0)
    reason: str
    source: list[str] = Field(default_factory=list)
    rules: list[EngineRule] = []

    def resolve(self, memory_gb: float, device_id: str, offline: bool = False, ranks: int = 1) -> float:
        for rule in self.rules:
            if rule.offline is not None and rule.offline != offline:
                continue
            if rule.memory_below_gb is not None and memory_gb >= rule.memory_below_gb:
                continue
            if rule.devices and device_id not in rule.devices:
                continue
            return rule.value + rule.per_rank * ranks
        return self.value


class Engine(Strict):
    """How a serving engine batches, pages and schedules (its defaults at `version`), and what it costs per
    step and per request beyond the kernels' rooflines."""

    id: str
    name: str
    version: str
    # Continuous batching: the cap on running sequences (vLLM max_num_seqs, SGLang max_running_requests,
    # TensorRT-LLM max_batch_size). The planner searches it; this is the engine's default.
    max_num_seqs: EngineValue
    # Tokens one step may carry (decode tokens plus prefill chunks): vLLM max_num_batched_tokens, SGLang
    # chunked_prefill_size, TensorRT-LLM max_num_tokens.
    max_step_tokens: EngineValue
    # False: a prompt is prefilled whole in one step (TensorRT-LLM's default), so it must fit the budget.
    chunked_prefill: bool
    # True: prefill rides in the same step as decode tokens (vLLM V1, TensorRT-LLM inflight batching);
    # False: prefill batches run as steps of their own and pause decoding (SGLang without mixed chunks).
    mixed_prefill: bool
    scheduling_reason: str
    # Memory for weights + KV: a share of total memory (vLLM), of what is free after the weights
    # (TensorRT-LLM), or all but a reserve (SGLang's mem_fraction_static formula).
    memory_fraction_of: Literal["total", "free_after_weights", "total_minus_reserved"]
    memory_fraction: EngineValue | None = None
    reserved_gib: EngineValue | None = None
    kv_block_tokens: EngineValue
    # paged: a sequence holds the KV blocks of the tokens it has; reserve_max: the scheduler admits a
    # sequence only when blocks for its whole input + output are free (TensorRT-LLM GUARANTEED_NO_EVICT).
    kv_admission: Literal["paged", "reserve_max"]
    kv_admission_reason: str
    fp8_kv_with_fp8_weights: bool
    fp8_kv_reason: str
    # Host-side time per step (scheduling, sampling, detokenisation, launches): base + per running sequence.
    step_overhead_ms: EngineValue
    step_overhead_per_seq_us: EngineValue
    # Kernel time per transformer layer and step that no roofline accounts for (launch gaps, tails of the
    # ~10 small kernels of a layer); it does not shrink with tensor parallelism.
    layer_overhead_us: EngineValue
    # Time a request spends outside the model before its first token (API server, tokenisation, admission).
    request_overhead_ms: EngineValue
    # Device memory the engine keeps outside weights and KV (activations for a full step, CUDA graphs,
    # communication buffers, allocator slack), GiB per device.
    runtime_overhead_gib: EngineValue
    # Share of the scale-up link bandwidth the engine's tensor-parallel all-reduce reaches (custom one-shot /
    # two-shot kernels inside CUDA graphs rather than NCCL's tuned rings).
    allreduce_bw_efficiency: EngineValue
    # Fixed cost of one tensor-parallel all-reduce kernel beyond the link's hop latency (launch and
    # synchronisation of the engine's all-reduce: custom one-shot kernels or NCCL).
    allreduce_base_us: EngineValue
    # Share of the dense GEMMs' throughput the routed experts' grouped GEMMs reach when compute-bound (the
    # tokens permuted to their experts, a GEMM per expert of a few rows each, the results gathered back).
    moe_gemm_efficiency: EngineValue
    # Speculative decoding methods the engine runs at this version (draft model, EAGLE heads, MTP layers),
    # and whether a launch caches prompt prefixes without a flag.
    speculative_methods: list[Literal["draft", "eagle", "mtp"]]
    speculative_reason: str
    # Whether the launch drafts a tree (top-k > 1 candidates a pass, one verification of the tree's nodes).
    speculative_tree: bool = False
    speculative_tree_reason: str = ""
    # Beyond the drafter's kernels: host and launch time of each sequential draft pass (its own forward,
    # sampling and bookkeeping), and per verification step (rejection sampling, the sync that reads back how
    # many drafts were accepted).
    draft_pass_overhead_us: EngineValue
    speculative_step_overhead_ms: EngineValue
    prefix_caching: bool
    prefix_caching_reason: str
    # Data-parallel attention beside expert-parallel MoE on the same devices (a layout the solver then searches).
    attention_dp: bool
    attention_dp_reason: str
    # Attention data parallel over several nodes, the experts spread over all of them (wide expert parallel).
    wide_ep: bool = False
    wide_ep_reason: str = ""
    # Disaggregated prefill/decode: prefill and decode instances with a KV connector between them.
    disaggregated: bool
    disaggregated_reason: str
    # Which tensor-parallel degrees a prefill and a decode instance may pair at (the KV connector's re-sharding),
    # and the device vendors whose memory the planned KV connector moves the cache from and to.
    disaggregated_tp: Literal["any", "decode_at_least_prefill"] = "any"
    disaggregated_vendors: list[str] = []
    # Which side samples a request's first token (the decode side recomputes it, or the prefill side sends it with
    # the cache), and whether the cache leaves after the whole prefill or after each chunk's forward.
    disaggregated_first_token: Literal["decode", "prefill"] = "decode"
    disaggregated_transfer: Literal["after_prefill", "per_chunk"] = "after_prefill"

    @model_validator(mode="after")
    def _memory_rule(self) -> "Engine":
        needed = "reserved_gib" if self.memory_fraction_of == "total_minus_reserved" else "memory_fraction"
        if getattr(self, needed) is None:
            raise ValueError(f"memory_fraction_of {self.memory_fraction_of} needs {needed}")
        if not 0 < self.moe_gemm_efficiency.value <= 1:
            raise ValueError("moe_gemm_efficiency.value must be in (0, 1]: the grouped GEMMs' share of dense speed")
        return self


class EnginesFile(Strict):
    schema_version: Literal[1]
    default: str
    engines: list[Engine]


class Framework(Strict):
    """What a training framework does by default that the step time depends on (read from its source)."""

    id: str
    name: str
    version: str
    # TP all-reduces / all-gathers overlapped with the GEMMs they feed (Transformer Engine userbuffers,
    # async TP): the family's comm_overlap share of them is hidden.
    tp_comm_overlap: bool
    tp_comm_overlap_reason: str
    # Context parallelism passing K/V around a ring while attention blocks compute (Megatron's p2p), or
    # gathering them first (torchtitan's allgather rotation, DeepSpeed-Ulysses all-to-all): not hidden.
    cp_comm_overlap: bool
    cp_comm_overlap_reason: str
    # Bytes per gradient element the data-parallel reduction moves (fp32 4, bf16 2).
    grad_reduce_bytes: float = Field(gt=0, le=4)
    grad_reduce_reason: str
    # The data-parallel sharding a run of this framework uses unless told otherwise (the planner searches
    # the spec's zero_stages; this is what `estimate` assumes without --zero).
    zero_stage: Literal[0, 1, 2, 3]
    zero_stage_reason: str
    # How many micro-batches a pipeline runs per step unless told: the local batch over the micro-batch size
    # (Megatron; torchtitan from April 2025), or as many as the pipeline degree (torchtitan before 2025),
    # which sets the pipeline bubble of a run that does not publish its micro-batch size.
    pp_microbatches: Literal["per_micro_batch", "pipeline_degree"] = "per_micro_batch"
    pp_microbatches_reason: str | None = None
    source: list[str]


class FrameworksFile(Strict):
    schema_version: Literal[1]
    default: str
    # A device vendor's own default, for specs that name no framework (TPUs train under MaxText).
    default_by_vendor: dict[str, str] = {}
    frameworks: list[Framework]


# ---------------------------------------------------------------------------------------------- systems


ScaleUpTopology = Literal["nvswitch", "pcie", "xgmi-mesh", "torus-2d", "torus-3d", "roce-mesh"]
ScaleOutFabric = Literal["rail-fat-tree", "fat-tree", "dcn"]


class ScaleUp(Strict):
    topology: ScaleUpTopology
    domain_devices: int = Field(ge=1)
    # Per device, per direction, as collectives see it (bidirectional datasheet figure / 2).
    link_gb_per_s: float | None = Field(default=None, gt=0)
    hop_latency_us: float = Field(ge=0)
    torus_dims: list[int] | None = None
    # torus: the slice shapes a job is cut as (the vendor's list); a job runs on the smallest that holds it,
    # so its groups see that slice's links, not the whole pod's. Absent: every job sees `torus_dims`.
    torus_slices: list[list[int]] | None = None
    # torus: an axis has wrap-around links only when its length is a multiple of this (TPU v5p: 4; v5e:
    # 16, the full pod axis). Absent: every axis of three or more wraps.
    torus_wrap_multiple: int | None = Field(default=None, ge=2)
    # pcie: devices sharing one PCIe switch / root port before traffic crosses the CPU.
    devices_per_pcie_switch: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _slices_fit_the_torus(self) -> ScaleUp:
        for shape in self.torus_slices or []:
            if self.torus_dims is None or len(shape) != len(self.torus_dims) or min(shape) < 1:
                raise ValueError(f"torus_slices: {shape} needs one length of at least 1 per torus_dims axis")
            if math.prod(shape) > self.domain_devices:
                raise ValueError(f"torus_slices: {shape} holds more than domain_devices {self.domain_devices}")
        return self


class ScaleOut(Strict):
    fabric: ScaleOutFabric
    nics_per_node: int = Field(ge=1)
    nic_gbit_per_s: float = Field(gt=0)
    nodes_per_leaf: int = Field(ge=1)
    switch_hop_latency_us: float = Field(ge=0)
    nic_latency_us: float = Field(ge=0)


class System(Cited):
    id: str
    name: str
    accelerator: str
    devices_per_node: int = Field(ge=1)
    scaleup: ScaleUp
    scaleout: ScaleOut | None = None
    # Node power beyond the accelerators (CPUs, NICs, fans), W; absent when no source gives it.
    host_power_w: float | None = Field(default=None, ge=0)


# ---------------------------------------------------------------------------------------------- models


class MoE(Strict):
    experts: int = Field(ge=1)
    top_k: int = Field(ge=1)
    shared_experts: int = Field(default=0, ge=0)
    expert_ffn: int = Field(ge=1)
    dense_layers: int = Field(default=0, ge=0)


class MLA(Strict):
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank Q and KV projections."""

    q_lora_rank: int = Field(ge=1)
    kv_lora_rank: int = Field(ge=1)
    qk_nope_head_dim: int = Field(ge=1)
    qk_rope_head_dim: int = Field(ge=1)
    v_head_dim: int = Field(ge=1)


class LocalAttention(Strict):
    """Layers that attend over a window rather than the whole context: sliding (the last `window` tokens,
    gpt-oss) or chunked (the tokens of the current `window`-token chunk, Llama 4's iRoPE layers). Engines keep
    only the window's KV for them (vLLM's sliding-window and chunked-local managers, TensorRT-LLM's pool per
    attention window)."""

    kind: Literal["sliding", "chunked"]
    window: int = Field(ge=1)
    layers: int = Field(ge=1, description="how many of the model's layers attend locally")


class LLMShape(Strict):
    kind: Literal["llm"] = "llm"
    params_b: float = Field(gt=0)
    layers: int = Field(ge=1)
    hidden: int = Field(ge=1)
    heads: int = Field(ge=1)
    kv_heads: int = Field(ge=1)
    head_dim: int | None = Field(default=None, ge=1)
    ffn: int = Field(ge=1)
    vocab: int = Field(ge=1)
    max_seq_len: int = Field(ge=1)
    gated_mlp: bool = True
    tied_embeddings: bool = False
    moe: MoE | None = None
    mla: MLA | None = None
    # Latent attention (DeepSeek MLA) caches a compressed vector instead of K and V per head.
    kv_cache_elems_per_token_per_layer: int | None = Field(default=None, ge=1)
    # Multi-token-prediction layers the checkpoint ships beside the main model (DeepSeek-V3: 1), which
    # speculative decoding's `mtp` method drafts with.
    mtp_layers: int = Field(default=0, ge=0)
    local_attention: LocalAttention | None = None

    @model_validator(mode="after")
    def _local_layers_within_model(self) -> "LLMShape":
        if self.local_attention is not None and self.local_attention.layers > self.layers:
            raise ValueError(f"local_attention.layers ({self.local_attention.layers}) exceeds the model's {self.layers} layers")
        return self


class VisionShape(Strict):
    kind: Literal["vision"] = "vision"
    gflops_per_inference: float = Field(gt=0)
    params_m: float = Field(gt=0)
    input_resolution: tuple[int, int]
    # The operators of the model in graph order (a graph of catalogs/operators.yaml): which an edge runtime
    # maps onto its accelerator and which it leaves to the host CPU.
    graph: str
    # Activation traffic per inference at batch 1, MB; absent means weights-only memory traffic.
    activation_mb: float | None = Field(default=None, gt=0)


class SpeechShape(Strict):
    """An encoder-decoder speech recogniser (Whisper): the encoder reads a fixed window of audio, the decoder
    writes the transcript token by token, cross-attending to the encoder's output."""

    kind: Literal["speech"] = "speech"
    params_m: float = Field(gt=0)
    encoder_layers: int = Field(ge=1)
    decoder_layers: int = Field(ge=1)
    d_model: int = Field(ge=1)
    vocab: int = Field(ge=1)
    window_s: float = Field(gt=0)
    encoder_positions: int = Field(ge=1, description="encoder sequence length for one window")

    @property
    def encoder_params(self) -> float:
        return 12.0 * self.encoder_layers * self.d_model**2

    @property
    def decoder_params(self) -> float:
        """Self- and cross-attention (8 d^2) and the MLP (8 d^2) per layer, plus the output embedding."""
        return 16.0 * self.decoder_layers * self.d_model**2 + self.vocab * self.d_model

    def encoder_flops(self) -> float:
        n = self.encoder_positions
        return 2.0 * self.encoder_params * n + 4.0 * self.encoder_layers * n * n * self.d_model

    def decoder_flops_per_token(self) -> float:
        return 2.0 * self.decoder_params + 4.0 * self.decoder_layers * self.encoder_positions * self.d_model

    def cross_kv_elems(self) -> float:
        """Keys and values of the encoder output every decoder layer reads for each token."""
        return 2.0 * self.decoder_layers * self.encoder_positions * self.d_model


class Model(Cited):
    id: str
    name: str
    shape: LLMShape | VisionShape | SpeechShape = Field(discriminator="kind")
    # The Hugging Face repository whose config.json the shape was read from (one of `source`): what a
    # launch config loads unless the user names another checkpoint of the same architecture.
    hf_repo: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")


# ---------------------------------------------------------------------------------------------- prices


class Offering(Cited):
    provider: str
    region: str
    instance: str
    system: str
    devices: int = Field(ge=1, description="accelerators per billed unit (instance, or chip for TPUs)")
    pricing: PricingModel
    usd_per_hour: float = Field(gt=0)
    # How far the price can be trusted (prices.yaml's header gives the rule); plans say it, and offerings
    # below the spec's search.min_price_confidence are left out.
    confidence: Literal["high", "medium", "low"]

    @property
    def usd_per_device_hour(self) -> float:
        return self.usd_per_hour / self.devices

    @property
    def commitment_hours(self) -> float:
        """Hours the price commits to (a reservation's term); 0 for prices paid only while used."""
        return COMMITMENT_HOURS.get(self.pricing, 0.0)


class Region(Strict):
    provider: str
    region: str
    location: str
    electricity_usd_per_kwh: SourcedValue | None = None
    pue: SourcedValue | None = None
    grid_gco2_per_kwh: SourcedValue | None = None


class Purchase(Cited):
    accelerator: str
    usd_per_device: float = Field(gt=0)
    usd_low: float | None = None
    usd_high: float | None = None


# ---------------------------------------------------------------------------------------------- edge


class Parameter(Strict):
    """A modelling parameter with a unit in its field name, fitted or assumed, and why."""

    value: float = Field(gt=0)
    reason: str
    source: list[str] = Field(default_factory=list)


Codec = Literal["h264", "h265", "av1", "mjpeg"]


class VideoDecoder(Cited):
    """A hardware video decoder as its datasheet quotes it, as the pixel rate that quote carries."""

    codec: Codec
    quoted: str  # the datasheet's words, e.g. "22x 1080p30 (H.265)"
    pixels_per_s: float = Field(gt=0)


class OperatorSegment(Strict):
    """A run of a model's graph: the operator classes it uses and its share of the model's FLOPs."""

    name: str
    operators: list[str] = Field(min_length=1)
    flops_share: float = Field(ge=0, le=1)


class OperatorGraph(Cited):
    id: str
    segments: list[OperatorSegment] = Field(min_length=1)


class OperatorSupport(Cited):
    """Which operator classes an edge family's compiler maps onto the accelerator, and what happens to the rest:
    `prefix`: everything from the first unsupported operator on runs on the host (the Edge TPU compiler);
    `per_segment`: each segment with an unsupported operator runs on the host, the rest on the accelerator."""

    family: str
    placement: Literal["prefix", "per_segment"]
    supported: list[str] = Field(min_length=1)
    # Operators the accelerator runs at a fraction of the efficiency it reaches on the rest.
    rates: dict[str, Parameter] = Field(default_factory=dict)


class OperatorsFile(Strict):
    schema_version: Literal[1]
    graphs: list[OperatorGraph]
    support: list[OperatorSupport]


class EdgeMode(Strict):
    """One power mode of an edge device: the board power it is held to and the dense peaks it reaches there."""

    name: str
    power_w: float = Field(gt=0)
    # Dense peak per precision at this mode, TFLOP/s (TOPS for int8/int4). Sparse figures never go here.
    peak_dense_tflops: dict[Precision, float]
    # The GPU alone, where the module also has DLAs (Jetson AGX Orin, Orin NX): the module figure counts both,
    # an engine built for the GPU reaches only this part. Absent: the whole peak is one engine's.
    gpu_peak_dense_tflops: dict[Precision, float] | None = None
    # Some modes also lower the memory clock (Orin Nano before and after JetPack 6.2); absent: the device's.
    memory_bw_gb_per_s: float | None = Field(default=None, gt=0)
    notes: str | None = None


class EdgeDevice(Cited):
    """A box, module or card that runs models on site (Jetson, Hailo, Coral, Apple M4, laptop NPU)."""

    id: str
    name: str
    vendor: str
    family: str  # an edge family in edge.yaml: efficiency and per-inference overhead
    form_factor: str
    # Memory the model can use; SoCs share it with the operating system (see the family's reserve).
    memory_gb: float | None = Field(default=None, gt=0)
    memory_bw_gb_per_s: float | None = Field(default=None, gt=0)
    # Dataflow accelerators without DRAM keep weights on chip; what does not fit streams over the host link
    # on every inference.
    onchip_memory_mb: float | None = Field(default=None, gt=0)
    host_link_gb_per_s: float | None = Field(default=None, gt=0)
    # An add-on card needs a host computer: its price and power are added (an id of another edge device).
    host: str | None = None
    modes: list[EdgeMode] = Field(min_length=1)
    unit_price_usd: SourcedValue | None = None
    runs_llm: bool = False
    # Names edge_measurements.yaml uses for the same silicon (a Pi 5 whose RAM size the source omits).
    measured_as: list[str] = Field(default_factory=list)
    # The rate at which this computer's CPU runs the operators an accelerator leaves to its host.
    host_cpu_gflops: Parameter | None = None
    # Video: hardware decoders, and the CPU cores that decode in software what they do not.
    video_decoders: list[VideoDecoder] = Field(default_factory=list)
    cpu_cores: int | None = Field(default=None, ge=1)
    software_decode_pixels_per_s_per_core: dict[Codec, Parameter] = Field(default_factory=dict)
    # A dataflow chip whose graph does not fit its fabric at once runs it in contexts, switched per call.
    context_gflop: Parameter | None = None


class EdgeFamily(Strict):
    """How close an edge runtime gets to its datasheet peak, and what every inference pays regardless of size."""

    id: str
    compute_efficiency: EfficiencyFactor
    memory_bw_efficiency: EfficiencyFactor
    # Fixed time every inference pays: a Python framework pipeline (Ultralytics, TFLite, HailoRT bindings)
    # and, where measured, a tuned C++ harness (MLPerf SingleStream). Absent optimized: same as framework.
    framework_overhead_ms: SourcedValue
    optimized_overhead_ms: SourcedValue | None = None
    # Memory the OS and runtime keep on a shared-memory SoC, GB.
    memory_reserve_gb: float = Field(default=0.0, ge=0)
    power_at_idle: Fraction
    # The share of an INT8 engine's work the runtime still runs at the FP16 rate (layers without INT8
    # kernels, such as a detector's head, and the reformatting between): INT8 gains less than its 2x peak.
    int8_fp16_share: Fraction | None = None
    # Each layer's output goes out to DRAM and comes back as the next layer's input: per input pixel and per
    # byte of the precision's element, the traffic one frame makes (what a GPU's small layers wait on).
    # Absent: only the weights are read from memory.
    activation_bytes_per_pixel: Parameter | None = None
    # A graph the compiler cuts between the accelerator and the host: per megapixel of input, the cut
    # tensors' trip back over the link and the host's float work on them (dequantise, transpose, softmax),
    # far more than the few FLOPs the tail counts. Absent: the tail costs only its FLOPs.
    host_fallback_ms_per_megapixel: Parameter | None = None
    # Frames of several streams run as one call where the runtime batches (TensorRT, HailoRT).
    max_batch: int = Field(default=1, ge=1, le=256)
    max_batch_reason: str | None = None
    # A dataflow chip (Hailo) streams frames through a pipeline of layers: each frame pays its own transfer
    # and pipeline fill, which a larger batch does not amortise (the zoo's batch-1 and batch-8 FPS agree for
    # a graph that fits the chip).
    frame_overhead_ms: Parameter | None = None
    # A graph beyond one context of the chip (EdgeDevice.context_gflop) runs context by context, and every call
    # reloads them: a fixed cost plus one in proportion to the graph's size.
    context_switch_ms: Parameter | None = None
    context_reload_ms_per_gflop: Parameter | None = None


class EdgeFile(Strict):
    schema_version: Literal[1]
    families: list[EdgeFamily]
    devices: list[EdgeDevice]


class EdgeMeasurement(Strict):
    """A published edge result: what the planner uses instead of its model when the same setup was measured."""

    id: str
    # Who published it: the unit a leave-one-source-out validation holds out (MLPerf, a vendor's zoo, a blog).
    publisher: str
    source: str
    url: str
    as_of: dt.date
    device: str
    power_mode: str | None = None
    model: str
    precision: str | None = None
    batch: int | None = None
    input_resolution: tuple[int, int] | None = None
    scenario: str | None = None
    runtime: str | None = None
    # The computer an accelerator card or stick was attached to, as the source names it (it runs what the
    # accelerator does not, and its link and Python speed show in small models' times).
    host: str | None = None
    # The same host as a catalog device, when it is one: the result then stands for the catalog's own setup
    # (a Hailo card under a Pi 5) ahead of one on another host.
    host_device: str | None = None
    # latency_ms: one call of `batch` frames; fps: frames per second; tokens_per_s: LLM decode.
    measured: dict[str, float | None]
    notes: str | None = None


class EdgeMeasurementsFile(Strict):
    schema_version: Literal[1]
    measurements: list[EdgeMeasurement]


# ---------------------------------------------------------------------------------------------- files


class SourcesFile(Strict):
    schema_version: Literal[1]
    sources: dict[str, Source]


class AccuracyFigure(Cited):
    """How far one kind of prediction was off on published runs the model was not fitted to: the
    leave-one-source-out figures of the validation scripts (tests/validation), the band a user should expect."""

    kind: Literal["serving", "training"]
    metric: str  # the metric name in `predicted` (tokens_per_s, tpot_mean_ms, ttft_mean_ms, step_time_s)
    rows: int = Field(ge=1)
    median_abs_pct: float = Field(ge=0)
    p90_abs_pct: float = Field(ge=0)
    bias_pct: float
    basis: str  # what was held out and how the rows were scored


class AccuracyFile(Strict):
    schema_version: Literal[1]
    figures: list[AccuracyFigure]


class AcceleratorsFile(Strict):
    schema_version: Literal[1]
    accelerators: list[Accelerator]


class EfficiencyFile(Strict):
    schema_version: Literal[1]
    families: list[DeviceFamily]


class SystemsFile(Strict):
    schema_version: Literal[1]
    systems: list[System]


class ModelsFile(Strict):
    schema_version: Literal[1]
    models: list[Model]


class Egress(Cited):
    """Internet data transfer out of a provider's cloud (what a site pays to receive results)."""

    provider: str
    usd_per_gb: float = Field(ge=0)


class PricesFile(Strict):
    schema_version: Literal[1]
    offerings: list[Offering]
    regions: list[Region]
    purchases: list[Purchase] = Field(default_factory=list)
    egress: list[Egress] = Field(default_factory=list)
