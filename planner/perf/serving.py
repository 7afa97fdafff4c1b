"""LLM serving on a continuous-batching engine: one replica of tp x pp devices.

One engine iteration (`StepCost.seconds`) is the unit both this closed form and the simulator
(`planner/simulate/`) read, so the two can only disagree about queueing and batching:

    step = host overhead (engine base + per running sequence)
         + pp x [ linear layers: R(weights read / bw, tokens x 2 x active params / F)
                + decode attention: R(KV bytes at the real context / kv_bw, its FLOPs / F)
                + prefill attention: causal pairs x 4 x attn_dim / F
                + a fixed kernel time per layer
                + 2 all-reduces per layer, each the engine's kernel base + ring/tree time at its bandwidth ]

R(m, c) = (m^k + c^k)^(1/k) is the roofline of a kernel near its ridge point, whose tiles wait on both
memory and math (k per device family; large k is the plain max). Kernels of a layer run one after
another, so memory-bound attention does not hide behind compute-bound GEMMs either.

Load (`ReplicaProfile.at_batch`): a replica keeps B sequences decoding, B = lambda x (O - 1) x TPOT
(Little's law), capped by the engine's `max_num_seqs` and by the KV that fits (paged: the tokens each
sequence holds on average, I + O/2; reserve-max engines: I + O). Prompts that arrived during a step ride
the next one (E[N | N >= 1] of them); with mixed batching they share decode steps and TPOT = T_decode +
f x (T_mixed - T_decode) for the fraction f of steps that carry prompts; prefill-first engines add whole
prefill steps instead. Parametrised by B rather than lambda, every quantity is closed form; a rate is
found by searching B (`max_rate`).

TTFT = request overhead + the length-biased residual of the step under way (or, when prompts queue, the
M/D/1 wait for the GPU time their prefill takes, whichever is longer) + admission when every slot is
busy (M/M/c, Sakasegawa's approximation) + the prompt's own step. Tails take the waits as exponential
beyond an atom at zero; TPOT's tail is the spread of the prompts co-scheduled over a request's life
(amplified by 1 / (1 - rho)) and of the running batch. The simulator checks all of these on a trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

from planner.catalog.schema import Accelerator, DeviceFamily, Engine, System
from planner.catalog.topology import group_link, scaleup_domain
from planner.perf.comm import all_reduce_lines, all_to_all_s, p2p_s, remote_copies
from planner.perf.roofline import achievable_bandwidth, matmul_efficiency, peak_flops
from planner.perf.shapes import LLMFootprint, model_split_problems
from planner.perf.speculative import Speculation
from planner.perf.training import gemm_shape_slowdown
from planner.perf.types import MemoryBreakdown, Parallel, Prediction
from planner.units import BYTES_PER_ELEMENT, GIB, gbit_to_bytes_per_s

ACTIVATION_BYTES = 2.0
Z99 = 2.326  # standard normal 99th percentile


# Bytes per KV element when the launch names the cache's dtype (vLLM/SGLang --kv-cache-dtype, TensorRT-LLM
# kv_cache_config.dtype).
KV_DTYPE_BYTES = {"fp8": 1.0, "bf16": 2.0, "fp16": 2.0}


@dataclass(frozen=True)
class EngineParams:
    """The engine facts the model reads for one device and replica size, in SI units (see
    catalogs/engines.yaml for their sources)."""

    id: str
    max_num_seqs: int  # the engine's default cap (what a launch without the flag runs)
    max_step_tokens: float
    chunked_prefill: bool
    mixed_prefill: bool
    memory_fraction_of: str
    memory_fraction: float  # of total or free memory; for total_minus_reserved, 1
    reserved_bytes: float  # total_minus_reserved only
    kv_block_tokens: int
    kv_admission: str
    fp8_kv_with_fp8_weights: bool
    step_overhead_s: float
    step_overhead_per_seq_s: float
    layer_overhead_s: float
    request_overhead_s: float
    allreduce_base_s: float
    runtime_overhead_bytes: float | None  # None: the device family's framework overhead
    allreduce_bw_efficiency: float | None  # None: the family's collective efficiency
    moe_gemm_efficiency: float = 1.0  # routed experts' grouped GEMMs against dense ones
    kv_cache_dtype: str = "auto"  # the launch's --kv-cache-dtype; auto: the engine's default for the weights
    draft_pass_overhead_s: float = 0.0  # speculative decoding: per draft pass, beyond its kernels
    speculative_step_overhead_s: float = 0.0  # and per verification step
    # Whether the checkpoint format quantizes the embedding and output head with the rest: edge formats do
    # (llama.cpp's Q4_K_M stores the head as Q6_K, MLC's q4f16 groups-quantizes both); data-centre ones do not.
    quantized_vocab: bool = False
    # Disaggregated serving (catalogs/engines.yaml): the prefill side samples the first token and sends it with the
    # cache; the cache leaves chunk by chunk, so only the last chunk's transfer follows the prefill.
    first_token_on_prefill: bool = False
    kv_sent_per_chunk: bool = False

    @classmethod
    def of(cls, engine: Engine, device: Accelerator, ranks: int = 1, offline: bool = False,
           kv_cache_dtype: str = "auto") -> "EngineParams":
        def get(value) -> float:
            return value.resolve(device.memory_gb, device.id, offline, ranks)

        return cls(id=engine.id, max_num_seqs=int(get(engine.max_num_seqs)), max_step_tokens=get(engine.max_step_tokens),
                   chunked_prefill=engine.chunked_prefill, mixed_prefill=engine.mixed_prefill,
                   memory_fraction_of=engine.memory_fraction_of,
                   memory_fraction=get(engine.memory_fraction) if engine.memory_fraction else 1.0,
                   reserved_bytes=get(engine.reserved_gib) * GIB if engine.reserved_gib else 0.0,
                   kv_block_tokens=max(1, int(get(engine.kv_block_tokens))), kv_admission=engine.kv_admission,
                   fp8_kv_with_fp8_weights=engine.fp8_kv_with_fp8_weights,
                   step_overhead_s=get(engine.step_overhead_ms) / 1e3,
                   step_overhead_per_seq_s=get(engine.step_overhead_per_seq_us) / 1e6,
                   layer_overhead_s=get(engine.layer_overhead_us) / 1e6,
                   request_overhead_s=get(engine.request_overhead_ms) / 1e3,
                   allreduce_base_s=get(engine.allreduce_base_us) / 1e6,
                   runtime_overhead_bytes=get(engine.runtime_overhead_gib) * GIB,
                   allreduce_bw_efficiency=get(engine.allreduce_bw_efficiency),
                   moe_gemm_efficiency=get(engine.moe_gemm_efficiency), kv_cache_dtype=kv_cache_dtype,
                   draft_pass_overhead_s=get(engine.draft_pass_overhead_us) / 1e6,
                   speculative_step_overhead_s=get(engine.speculative_step_overhead_ms) / 1e3,
                   first_token_on_prefill=engine.disaggregated_first_token == "prefill",
                   kv_sent_per_chunk=engine.disaggregated_transfer == "per_chunk")

    @classmethod
    def bare(cls) -> "EngineParams":
        """Kernels only: no host overhead, whole prompts per step, a sequence reserves its full context.
        Edge runtimes (llama.cpp, MLC) are calibrated against their own measurements instead."""
        return cls(id="bare", max_num_seqs=1, max_step_tokens=math.inf, chunked_prefill=True, mixed_prefill=True,
                   memory_fraction_of="total", memory_fraction=1.0, reserved_bytes=0.0, kv_block_tokens=1,
                   kv_admission="reserve_max", fp8_kv_with_fp8_weights=True, step_overhead_s=0.0,
                   step_overhead_per_seq_s=0.0, layer_overhead_s=0.0, request_overhead_s=0.0, allreduce_base_s=0.0,
                   runtime_overhead_bytes=None, allreduce_bw_efficiency=None, quantized_vocab=True)

    def step_budget(self, input_tokens: int, batch: int) -> float:
        """Tokens a step may carry. Without chunked prefill a whole prompt must fit beside the decode
        tokens, so the budget is raised to one prompt + the batch (what trtllm-bench sets, and what a
        launch configuration has to set)."""
        if self.chunked_prefill:
            return self.max_step_tokens
        return max(self.max_step_tokens, input_tokens + batch)


def kv_bytes_per_elem(precision: str, engine: EngineParams) -> float:
    if engine.kv_cache_dtype != "auto":
        return KV_DTYPE_BYTES[engine.kv_cache_dtype]
    return 1.0 if precision in ("fp8", "int8", "fp4") and engine.fp8_kv_with_fp8_weights else 2.0


def kv_bytes_per_token_per_device(fp: LLMFootprint, precision: str, par: Parallel,
                                  engine: EngineParams | None = None) -> float:
    per_token = fp.kv_bytes_per_token(kv_bytes_per_elem(precision, engine or EngineParams.bare()))
    # GQA heads split over TP until each rank holds one KV head; latent (MLA) caches are replicated. Data-parallel
    # attention splits the sequences instead: each rank holds its own sequences' whole cache.
    if par.attention_dp:
        tp_split = par.tp
    else:
        tp_split = min(par.tp, fp.kv_heads) if fp.kv_shardable_by_tp else 1
    return per_token / (tp_split * par.pp)


def serving_structural_problems(fp: LLMFootprint, par: Parallel, system: System, domain: int) -> list[str]:
    if par.attention_dp and par.tp > domain:
        # Wide expert parallel: attention has no TP to keep inside the domain, only the experts' exchanges
        # cross the scale-out fabric, whole domains (nodes) at a time.
        problems = model_split_problems(fp, 1, par.pp, domain, system.id)
        if system.scaleout is None or par.tp % domain:
            problems.append(f"attention data parallel over {par.tp} devices spans several {domain}-device domains of "
                            f"{system.id}: it needs whole domains joined by a scale-out network")
    else:
        problems = model_split_problems(fp, par.tp, par.pp, domain, system.id)
    if par.ep > 1 and (not fp.is_moe or par.ep != par.tp or fp.experts % par.ep):
        problems.append(f"ep={par.ep}: expert parallelism replaces TP on the expert layers, so ep must equal tp "
                        f"and divide the experts (dense models take ep=1)")
    if par.attention_dp and (not fp.is_moe or par.tp < 2 or par.ep != par.tp):
        problems.append("data-parallel attention runs with the experts expert-parallel over the same devices: it needs "
                        "an MoE model and ep = tp >= 2")
    if par.micro_batch < par.pp:
        problems.append(f"batch {par.micro_batch} is smaller than pp={par.pp}: stages would idle")
    return problems


def vocab_bytes_per_elem(precision: str, engine: EngineParams) -> float:
    """Data-centre checkpoints keep the embedding table and output head 16-bit when they quantize: ModelOpt's
    FP8, INT4-AWQ and NVFP4 configs disable every `*lm_head*` quantizer (modelopt/torch/quantization/config.py,
    _default_disabled_quantizer_cfg; source Q1), vLLM's online FP8 leaves its ParallelLMHead unquantized, and
    an embedding is a lookup table, not a quantized linear layer."""
    bpe = BYTES_PER_ELEMENT[precision]
    return bpe if engine.quantized_vocab else max(bpe, 2.0)


def weight_bytes_per_device(fp: LLMFootprint, precision: str, par: Parallel, engine: EngineParams) -> float:
    vocab = fp.embedding_params + fp.lm_head_params
    bpe = BYTES_PER_ELEMENT[precision]
    if par.attention_dp:  # every rank holds the non-expert weights whole and its share of the experts
        experts = fp.expert_params_total
        return ((fp.total_params - vocab - experts) * bpe + vocab * vocab_bytes_per_elem(precision, engine)
                + experts * bpe / par.tp) / par.pp
    return ((fp.total_params - vocab) * bpe + vocab * vocab_bytes_per_elem(precision, engine)) / (par.tp * par.pp)


def streamed_dense_bytes(fp: LLMFootprint, precision: str, shards: int, engine: EngineParams) -> float:
    """Non-expert weight bytes one decode step reads per device: every layer and the output head, but not the
    input embedding table, of which a step looks up only its tokens' rows (a tied table is read once, as the
    head)."""
    expert_total = fp.expert_params_total if fp.is_moe else 0.0
    vocab = fp.embedding_params + fp.lm_head_params
    head = fp.lm_head_params or fp.embedding_params
    body = fp.total_params - expert_total - vocab
    return (body * BYTES_PER_ELEMENT[precision] + head * vocab_bytes_per_elem(precision, engine)) / shards


def _overlapped(memory_s: float, compute_s: float, k: float | None) -> float:
    """Memory and compute time of one kernel: the roofline max, or with the family's overlap exponent k the
    k-norm of the two (k -> infinity is the max; finite k charges imperfect overlap)."""
    if k is None or memory_s <= 0 or compute_s <= 0:
        return memory_s if memory_s > compute_s else compute_s
    if memory_s > compute_s:
        return memory_s * (1.0 + (compute_s / memory_s) ** k) ** (1.0 / k)
    return compute_s * ((memory_s / compute_s) ** k + 1.0) ** (1.0 / k)


@dataclass(frozen=True)
class StepCost:
    """Seconds of one engine iteration on one replica, from the tokens it carries.

    All per-device figures are for one pipeline stage (layers / pp on tp devices)."""

    pp: int
    dense_bytes: float  # weights every step reads (non-expert), per device
    expert_bytes: float  # all expert weights held per device (MoE; 0 for dense models)
    expert_share: float  # top_k / experts: the chance a token routes to a given expert
    linear_flops_per_token: float  # per device
    routed_flops_per_token: float  # the routed experts' share of it (their grouped GEMMs run slower)
    routed_bytes_per_token: float  # HBM traffic of the routed copies (permute, GEMM I/O, combine), per device
    attn_flops_per_pair: float  # per device, one (query, key) pair across the stage's layers (prefill)
    decode_attn_flops_per_pair: float  # the same for a decoding token (MLA decodes in its latent space)
    kv_bytes_per_token: float  # per device
    bw: float
    kv_bw: float
    gemm_flops: float
    attn_flops: float
    allreduces: int  # per stage per step
    hidden_bytes_per_token: float
    tp_link: object
    ep_link: object | None
    pp_link: object | None
    comm_efficiency: float
    top_k: int
    layers: int  # per stage
    budget: float  # tokens a step may carry
    engine: EngineParams
    overlap_k: float | None = None  # None: the plain roofline max
    # Speculative decoding: each decoding sequence carries the verified token and k drafts through the
    # target; the drafter (a StepCost of its own, no host overhead) runs k passes over them and one over the
    # step's prompt tokens.
    decode_tokens_per_seq: int = 1
    drafter: "StepCost | None" = None
    draft_passes: int = 0
    draft_branches: int = 1  # tree drafting: candidates per sequence in every pass after the first
    # Expert-parallel all-to-alls per stage per step (dispatch and combine), and the share of the step's tokens
    # one device sends: all of them under TP (every rank holds every token), 1 / ranks under DP attention.
    moe_exchanges: int = 0
    exchange_share: float = 1.0
    schedulers: int = 1  # DP attention: a scheduler per rank, each over its own sequences
    # DP attention: the prompt tokens one rank prefills of one request in a step (the prompt, or its chunk).
    rank_prompt_tokens: float = 0.0
    # Wide expert parallel (DP attention over several scale-up domains): `ep_link` is then the group inside one
    # domain; a GPU's copies to other domains leave through its share of the node's NICs (all of them at once,
    # not one ring's) after the fabric's latency.
    ep_domains: int = 1
    ep_remote_bw: float = 0.0
    ep_remote_latency_s: float = 0.0
    eight_bit_dispatch: bool = False  # prompt steps dispatch 8-bit activations (DeepGEMM's FP8 inputs)

    @cached_property
    def _allreduce_lines(self) -> tuple[float, float, float, float]:
        return all_reduce_lines(self.tp_link, self.engine.allreduce_bw_efficiency or self.comm_efficiency)

    @cached_property
    def _rates(self) -> tuple[float, ...]:
        """Per-unit times every step multiplies (rate searches evaluate steps by the hundred thousand): the
        dense weight read, GEMM time per token, KV read per held token, attention per (query, key) pair, the
        stage's per-layer kernel cost, decode attention per pair; then the TP all-reduces' fixed and per-token
        costs, ring and tree, all reduces of a step together (zeros without TP)."""
        if self.allreduces:
            ring_fixed, ring_per_byte, tree_fixed, tree_per_byte = self._allreduce_lines
            n, base, h = self.allreduces, self.engine.allreduce_base_s, self.hidden_bytes_per_token
            allreduce = (n * (base + ring_fixed), n * ring_per_byte * h, n * (base + tree_fixed), n * tree_per_byte * h)
        else:
            allreduce = (0.0, 0.0, 0.0, 0.0)
        # A compute-bound grouped GEMM reaches moe_gemm_efficiency of a dense one: its extra time rides in the
        # roofline with the rest, so a decode step bound by its expert reads hides it.
        routed_extra = self.routed_flops_per_token * (1.0 / self.engine.moe_gemm_efficiency - 1.0)
        return (self.dense_bytes / self.bw, (self.linear_flops_per_token + routed_extra) / self.gemm_flops,
                self.kv_bytes_per_token / self.kv_bw, self.attn_flops_per_pair / self.attn_flops,
                self.layers * self.engine.layer_overhead_s, self.decode_attn_flops_per_pair / self.attn_flops,
                *allreduce)

    STAGE_TERMS = ("linear", "kv", "prefill_attention", "comm", "layers")

    def _stage_terms(self, decode_seqs: float, context_tokens: float, prefill_tokens: float,
                     prefill_pairs: float) -> tuple[float, float, float, float, float]:
        """One stage's kernel times for its share of the step (already divided by pp), as STAGE_TERMS."""
        (weights_s, gemm_per_token, kv_per_token, attn_per_pair, layers_s, decode_per_pair,
         ring_fixed, ring_per_token, tree_fixed, tree_per_token) = self._rates
        queries = self.decode_tokens_per_seq
        tokens = decode_seqs * queries + prefill_tokens
        if self.expert_bytes:
            weights_s += self.expert_bytes * (1.0 - (1.0 - self.expert_share) ** tokens) / self.bw
        k = self.overlap_k
        linear = _overlapped(weights_s, tokens * gemm_per_token, k)
        if self.routed_bytes_per_token:  # the permute and combine kernels: memory-bound, apart from the GEMMs
            linear += tokens * self.routed_bytes_per_token / self.bw
        if prefill_tokens > 0 and self.rank_prompt_tokens:
            # Under DP attention a prompt is prefilled on the rank that admitted it, and every rank waits for the
            # slowest at each MoE layer: with P prompts a step on R ranks the busiest holds one prompt's
            # attention and non-expert GEMMs until P reaches R, not P / R of them (the experts stay shared).
            prompts = prefill_tokens * self.pp / self.rank_prompt_tokens
            spread = self.schedulers / min(max(prompts, 1.0), self.schedulers)
            if spread > 1.0:
                own_gemms = (self.linear_flops_per_token - self.routed_flops_per_token) / self.gemm_flops
                linear += (spread - 1.0) * prefill_tokens * own_gemms
                prefill_pairs *= spread
        kv = _overlapped(context_tokens * kv_per_token, context_tokens * decode_per_pair * queries, k)
        prefill_attn = prefill_pairs * attn_per_pair
        comm = (min(ring_fixed + ring_per_token * tokens, tree_fixed + tree_per_token * tokens)
                if tokens > 0 and self.allreduces else 0.0)
        if self.ep_domains > 1:
            comm += self._wide_exchanges(tokens * self.exchange_share, prefill_tokens > 0)
        elif self.ep_link is not None:
            msg = tokens * self.exchange_share * self.hidden_bytes_per_token * self.top_k
            comm += self.moe_exchanges * all_to_all_s(self.ep_link, msg, self.comm_efficiency)
        if self.pp_link is not None:
            comm += p2p_s(self.pp_link, tokens * self.hidden_bytes_per_token, self.comm_efficiency)
        return linear, kv, prefill_attn, comm, layers_s

    def _wide_exchanges(self, rank_tokens: float, prompt_step: bool) -> float:
        """A step's dispatches and combines when the experts span domains, as DeepEP runs them (the kernels wide
        expert parallel is launched with): decode steps on the low-latency kernels (a copy per remote expert),
        prompt steps on the normal ones (a copy per remote node). Dispatch sends 8-bit activations (low latency:
        always, deepep.py:511 of SGLang 0.5.2; normal: with DeepGEMM's FP8 inputs, 328-335), combine 16-bit.
        Off-node copies leave through the GPU's NICs while the node's own copies cross NVLink at once."""
        h = self.hidden_bytes_per_token
        dispatch = h / ACTIVATION_BYTES if (self.eight_bit_dispatch or not prompt_step) else h
        copies = remote_copies(self.top_k, self.ep_domains, per_expert=not prompt_step)
        remote = (rank_tokens * copies * (dispatch + h) / (self.ep_remote_bw * self.comm_efficiency)
                  + 2 * self.ep_remote_latency_s)
        local_copies = rank_tokens * self.top_k / self.ep_domains
        local = (all_to_all_s(self.ep_link, local_copies * dispatch, self.comm_efficiency)
                 + all_to_all_s(self.ep_link, local_copies * h, self.comm_efficiency))
        return self.moe_exchanges / 2 * max(remote, local)

    def stage_parts(self, decode_seqs: float, context_tokens: float, prefill_tokens: float,
                    prefill_pairs: float) -> dict[str, float]:
        """The stage's terms by name (reports and breakdowns)."""
        return dict(zip(self.STAGE_TERMS, self._stage_terms(decode_seqs, context_tokens, prefill_tokens,
                                                              prefill_pairs)))

    def seconds(self, decode_seqs: float, context_tokens: float, prefill_tokens: float = 0.0,
                prefill_pairs: float = 0.0) -> float:
        """A step with `decode_seqs` sequences decoding over `context_tokens` held tokens in all, plus
        `prefill_tokens` prompt tokens attending `prefill_pairs` (query, key) pairs."""
        if decode_seqs <= 0 and prefill_tokens <= 0:
            return 0.0
        pp = self.pp
        if pp == 1:
            linear, kv, prefill_attn, comm, layers_s = self._stage_terms(decode_seqs, context_tokens, prefill_tokens,
                                                                         prefill_pairs)
        else:
            linear, kv, prefill_attn, comm, layers_s = self._stage_terms(decode_seqs / pp, context_tokens / pp,
                                                                         prefill_tokens / pp, prefill_pairs / pp)
        host = self.engine.step_overhead_s + self.engine.step_overhead_per_seq_s * decode_seqs / self.schedulers
        total = host + pp * (linear + kv + prefill_attn + comm + layers_s)
        if self.drafter is not None:  # rate searches call this by the hundred thousand: no call without a drafter
            total += self.draft_seconds(decode_seqs, context_tokens, prefill_tokens, prefill_pairs)
        return total

    def draft_seconds(self, decode_seqs: float, context_tokens: float, prefill_tokens: float = 0.0,
                      prefill_pairs: float = 0.0) -> float:
        """The drafter's share of a step (0 without speculative decoding)."""
        if self.drafter is None:
            return 0.0
        drafting = 0.0
        if decode_seqs > 0:
            eng = self.engine
            k = self.draft_branches  # each candidate its own query over its prefix
            drafting = (self.drafter.seconds(decode_seqs, context_tokens)
                        + (self.draft_passes - 1) * self.drafter.seconds(decode_seqs * k, context_tokens * k)
                        + self.draft_passes * eng.draft_pass_overhead_s + eng.speculative_step_overhead_s)
        return drafting + (self.drafter.seconds(0.0, 0.0, prefill_tokens, prefill_pairs) if prefill_tokens > 0 else 0.0)


def step_cost(fp: LLMFootprint, *, par: Parallel, precision: str, device: Accelerator, family: DeviceFamily,
              system: System, engine: EngineParams, input_tokens: int = 1,
              speculation: Speculation | None = None, context_per_seq: float = 0.0) -> StepCost:
    """`context_per_seq`: the mean tokens a decoding sequence holds, at which layers attending over a window
    (sliding or chunked) keep and read only that window; 0 reads every layer at the full context."""
    bpe = BYTES_PER_ELEMENT[precision]
    shards = par.tp * par.pp
    expert_total = fp.expert_params_total if fp.is_moe else 0.0
    # Attention runs at 16 bits in every engine's default kernels, whatever the GEMMs' precision.
    attn_peak = peak_flops(device, "bf16") or peak_flops(device, "fp16") or peak_flops(device, precision)
    eta_mm = family.matmul_efficiency.value
    gemm_eta = (family.inference_matmul_efficiency.value if family.inference_matmul_efficiency
                else matmul_efficiency(family, precision))
    if precision == "fp4" and family.inference_fp4_matmul_efficiency is not None:
        gemm_eta = family.inference_fp4_matmul_efficiency.value
    # TP-sharded GEMMs are narrower (TP8 leaves a 70B model 1,280-wide QKV and 1,024-deep output projections)
    # and reach less of peak, by the family's gemm_half_dim that training runs measure. The token side is left
    # out: a decode GEMM of a few tokens is bound by its weight reads, which the roofline already charges.
    gemm_eta /= gemm_shape_slowdown(fp, 1 if par.attention_dp else par.tp, math.inf, family)
    kv_eff = (family.kv_read_efficiency or family.memory_bw_efficiency).value
    held_share = fp.kv_share(context_per_seq) if context_per_seq else 1.0
    allreduces = (2 * fp.layers // par.pp) if par.tp > 1 and not par.attention_dp else 0
    domains = wide_ep_domains(par, system)
    ep_local = par.ep // domains
    wide = {} if domains == 1 else {
        "ep_domains": domains, "ep_remote_bw": nic_bytes_per_s_per_device(system),
        "ep_remote_latency_s": group_link(system, domains, ep_local, world=par.devices_per_replica).latency_s,
        "eight_bit_dispatch": BYTES_PER_ELEMENT[precision] <= 1}
    return StepCost(
        pp=par.pp,
        dense_bytes=streamed_dense_bytes(fp, precision, par.pp if par.attention_dp else shards, engine),
        expert_bytes=expert_total * bpe / shards,
        expert_share=(fp.top_k / fp.experts) if fp.is_moe else 0.0,
        linear_flops_per_token=2.0 * fp.active_params / shards,
        routed_flops_per_token=2.0 * fp.routed_active_params / shards,
        routed_bytes_per_token=routed_copy_bytes(fp, par) / par.pp,
        attn_flops_per_pair=fp.attention_flops_per_token(1.0) * fp.prefill_pair_share(input_tokens) / shards,
        decode_attn_flops_per_pair=fp.decode_attention_flops_per_token(1.0) * held_share / shards,
        kv_bytes_per_token=kv_bytes_per_token_per_device(fp, precision, par, engine) * held_share,
        bw=achievable_bandwidth(device, family),
        kv_bw=device.memory_bw_gb_per_s * 1e9 * kv_eff,
        gemm_flops=peak_flops(device, precision) * gemm_eta,
        attn_flops=attn_peak * (gemm_eta if family.inference_matmul_efficiency else eta_mm),
        allreduces=allreduces,
        hidden_bytes_per_token=fp.hidden * ACTIVATION_BYTES,
        tp_link=group_link(system, par.tp, 1, world=par.devices_per_replica),
        ep_link=group_link(system, ep_local, 1, world=par.devices_per_replica) if fp.is_moe and par.ep > 1 else None,
        pp_link=group_link(system, 2, par.tp, world=par.devices_per_replica) if par.pp > 1 else None,
        comm_efficiency=family.collective_bw_efficiency.value,
        top_k=fp.top_k if fp.is_moe else 0,
        layers=max(1, fp.layers // par.pp),
        # Under DP attention every rank's scheduler fills its own token budget.
        budget=engine.step_budget(input_tokens, par.micro_batch) * (par.tp if par.attention_dp else 1),
        rank_prompt_tokens=(min(float(input_tokens), engine.step_budget(input_tokens, par.micro_batch))
                            if par.attention_dp and fp.is_moe and par.ep > 1 else 0.0),
        engine=engine,
        overlap_k=family.roofline_overlap_exponent.value if family.roofline_overlap_exponent else None,
        **_speculative_parts(speculation, par, precision, device, family, system, engine),
        **_expert_exchange(fp, par, allreduces),
        **wide,

    )


def routed_copy_bytes(fp: LLMFootprint, par: Parallel) -> float:
    """HBM bytes one token's routed copies move per device outside the expert GEMMs' weights, over all MoE layers.

    Each of its top_k copies is written by the permute and read by the first GEMM, written by the second and read
    by the combine (4 hidden-wide activations), and its gated intermediate is written and read once between the two
    GEMMs (the activation fused into the first GEMM's epilogue): TensorRT-LLM's CUTLASS MoE path, which vLLM's and
    SGLang's Blackwell backends (FlashInfer) run too. Expert parallel spreads the copies over the ranks; tensor
    parallel splits each expert's intermediate."""
    if not fp.is_moe:
        return 0.0
    expert_tp = 1 if par.ep > 1 else par.tp
    per_copy = (4 * fp.hidden + 2 * fp.ffn / expert_tp) * ACTIVATION_BYTES
    return fp.moe_layers * fp.top_k * per_copy / max(1, par.ep)


def nic_bytes_per_s_per_device(system: System) -> float:
    """One device's share of its node's scale-out NICs (bytes/s)."""
    out = system.scaleout
    return out.nics_per_node * gbit_to_bytes_per_s(out.nic_gbit_per_s) / system.devices_per_node


def wide_ep_domains(par: Parallel, system: System) -> int:
    """Scale-up domains (nodes) a data-parallel-attention replica's experts span: 1 unless it is wider than one."""
    domain = scaleup_domain(system)
    return par.ep // domain if par.attention_dp and par.ep > domain else 1


def wide_ep_redundant_experts(par: Parallel, system: System) -> int:
    """Redundant expert slots a wide-EP launch asks EPLB for (0 otherwise): one per rank, which keeps experts +
    redundant divisible by ep wherever ep divides the experts (LMSYS ran 32 over 72 ranks, 288 slots)."""
    return par.ep if wide_ep_domains(par, system) > 1 else 0


def _expert_exchange(fp: LLMFootprint, par: Parallel, allreduces: int) -> dict:
    """How the experts' all-to-alls run: under TP + EP, one with every token per TP all-reduce (the historical
    charge); under DP attention, a dispatch and a combine per MoE layer of each rank's own tokens."""
    if not (fp.is_moe and par.ep > 1):
        return {}
    if par.attention_dp:
        return {"moe_exchanges": max(1, 2 * fp.moe_layers // par.pp), "exchange_share": 1.0 / par.tp,
                "schedulers": par.tp}
    return {"moe_exchanges": allreduces}


def drafter_precision(spec: Speculation, precision: str) -> str:
    """EAGLE heads are published 16-bit whatever the target's precision; a draft model or MTP layers are
    served as the target is."""
    return "bf16" if spec.method == "eagle" and precision in ("fp8", "int8", "int4", "fp4", "mxfp4") else precision


def _speculative_parts(spec: Speculation | None, par: Parallel, precision: str, device: Accelerator,
                       family: DeviceFamily, system: System, engine: EngineParams) -> dict:
    """StepCost's speculative fields: the drafter runs on the replica's TP group, inside the engine's step (no
    host overhead of its own)."""
    if spec is None:
        return {}
    quiet = replace(engine, step_overhead_s=0.0, step_overhead_per_seq_s=0.0)
    drafter = step_cost(spec.drafter, par=replace(par, pp=1), precision=drafter_precision(spec, precision), device=device,
                        family=family, system=system, engine=quiet)
    return {"decode_tokens_per_seq": spec.verify_tokens, "drafter": drafter, "draft_passes": spec.draft_tokens,
            "draft_branches": spec.branches}


@dataclass(frozen=True)
class ServingFeatures:
    """What a workload turns on beyond plain requests.

    Prefix caching: `cached_tokens` of each prompt are found in the cache (the engine's prefix-cache hit rate
    x the prompt), so only the rest is prefilled, attending over the cached ones; `shared_prefix_tokens` of
    them are one prefix every request shares (a system prompt, a common document), whose KV blocks the
    running sequences share (reference-counted) and the replica holds once. Speculative decoding: see
    `perf.speculative`."""

    cached_tokens: int = 0
    shared_prefix_tokens: int = 0
    speculation: Speculation | None = None
    # Disaggregated decode: the whole prompt's cache arrives from the prefill pool, so nothing is prefilled here;
    # with the first token too where the prefill side samples it, so none waits for a step here either.
    kv_transferred: bool = False
    first_token_sent: bool = False

    def in_blocks(self, block_tokens: int) -> "ServingFeatures":
        """Engines cache whole KV blocks only (vLLM hashes full blocks, kv_cache_utils.py; SGLang's page is one
        token): a hit is rounded down to the block."""
        if block_tokens <= 1 or not self.cached_tokens or self.kv_transferred:
            return self
        return replace(self, cached_tokens=self.cached_tokens // block_tokens * block_tokens,
                       shared_prefix_tokens=self.shared_prefix_tokens // block_tokens * block_tokens)


NO_FEATURES = ServingFeatures()


@dataclass(frozen=True)
class Latencies:
    """One replica at one offered load. Times in seconds; infinite when the replica cannot keep up."""

    utilization: float
    running_batch: float
    ttft_mean_s: float
    ttft_p50_s: float
    ttft_p90_s: float
    ttft_p99_s: float
    tpot_s: float  # mean time per output token after the first
    tpot_p99_s: float  # p99 over requests of each request's mean TPOT
    e2e_mean_s: float
    e2e_p99_s: float
    queueing_p99_s: float
    tokens_per_s: float

    @classmethod
    def overloaded(cls, rho: float, batch: float) -> "Latencies":
        inf = math.inf
        return cls(rho, batch, inf, inf, inf, inf, inf, inf, inf, inf, inf, inf)


@dataclass(frozen=True)
class ReplicaProfile:
    """What one replica does, independent of the load: its step cost, caps and memory."""

    cost: StepCost
    engine: EngineParams
    input_tokens: int
    output_tokens: int
    batch: int  # the engine's cap on running sequences (max_num_seqs), as configured
    max_batch_fit: int  # sequences whose KV cache fits (engine memory share, paging rule)
    kv_capacity_tokens: float
    memory: MemoryBreakdown
    capacity_bytes: float
    prefill_s: float  # one prompt alone on an idle replica (model time, no request overhead)
    breakdown: dict[str, float] = field(default_factory=dict)
    # A measured single-sequence decode step (edge runtimes): decode steps scale from it by the model's ratio.
    measured_tpot_s: float | None = None
    features: ServingFeatures = NO_FEATURES
    # Load states by running batch B (see `_state`) and uncapped metric crossings (see `max_rate`), shared by
    # profiles that differ only in the batch cap.
    states: dict = field(default_factory=dict, repr=False, compare=False)

    # ---- the load model, parametrised by the number of decoding sequences B

    @cached_property
    def tokens_per_step(self) -> float:
        """Output tokens a decoding sequence gains per step (speculative decoding's accept length, else 1)."""
        spec = self.features.speculation
        return 1.0 if spec is None else spec.tokens_per_step

    @cached_property
    def decode_steps(self) -> float:
        """Steps a request decodes for after its first token."""
        return max(1, self.output_tokens - 1) / self.tokens_per_step

    @cached_property
    def accept_cv(self) -> float:
        """Coefficient of variation of the tokens one step yields a sequence."""
        spec = self.features.speculation
        return 0.0 if spec is None else math.sqrt(spec.tokens_variance) / spec.tokens_per_step

    @cached_property
    def queries_per_seq(self) -> int:
        """Step tokens a decoding sequence takes: one, or the verified token and its drafts."""
        return self.cost.decode_tokens_per_seq

    @cached_property
    def prefill_tokens(self) -> int:
        """Prompt tokens a request prefills: what the prefix cache does not hold."""
        return self.input_tokens - self.features.cached_tokens

    def prefill_pairs(self, chunk: float) -> float:
        """(query, key) pairs of `chunk` prompt tokens, on average over a prompt: each attends over the cached
        prefix and half the new tokens."""
        return chunk * (self.features.cached_tokens + self.prefill_tokens / 2.0)

    @cached_property
    def context_per_seq(self) -> float:
        return self.input_tokens + self.output_tokens / 2.0

    @cached_property
    def slots(self) -> int:
        return max(0, min(self.batch, self.max_batch_fit))

    @cached_property
    def max_running(self) -> float:
        """The largest B the replica reaches: slots, and (mixed batching) the step token budget."""
        return self._running_with(self.slots)

    @cached_property
    def uncapped_running(self) -> float:
        """The largest B with every sequence that fits admitted: no batch cap reaches beyond it."""
        return self._running_with(max(0, self.max_batch_fit))

    def _running_with(self, slots: int) -> float:
        b = float(slots)
        if self.engine.mixed_prefill and math.isfinite(self.cost.budget):
            # Per step: q tokens per decoding sequence, and B / decode steps prompts' new tokens.
            b = min(b, self.cost.budget / (self.queries_per_seq + self.prefill_tokens / self.decode_steps))
        return b

    def decode_step_s(self, b: float) -> float:
        """One decode step with `b` sequences at the mean context, no prompt tokens."""
        modelled = self.cost.seconds(b, b * self.context_per_seq)
        if self.measured_tpot_s is None:
            return modelled
        return self.measured_tpot_s * modelled / self.cost.seconds(1.0, self.context_per_seq)

    def _chunk(self, b: float) -> float:
        """Prompt tokens a prefill-carrying step takes: the prompts that arrived during the step before,
        given at least one, E[N | N >= 1] for N ~ Poisson(lambda x TPOT) = Poisson(B / decode steps)."""
        m = b / self.decode_steps
        prompts = m / -math.expm1(-m) if m > 1e-9 else 1.0
        arrivals = self.prefill_tokens * prompts
        room = self.cost.budget - (b * self.queries_per_seq if self.engine.mixed_prefill else 0.0)
        return max(1.0, min(room, arrivals))

    def _with_prefill(self, b: float, chunk: float) -> float:
        pairs = self.prefill_pairs(chunk)
        if self.engine.mixed_prefill:
            return self.cost.seconds(b, b * self.context_per_seq, chunk, pairs)
        return self.cost.seconds(0.0, 0.0, chunk, pairs)

    @staticmethod
    def _per_prompt(s: dict[str, float]) -> float:
        """GPU time one prompt adds to the steps that carry it."""
        return s["delta"] * s["input"] / s["chunk"] if s["chunk"] > 0 else 0.0

    @cached_property
    def _idle_per_prompt(self) -> float:
        return self._per_prompt(self._state(0.0))

    def _queued_per_prompt(self, s: dict[str, float]) -> float:
        """GPU time one prompt of a queue adds. Never below an idle replica's cost: amortising expert reads
        over a busier step (MoE) must not make the queue shorter as the load grows. But prompts that queue are
        prefilled together, so under DP attention they fill every rank of a step and none pays for ranks left
        waiting on another's prompt."""
        per_prompt = max(self._per_prompt(s), self._idle_per_prompt)
        rank_prompt = self.cost.rank_prompt_tokens
        if not rank_prompt:
            return per_prompt
        b = s["b"]
        room = self.cost.budget - (b * self.queries_per_seq if self.engine.mixed_prefill else 0.0)
        chunk = max(1.0, min(room, self.cost.schedulers * rank_prompt / self.cost.pp))
        filled = self._with_prefill(b, chunk) - (s["t_dec"] if self.engine.mixed_prefill else 0.0)
        return min(per_prompt, filled * s["input"] / chunk)

    def _state(self, b: float) -> dict[str, float]:
        # Rate searches of several limits visit the same batches (the scan grid, the saturation point), and
        # a state does not depend on the batch cap: each is computed once per step cost.
        known = self.states.get(b)
        if known is None:
            known = self.states[b] = self._compute_state(b)
        return known

    def _compute_state(self, b: float) -> dict[str, float]:
        i, d = self.prefill_tokens, self.decode_steps
        t_dec = self.decode_step_s(max(b, 1e-6))
        chunk = self._chunk(b)
        t_pre = self._with_prefill(b, chunk)
        delta = t_pre - t_dec if self.engine.mixed_prefill else t_pre
        share = min(1.0, b * i / (d * chunk))  # fraction of steps carrying a prefill chunk
        step = t_dec + share * delta
        lam = b / (d * step) if step > 0 else 0.0
        return {"b": b, "t_dec": t_dec, "t_pre": t_pre, "delta": delta, "share": share, "step": step,
                "tpot": step / self.tokens_per_step, "lam": lam, "chunk": chunk, "input": float(i)}

    @cached_property
    def saturation_rate(self) -> float:
        b = self.max_running
        return self._state(b)["lam"] if b > 0 else 0.0

    @property
    def service_s(self) -> float:
        """Replica time one request consumes at saturation (1 / the highest sustainable rate)."""
        rate = self.saturation_rate
        return math.inf if rate <= 0 else 1.0 / rate

    @property
    def tpot_s(self) -> float:
        """Time per output token at the full batch cap, before prefill work is co-scheduled (reports, edge)."""
        return self.decode_step_s(max(1.0, self.max_running)) / self.tokens_per_step

    def _batch_for_rate(self, lam: float) -> float:
        lo, hi = 0.0, self.max_running
        for _ in range(40):
            mid = (lo + hi) / 2
            if self._state(mid)["lam"] < lam:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    def at_batch(self, b: float, metric: str | None = None, uncapped: bool = False) -> Latencies:
        """Every latency with B sequences decoding on average (0 <= B < max_running). With `metric`, only
        that one need be right (a rate search asks for one; the others may be left out as NaN). `uncapped`:
        as if the batch cap admitted every sequence that fits, so no request waits for a free slot (what
        every cap of one layout shares; see `max_rate`)."""
        top = self.uncapped_running if uncapped else self.max_running
        if top <= 0 or b >= top:
            return Latencies.overloaded(math.inf if top <= 0 else max(1.0, b / top), b)
        s = self._state(b)
        lam, step, per_token = s["lam"], s["step"], self.tokens_per_step
        i, d = self.prefill_tokens, self.decode_steps
        eng = self.engine
        mixed = eng.mixed_prefill
        rho = b / self.max_running
        busy = 1.0 - math.exp(-b)  # a step is under way when a prompt arrives
        # Steps of two kinds: short decode steps and long ones carrying prompt tokens. A prompt arriving
        # mid-step waits the residual of a length-biased step, E[T^2] / 2E[T].
        t_short, t_long = s["t_dec"], s["t_pre"]
        n_short, n_long = (1.0 - s["share"], s["share"]) if mixed else (1.0, s["share"])
        if b <= 0:
            n_short, n_long = 0.0, 0.0
        mass = n_short * t_short + n_long * t_long
        biased = (n_short * t_short ** 2 + n_long * t_long ** 2) / mass if mass > 0 else 0.0
        residual_mean = busy * biased / 2.0
        # The prompt is prefilled in the next step with every prompt that arrived during the current one.
        room = max(1.0, self.cost.budget - (b * self.queries_per_seq if mixed else 0.0))

        def own_prefill(prompts: float) -> float:
            tokens = i * prompts
            steps = max(1, math.ceil(tokens / room))
            chunk = tokens / steps
            pairs = self.prefill_pairs(chunk)
            one = (self.cost.seconds(b, b * self.context_per_seq, chunk, pairs) if mixed
                   else self.cost.seconds(0.0, 0.0, chunk, pairs))
            return steps * one

        co_arrivals = lam * biased
        prefill_mean = 0.0 if self.features.first_token_sent else own_prefill(1.0 + co_arrivals)
        # Admission: every slot busy (M/M/c, Sakasegawa's approximation of the queue length).
        wait_admit, p_admit = 0.0, 0.0
        if not uncapped:
            c = max(1.0, float(self.slots))
            rho_a = min(b / c, 0.999999)
            lq = rho_a ** math.sqrt(2.0 * (c + 1.0)) / (1.0 - rho_a)
            wait_admit = lq / lam if lam > 0 else 0.0
            p_admit = min(1.0, rho_a ** (math.sqrt(2.0 * (c + 1.0)) - 1.0))
        # Prompts queue for the GPU time their prefill takes beyond a decode step (M/D/1, Pollaczek-
        # Khinchine, with the decode step as the server's vacation): it is the residual above when prompts
        # are rare and the queue of bursts when they are not. Its tail is exponential beyond an atom at zero.
        per_prompt = self._queued_per_prompt(s)
        rho_p = min(lam * per_prompt, 0.999999)
        queue_mean = rho_p * per_prompt / (2.0 * (1.0 - rho_p))
        wait_before = max(residual_mean, busy * t_short / 2.0 + queue_mean)
        base = eng.request_overhead_s
        long_share = n_long * t_long / mass if mass > 0 else 0.0

        def exp_tail(mean: float, p_any: float, q: float) -> float:
            if p_any <= 0 or mean <= 0 or 1.0 - q >= p_any:
                return 0.0
            return mean / p_any * math.log(p_any / (1.0 - q))

        def ttft_q(q: float) -> float:
            residual = _residual_quantile(q, busy, long_share, t_long, t_short)
            waiting = max(residual, exp_tail(queue_mean, rho_p, q)) + exp_tail(wait_admit, p_admit, q)
            # Bursts are in the queue's tail already; the prompt's own step carries the mean co-arrivals.
            return base + waiting + prefill_mean

        ttft_mean = base + wait_before + wait_admit + prefill_mean
        # A request's mean TPOT varies with the prompts co-scheduled during its life (Poisson, about B of
        # them), amplified by 1 / (1 - rho_p) because more prompts make the life longer and so meet more
        # prompts; and with the running batch itself (time-averaged over a lifetime: variance 2B/3).
        tpot_p99 = math.nan
        if metric in (None, "tpot_p99_s", "e2e_p99_s"):
            h = 0.5 * max(b, 1.0)
            lo_b = max(1e-6, b - h)
            slope = (self.decode_step_s(b + h) - self.decode_step_s(lo_b)) / (b + h - lo_b)
            prompts_spread = math.sqrt(b) * per_prompt / d / (1.0 - rho_p)
            # Speculation: a request's accept lengths over its d steps average out as 1 / sqrt(d).
            accept_spread = step * self.accept_cv / math.sqrt(d)
            spread = math.sqrt(prompts_spread ** 2 + slope ** 2 * 2.0 * b / 3.0 + accept_spread ** 2)
            tpot_p99 = (step + Z99 * spread) / per_token
        ttft_p99 = ttft_q(0.99)
        everything = metric is None
        return Latencies(
            utilization=rho, running_batch=b, ttft_mean_s=ttft_mean,
            ttft_p50_s=ttft_q(0.5) if everything else math.nan, ttft_p90_s=ttft_q(0.9) if everything else math.nan,
            ttft_p99_s=ttft_p99, tpot_s=step / per_token, tpot_p99_s=tpot_p99, e2e_mean_s=ttft_mean + d * step,
            e2e_p99_s=ttft_p99 + d * per_token * tpot_p99,
            queueing_p99_s=max(0.0, ttft_p99 - base - own_prefill(1.0)) if everything else math.nan,
            tokens_per_s=lam * self.output_tokens)


def _residual_quantile(q: float, busy: float, long_share: float, t_long: float, t_short: float) -> float:
    """Quantile of the time left in the step under way when a prompt arrives: with probability `busy` a step
    runs, long (share `long_share` of the time) or short, and the time left is uniform over it:
    P(R > r) = busy x [long_share (1 - r/t_long)+ + (1 - long_share)(1 - r/t_short)+]."""
    tail = 1.0 - q
    if busy <= tail or t_long <= 0:
        return 0.0
    if t_short >= t_long or long_share >= 1.0:
        return t_long * (1.0 - tail / busy)
    beyond_short = busy * long_share * (1.0 - t_short / t_long)  # P(R > t_short)
    if beyond_short >= tail:
        return t_long * (1.0 - tail / (busy * long_share))
    rate = long_share / t_long + (1.0 - long_share) / max(t_short, 1e-12)
    return (1.0 - tail / busy) / rate


def latencies_at(profile: ReplicaProfile, lam: float) -> Latencies:
    """Latencies of one replica offered `lam` requests/s (see the module docstring)."""
    sat = profile.saturation_rate
    if sat <= 0 or lam >= sat:
        return Latencies.overloaded(math.inf if sat <= 0 else lam / sat, profile.max_running)
    if lam <= 0:
        return profile.at_batch(0.0)
    return profile.at_batch(profile._batch_for_rate(lam))


SCAN_POINTS = 6
RATE_METRICS = ("utilization", "ttft_p99_s", "ttft_mean_s", "tpot_s", "tpot_p99_s", "e2e_p99_s", "e2e_mean_s")


def max_rate(profile: ReplicaProfile, metric: str, limit: float) -> float:
    """Largest per-replica request rate at which `metric` stays within `limit` (0 when none does).

    Latencies grow with the load (the running batch B), up to wiggles of a fraction of a percent where an
    approximation's terms trade against each other; so the answer is the first B where the metric crosses
    the limit, to 1e-6 of the batch range, far below the solver's 1e-4 demand granularity. Utilisation is
    the share of the saturation rate.

    A layout is searched at several batch caps, and a cap changes a latency only by the wait for a free
    slot (admission) and by where the replica saturates. So the crossing is found once per step cost with
    every sequence that fits admitted (`_first_crossing`, kept with the shared load states); a cap's own
    crossing lies at or below it and is narrowed from there.
    """
    sat = profile.saturation_rate
    if metric == "utilization":
        return min(limit, 1.0) * sat
    if metric not in RATE_METRICS:
        raise ValueError(f"unknown serving metric {metric}")
    top = profile.max_running
    if sat <= 0 or top <= 0:
        return 0.0
    # A table holds one profile per offering of a shape, and the explainer re-rates them all.
    answer_key = ("rate", metric, limit, profile.slots)
    known = profile.states.get(answer_key)
    if known is None:
        known = profile.states[answer_key] = _max_rate_searched(profile, metric, limit)
    return known


def _max_rate_searched(profile: ReplicaProfile, metric: str, limit: float) -> float:
    top = profile.max_running
    tol = 1e-6 * top
    # The uncapped metric's first crossing of each limit asked so far (the explainer and the Pareto front
    # move one limit step by step): it grows with the limit, so known crossings bracket a new one.
    crossings = profile.states.setdefault(("uncapped crossings", metric), {})
    uncapped = _metric_at(profile, metric, uncapped=True)
    free = crossings.get(limit)
    if free is None and uncapped(top - tol) <= limit:
        free = math.inf  # within the limit up to this cap (latencies grow with load): no need to find where
    elif free is None:
        below = max((b for lim, b in crossings.items() if lim < limit), default=0.0)
        above = min((b for lim, b in crossings.items() if lim > limit), default=None)
        # To a millionth of a sequence, which is 1e-6 of the smallest cap's range too.
        free = crossings[limit] = _first_crossing(uncapped, limit, profile.uncapped_running, tol=1e-6,
                                                  start=below, end=above)
    if free >= top - tol:
        if metric in SLOT_FREE_METRICS:
            return profile._state(top - tol)["lam"]
        # Below the limit all the way uncapped: only the slot wait, growing towards the cap, crosses it. Caps
        # are searched one after another and fill to about the same share where it does: start from there.
        share_key = ("filled share at the slot-wait crossing", metric)
        b = _crossing_near(_metric_at(profile, metric), limit, top, profile.states.get(share_key, 0.9), tol)
        if b > 0:
            profile.states[share_key] = b / top
    elif metric in SLOT_FREE_METRICS:
        b = free
    else:
        b = _crossing_below(_metric_at(profile, metric), limit, free, tol)
    return profile._state(b)["lam"]


# Metrics a batch cap changes only by where the replica saturates (no term waits for a slot).
SLOT_FREE_METRICS = ("tpot_s", "tpot_p99_s")


def _metric_at(profile: ReplicaProfile, metric: str, uncapped: bool = False):
    top = profile.uncapped_running if uncapped else profile.max_running
    if metric == "tpot_s":
        def value(b: float) -> float:
            return profile._state(b)["tpot"] if b < top else math.inf
    else:
        def value(b: float) -> float:
            return getattr(profile.at_batch(b, metric, uncapped), metric)
    return value


def _first_crossing(value, limit: float, top: float, tol: float | None = None, start: float = 0.0,
                    end: float | None = None) -> float:
    """The first B in [0, top) where `value` exceeds `limit` (top when none does, 0 when B = 0 does): a coarse
    scan finds the first grid cell that crosses, a safeguarded regula falsi (Illinois) narrows it to `tol`
    (1e-6 of the range unless given). `start`: a B known to be before the first crossing (a lower limit's
    crossing); `end`: one known to be after it (a higher limit's), which saves the scan."""
    if start <= 0.0 and value(0.0) > limit:
        return 0.0
    lo, hi = start, top
    if end is not None and value(end) > limit:
        hi = end
    else:
        for k in range(1, SCAN_POINTS):
            b = start + (top - start) * k / SCAN_POINTS
            if value(b) > limit:
                hi = b
                break
            lo = b
    return _illinois(lambda b: value(b) - limit, lo, hi, value(lo) - limit,
                     value(hi) - limit if hi < top else math.inf, 1e-6 * top if tol is None else tol)


def _crossing_below(value, limit: float, above: float, tol: float) -> float:
    """The crossing at or below `above`, where the uncapped metric crosses: the slot wait adds to the metric,
    so the cap's crossing is bracketed by stepping down from there (a little, in the common case of a cap
    the load never fills)."""
    hi, g_hi = above, value(above) - limit
    if g_hi <= 0:
        return above
    for step in (1e-4, 1e-2, 0.1, 0.5, 1.0):
        lo = above * (1.0 - step)
        g_lo = value(lo) - limit
        if g_lo <= 0:
            return _illinois(lambda b: value(b) - limit, lo, hi, g_lo, g_hi, tol)
        hi, g_hi = lo, g_lo
    return 0.0


def _crossing_near(value, limit: float, top: float, share: float, tol: float) -> float:
    """The crossing of a metric that grows with B on [0, top) from below the limit at B = 0 (where no request
    waits for a slot) to infinity at top, bracketed outwards from `share` x top (a small step, then tenfold
    ones). The slot wait grows about as B / (top - B) (a queue's rho / (1 - rho)), so the root is sought in
    u = B / (top - B), where the metric is nearly straight."""
    def excess(u: float) -> float:
        return value(top * u / (1.0 + u)) - limit

    guess = min(max(share, 1e-3), 1.0 - 1e-3)
    u = guess / (1.0 - guess)
    g = excess(u)
    if g <= 0:
        lo, g_lo, hi, g_hi = u, g, math.inf, math.inf
        for factor in (1.05, 10.0, 10.0, 10.0):
            trial = lo * factor
            g_t = excess(trial)
            if g_t > 0:
                hi, g_hi = trial, g_t
                break
            lo, g_lo = trial, g_t
    else:
        lo, g_lo, hi, g_hi = 0.0, None, u, g
        for factor in (1 / 1.05, 0.1, 0.1, 0.1, 0.1, 0.1):
            trial = hi * factor
            g_t = excess(trial)
            if g_t <= 0:
                lo, g_lo = trial, g_t
                break
            hi, g_hi = trial, g_t
        if g_lo is None:
            g_lo = excess(0.0)
    if not math.isfinite(hi):  # within the limit a thousand times deeper into the queue: bisect towards the cap
        return _illinois(lambda b: value(b) - limit, top * lo / (1.0 + lo), top, g_lo, math.inf, tol)
    # tol in B is tol / top x (1 + u)^2 in u, never less than tol / top.
    root = _illinois(excess, lo, hi, g_lo, g_hi, tol / top)
    return top * root / (1.0 + root)


def _illinois(excess, lo: float, hi: float, g_lo: float, g_hi: float, tol: float) -> float:
    """The root of an increasing `excess` in [lo, hi] (excess(lo) <= 0 < excess(hi)), to `tol`."""
    side = 0
    for _ in range(60):
        if hi - lo <= tol:
            break
        if math.isfinite(g_hi) and g_hi > g_lo:
            mid = lo + (hi - lo) * (-g_lo) / (g_hi - g_lo)
            mid = min(max(mid, lo + 1e-3 * (hi - lo)), hi - 1e-3 * (hi - lo))
        else:
            mid = (lo + hi) / 2
        g_mid = excess(mid)
        if g_mid <= 0:
            lo, g_lo = mid, g_mid
            if side == -1 and math.isfinite(g_hi):
                g_hi /= 2  # Illinois: keep the stale end from stalling the interval
            side = -1
        else:
            hi, g_hi = mid, g_mid
            if side == 1:
                g_lo /= 2
            side = 1
    return lo


def replica_profile(fp: LLMFootprint, *, input_tokens: int, output_tokens: int, par: Parallel, precision: str,
                    device: Accelerator, family: DeviceFamily, system: System,
                    engine: EngineParams | None = None,
                    shared_states: dict | None = None, features: ServingFeatures = NO_FEATURES) -> ReplicaProfile:
    """`shared_states`: a dict kept by a caller that profiles one layout at several batch caps (and nothing
    else changed), so that what does not depend on the cap (the step cost, the KV capacity, the load states)
    is worked out once per step token budget, its key."""
    engine = engine or EngineParams.bare()
    features = features.in_blocks(engine.kv_block_tokens)
    batch = par.micro_batch
    budget = engine.step_budget(input_tokens, batch)
    fixed = None if shared_states is None else shared_states.get(budget)
    if fixed is None:
        fixed = _cap_free_parts(fp, input_tokens, output_tokens, par, precision, device, family, system, engine,
                                features)
        if shared_states is not None:
            shared_states[budget] = fixed
    cost, weights_dev, kv_tok_dev, framework, kv_tokens, held, max_batch_fit, prefill_alone, states = fixed
    capacity = device.memory_bytes
    kv_in_use = min(batch, max_batch_fit) * held * kv_tok_dev
    memory = MemoryBreakdown(weights=weights_dev, kv_cache=kv_in_use, framework=framework)
    profile = ReplicaProfile(cost=cost, engine=engine, input_tokens=input_tokens, output_tokens=output_tokens,
                             batch=batch, max_batch_fit=max_batch_fit, kv_capacity_tokens=kv_tokens, memory=memory,
                             capacity_bytes=capacity, prefill_s=prefill_alone, states=states, features=features)
    b = max(1.0, profile.max_running)
    parts = cost.stage_parts(b / par.pp, b * profile.context_per_seq / par.pp, 0.0, 0.0)
    breakdown = {
        "prefill": prefill_alone,
        "decode_linear": parts["linear"] * par.pp,
        "decode_kv": parts["kv"] * par.pp,
        "decode_comm": parts["comm"] * par.pp,
        "decode_layer_overhead": parts["layers"] * par.pp,
        "decode_host_overhead": engine.step_overhead_s + engine.step_overhead_per_seq_s * b,
        "request_overhead": engine.request_overhead_s,
    }
    if cost.drafter is not None:
        breakdown["decode_draft"] = cost.draft_seconds(b, b * profile.context_per_seq)
    return replace(profile, breakdown=breakdown)


def _cap_free_parts(fp: LLMFootprint, input_tokens: int, output_tokens: int, par: Parallel, precision: str,
                    device: Accelerator, family: DeviceFamily, system: System, engine: EngineParams,
                    features: ServingFeatures) -> tuple:
    """The step cost, weights, KV bytes and capacity, one prompt alone, and an empty dict for the load states:
    what the batch cap leaves as is."""
    spec = features.speculation
    context = input_tokens + output_tokens / 2.0
    cost = step_cost(fp, par=par, precision=precision, device=device, family=family, system=system, engine=engine,
                     input_tokens=input_tokens, speculation=spec, context_per_seq=context)
    weights_dev = weight_bytes_per_device(fp, precision, par, engine)
    if wide_ep_redundant_experts(par, system):  # each rank holds one more expert, EPLB's copy of a busy one
        weights_dev += fp.expert_params_total / fp.experts * BYTES_PER_ELEMENT[precision] / par.pp
    # KV in full-cache token equivalents at the sequences' mean context (local-attention layers keep less).
    kv_tok_dev = kv_bytes_per_token_per_device(fp, precision, par, engine) * fp.kv_share(context)
    if spec is not None:
        # The drafter runs on the first stage's ranks (split over TP; under DP attention a dense drafter is whole
        # on each rank, MTP layers mostly experts split over them), its weights and a KV cache of every sequence's
        # context beside the target's: that stage's memory binds.
        whole = par.attention_dp and spec.method != "mtp"
        weights_dev += spec.extra_params * BYTES_PER_ELEMENT[drafter_precision(spec, precision)] / (1 if whole else par.tp)
        kv_tok_dev += kv_bytes_per_token_per_device(spec.drafter, precision, replace(par, pp=1), engine)
    framework = engine.runtime_overhead_bytes if engine.runtime_overhead_bytes is not None else (
        family.framework_overhead_gib * GIB)
    capacity = device.memory_bytes
    if engine.memory_fraction_of == "total":
        kv_bytes = engine.memory_fraction * capacity - weights_dev - framework
    elif engine.memory_fraction_of == "free_after_weights":
        kv_bytes = engine.memory_fraction * (capacity - weights_dev - framework)
    else:  # the reserve already holds activations, graphs and the runtime
        kv_bytes = capacity - engine.reserved_bytes - weights_dev
    shared = features.shared_prefix_tokens
    # The shared prefix's blocks are held once, whoever runs.
    kv_tokens = max(0.0, kv_bytes / kv_tok_dev - shared) if kv_bytes > 0 else 0.0
    block = engine.kv_block_tokens
    own_input = input_tokens - shared
    if engine.kv_admission == "reserve_max":
        held = math.ceil((own_input + output_tokens) / block) * block
    else:
        # Paged: a decoding sequence holds its prompt and, on average, half its output, plus half a block.
        held = own_input + output_tokens / 2.0 + (block - 1) / 2.0
    max_batch_fit = int(kv_tokens // held) if held > 0 else 0
    new_tokens = input_tokens - features.cached_tokens
    alone_chunk = max(1.0, min(float(new_tokens), cost.budget))
    alone_steps = math.ceil(new_tokens / alone_chunk)
    alone_pairs = alone_chunk * (features.cached_tokens + new_tokens / 2.0)
    prefill_alone = alone_steps * cost.seconds(0.0, 0.0, alone_chunk, alone_pairs)
    return cost, weights_dev, kv_tok_dev, framework, kv_tokens, held, max_batch_fit, prefill_alone, {}


def predict_serving(fp: LLMFootprint, *, requests_per_s: float, input_tokens: int, output_tokens: int,
                    par: Parallel, precision: str, device: Accelerator, family: DeviceFamily,
                    system: System, engine: EngineParams | None = None,
                    slo_limits: dict[str, float] | None = None, features: ServingFeatures = NO_FEATURES) -> Prediction:
    profile = replica_profile(fp, input_tokens=input_tokens, output_tokens=output_tokens, par=par,
                              precision=precision, device=device, family=family, system=system, engine=engine,
                              features=features)
    return serving_prediction(profile, requests_per_s, par, slo_limits)


def serving_prediction(profile: ReplicaProfile, requests_per_s: float, par: Parallel,
                       slo_limits: dict[str, float] | None = None) -> Prediction:
    """`slo_limits`: closed-form metric -> limit (s), for the highest per-replica rate within them all."""
    replicas = par.dp
    lat = latencies_at(profile, requests_per_s / replicas)
    stable = lat.utilization < 1.0
    pred = Prediction(
        kind="serving",
        devices=par.devices,
        memory=profile.memory,
        memory_capacity_bytes=profile.capacity_bytes,
        breakdown={**profile.breakdown, "queueing_p99": lat.queueing_p99_s},
        ttft_p99_s=lat.ttft_p99_s,
        ttft_mean_s=lat.ttft_mean_s,
        ttft_p50_s=lat.ttft_p50_s,
        ttft_p90_s=lat.ttft_p90_s,
        tpot_s=lat.tpot_s,
        tpot_p99_s=lat.tpot_p99_s,
        e2e_p99_s=lat.e2e_p99_s,
        e2e_mean_s=lat.e2e_mean_s,
        prefill_s=profile.prefill_s,
        utilization=lat.utilization,
        running_batch=lat.running_batch,
        max_batch_fit=profile.max_batch_fit,
        max_requests_per_s=min([profile.saturation_rate]
                               + [max_rate(profile, metric, limit) for metric, limit in (slo_limits or {}).items()]),
        engine=profile.engine.id,
        cached_prompt_tokens=0 if profile.features.kv_transferred else profile.features.cached_tokens,
        tokens_per_step=profile.tokens_per_step if profile.features.speculation is not None else None,
        tokens_per_s=requests_per_s * profile.output_tokens if stable
        else replicas * profile.saturation_rate * profile.output_tokens,
    )
    if not stable:
        pred.notes.append(f"overloaded: each replica would need {lat.utilization:.2f}x its capacity; "
                          "add replicas or raise the batch cap")
    if profile.batch > profile.max_batch_fit:
        pred.notes.append(f"batch cap {profile.batch} exceeds the {profile.max_batch_fit} sequences whose KV cache "
                          "fits: the engine runs at most that many")
    return pred
