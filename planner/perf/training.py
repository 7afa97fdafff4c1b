"""Training step time, memory per device, MFU and HFU for Megatron-style 3D (+expert) parallelism.

Step time (1F1B pipeline, Narayanan et al. 2021):
    t_stage_mb = compute_mb + tp_comm_mb + pp_p2p_mb + ep_all_to_all_mb      (one micro-batch on one stage)
    t_pipeline = (m + (p - 1)/v) * t_stage_mb    bubble share (p-1)/(v*m+p-1); v = interleaved chunks
    t_step     = t_pipeline + exposed DP gradient sync + optimizer update
FLOPs per token: forward = 2*active_params + 4*L*s*attn_dim (QK^T and AV over the full sequence, the
convention of Megatron-LM and PaLM's MFU); training = 3 x forward; recomputation adds one forward of the
layers (full) or of the attention core (selective); MFU counts model FLOPs only, HFU counts recompute.
Memory per device (Korthikanti et al. 2022; Rajbhandari et al. 2020 for ZeRO): bf16 weights (2 B/param),
fp32 main gradients (4 B/param), Adam in fp32 (12 B/param), activations per layer
s*b*h*(C/t + 5*a*s/(h*t)) with sequence parallelism, times the micro-batches the first stage holds.

Data parallelism (`sharded_dp_times`): ZeRO-0/1/2 reduce the gradients once per step (an all-reduce's
bytes: reduce-scatter plus all-gather for the sharded optimizer), bucket by bucket behind the backward
pass. ZeRO-3 and FSDP instead all-gather each layer's bf16 parameters before its forward and again
before its backward, and reduce-scatter its gradients after, in every micro-batch (Rajbhandari et al.
2020; Zhao et al. 2023). Prefetching hides a layer's collective behind the previous layer's compute, so
each layer costs the longer of the two and the first gather (and last reduce-scatter) is never hidden:
with one or two sequences per device a large model becomes communication-bound. Hybrid sharding gathers
within its shard group and all-reduces the sharded gradients across groups once per step.
"""

from __future__ import annotations

from planner.catalog.schema import Accelerator, DeviceFamily, Framework, System
from planner.catalog.topology import group_link
from planner.perf.comm import all_gather_s, all_reduce_s, all_to_all_s, p2p_s, reduce_scatter_s
from planner.perf.shapes import LLMFootprint, model_split_problems
from planner.perf.roofline import achievable_flops, peak_flops
from planner.perf.adapters import NF4_BYTES_PER_PARAM, adapter_costs, adapter_params
from planner.perf.types import Adapter, MemoryBreakdown, Parallel, Prediction
from planner.units import GIB

# Megatron-LM keeps bf16 weights, fp32 main gradients and fp32 Adam state (master weights, m, v).
WEIGHT_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 2.0, "fp32": 4.0}
GRAD_BYTES = 4.0
# ZeRO-3/FSDP gather the 16-bit compute copy of the parameters; gradients are reduced at the
# framework's grad_reduce_bytes (catalogs/frameworks.yaml).
GATHER_BYTES = 2.0
OPTIMIZER_BYTES = 12.0
ACTIVATION_BYTES = 2.0
# Korthikanti et al. 2022, Eq. 2: 34 bytes per (token x hidden) per layer for a 4h MLP; 10 of them belong
# to attention/layer norms, 24 scale with the MLP width (generalised here to the real ffn and gating).
ATTN_ACT_COEFF = 10.0
MLP_ACT_COEFF_PER_4H = 24.0
# The non-GEMM kernels (norms, residual adds, activation functions, rotary, casts) are memory-bound: each
# activation byte of Korthikanti's count is written in the forward, read back in the backward and has
# its gradient written and read, about three passes over HBM (a recomputed forward adds one). This is
# what makes small models and fast-FLOP devices (H100 vs A100, FP8 vs BF16) reach a lower MFU.
ELEMENTWISE_PASSES = 3.0


def structural_problems(fp: LLMFootprint, global_batch_seqs: int, par: Parallel, system: System,
                        domain: int) -> list[str]:
    """Why a layout cannot run at all (independent of any user limit)."""
    problems = model_split_problems(fp, par.tp, par.pp, domain, system.id)
    if par.ep > 1 and (not fp.is_moe or fp.experts % par.ep or (par.dp * par.cp) % par.ep):
        problems.append(f"ep={par.ep} must divide both the experts and dp x cp (dense models take ep=1)")
    if par.virtual_stages > 1 and (par.pp == 1 or par.pp * par.virtual_stages > fp.layers):
        problems.append(f"virtual_stages={par.virtual_stages} needs pp > 1 and at least one layer per model chunk")
    if global_batch_seqs % (par.dp * par.micro_batch):
        problems.append(f"global batch of {global_batch_seqs} sequences is not divisible by dp x micro-batch "
                        f"= {par.dp} x {par.micro_batch}")
    return problems


def stage_layers(layers: int, par: Parallel) -> int:
    """Layers on the busiest stage: stages need not be equal (Llama 3 405B runs 126 layers on 16 stages),
    and the slowest one sets the pipeline's pace."""
    chunks = par.pp * par.virtual_stages
    return -(-layers // chunks) * par.virtual_stages


def training_flops_per_token(fp: LLMFootprint, seq_len: int, recompute: str,
                             adapter: Adapter | None = None) -> tuple[float, float]:
    """(model FLOPs, hardware FLOPs) per trained token."""
    model, gemm, attention = training_flops_split(fp, seq_len, recompute, adapter)
    return model, gemm + attention


def training_flops_split(fp: LLMFootprint, seq_len: int, recompute: str,
                         adapter: Adapter | None = None) -> tuple[float, float, float]:
    """(model FLOPs, hardware FLOPs in weight GEMMs, hardware FLOPs in the attention core) per token.

    The split matters for FP8: recipes (Transformer Engine) run the weight GEMMs in FP8 but the attention
    core (QK^T, softmax, AV) in 16-bit. A frozen base (LoRA) skips its weight gradients: 2 + 2 instead of
    2 + 4 FLOPs per parameter, plus 6 per adapter parameter.
    """
    attention = fp.attention_flops_per_token(seq_len)
    gemm = 2.0 * fp.active_params
    if adapter is None:
        trained_gemm = 3.0 * gemm
    else:
        trained_gemm = 2.0 * gemm + 6.0 * adapter_params(fp, adapter) * _active_share(fp)
    model = trained_gemm + 3.0 * attention
    if recompute == "full":
        # Every transformer layer runs its forward again; the LM head is not recomputed.
        lm_head = 2.0 * fp.vocab * fp.hidden
        return model, trained_gemm + gemm - lm_head, 4.0 * attention
    if recompute == "selective":
        return model, trained_gemm, 4.0 * attention
    return model, trained_gemm, 3.0 * attention


def _active_share(fp: LLMFootprint) -> float:
    """Share of a MoE's expert adapters a token passes through (1 for dense models)."""
    return (fp.top_k / fp.experts) if fp.is_moe else 1.0


def training_memory(fp: LLMFootprint, seq_len: int, par: Parallel, precision: str, micro_batches: int,
                    family: DeviceFamily, adapter: Adapter | None = None) -> MemoryBreakdown:
    dense_params = fp.total_params - fp.expert_params_total
    params_dev = dense_params / (par.tp * par.pp) + fp.expert_params_total / (par.ep * par.tp * par.pp)
    if adapter is None:
        weights = params_dev * WEIGHT_BYTES[precision]
        trained_dev = params_dev
    else:
        # The frozen base as stored (bf16 or NF4), plus the bf16 adapters that train.
        costs = adapter_costs(fp, adapter)
        trained_dev = costs.trainable_params / (par.tp * par.pp)
        weights = params_dev * costs.base_weight_bytes_per_param + trained_dev * WEIGHT_BYTES["bf16"]
    grads = trained_dev * GRAD_BYTES
    optimizer = trained_dev * OPTIMIZER_BYTES
    shard = par.shard_size
    if par.zero_stage >= 1:
        optimizer /= shard
    if par.zero_stage >= 2:
        grads /= shard
    if par.zero_stage >= 3:
        # The shard, plus the layer being computed and the one prefetched, unsharded.
        weights = weights / shard + 2 * GATHER_BYTES * params_dev / max(1, stage_layers(fp.layers, par))

    s, b, h, t = seq_len / par.cp, par.micro_batch, fp.hidden, par.tp
    coeff = activation_bytes_per_hidden(fp)
    if par.recompute == "full":
        per_layer = ACTIVATION_BYTES * s * b * h / t
    else:
        # FlashAttention never stores the s x s score matrix (Korthikanti's 5*a*s/h term), so keeping all
        # activations costs what selective recomputation keeps.
        per_layer = s * b * h * coeff / t
    in_flight = min(micro_batches, par.pp)
    activations = per_layer * stage_layers(fp.layers, par) * in_flight
    # fp32 logits of the last stage (vocab-parallel cross-entropy shards them over TP).
    activations += 4.0 * s * b * fp.vocab / t
    return MemoryBreakdown(weights=weights, gradients=grads, optimizer=optimizer, activations=activations,
                           framework=family.framework_overhead_gib * GIB)


def predict_training(fp: LLMFootprint, *, tokens: float, seq_len: int, global_batch_seqs: int, par: Parallel,
                     precision: str, device: Accelerator, family: DeviceFamily, system: System,
                     framework: Framework | None = None, adapter: Adapter | None = None,
                     memory: MemoryBreakdown | None = None) -> Prediction:
    """`framework` None: no TP overlap and fp32 gradient reduction (Megatron-LM's command-line defaults);
    `adapter`: LoRA/QLoRA on a frozen base (planner.perf.adapters); `memory`: this very layout's
    `training_memory`, when the caller has it already (a search checks the fit before predicting)."""
    peak = peak_flops(device, precision)
    rate = achievable_flops(device, family, precision)
    m = global_batch_seqs // (par.dp * par.micro_batch)
    n_devices = par.devices
    eta_comm = family.collective_bw_efficiency.value
    overlap = family.comm_overlap.value

    model_per_token, gemm_per_token, attn_per_token = training_flops_split(fp, seq_len, par.recompute, adapter)
    hw_per_token = gemm_per_token + attn_per_token
    tokens_step = global_batch_seqs * seq_len
    model_flops_step = model_per_token * tokens_step
    hw_flops_step = hw_per_token * tokens_step
    # One micro-batch on the busiest stage: its share of the layers, split over tp*cp devices.
    tokens_mb = par.micro_batch * seq_len
    stage_share = stage_layers(fp.layers, par) / fp.layers
    slowdown = gemm_shape_slowdown(fp, par.tp, par.micro_batch * seq_len / par.cp, family)
    attn_eff = family.attention_efficiency or family.matmul_efficiency
    attn_rate = peak_flops(device, "bf16" if precision == "fp8" else precision) * attn_eff.value
    seconds_per_token = (gemm_per_token * slowdown / rate + attn_per_token / attn_rate
                         + elementwise_seconds_per_token(fp, par, device, family))
    dequant_mb = 0.0
    if adapter is not None and adapter_costs(fp, adapter).dequantised and device.memory_bw_gb_per_s:
        # QLoRA expands this stage's NF4 weights to bf16 before each GEMM pass (forward, backward, and
        # the recomputed forward), reading the codes and writing the bf16 copy every micro-batch.
        passes = 3.0 if par.recompute == "full" else 2.0
        stage_params = fp.total_params / (par.tp * par.pp)
        dequant_mb = passes * stage_params * (NF4_BYTES_PER_PARAM + 2.0) / (
            device.memory_bw_gb_per_s * 1e9 * family.memory_bw_efficiency.value)
    compute_mb = seconds_per_token * tokens_mb * stage_share / (par.tp * par.cp)

    # Rank order (Megatron): tp fastest, then cp, then dp, then pp.
    layers_per_stage = stage_layers(fp.layers, par)
    act_msg = par.micro_batch * seq_len / par.cp * fp.hidden * ACTIVATION_BYTES
    tp_link = group_link(system, par.tp, 1, world=par.devices)
    tp_collectives_per_layer = 6 if par.recompute == "full" else 4
    tp_mb = layers_per_stage * tp_collectives_per_layer * all_reduce_s(tp_link, act_msg, eta_comm)
    if framework is not None and framework.tp_comm_overlap:
        tp_mb *= 1.0 - overlap  # split GEMMs hide the collectives behind their own chunks
    reduce_bytes = framework.grad_reduce_bytes if framework is not None else GRAD_BYTES

    cp_mb = 0.0
    if par.cp > 1:
        # Ring attention passes K and V around the cp ring (forward) and their gradients back. Rung while
        # attention blocks compute (Megatron's p2p), only what the family cannot overlap shows; gathered
        # before the attention (torchtitan, Ulysses), all of it does.
        kv_msg = 2 * par.micro_batch * seq_len * fp.kv_elems_per_token_per_layer / 2 * ACTIVATION_BYTES / par.tp
        cp_link = group_link(system, par.cp, par.tp, world=par.devices)
        hidden = overlap if framework is None or framework.cp_comm_overlap else 0.0
        cp_mb = layers_per_stage * 3 * all_gather_s(cp_link, kv_msg, eta_comm) * (1.0 - hidden)

    stride_pp = par.tp * par.cp * par.dp
    pp_link = group_link(system, 2, stride_pp, world=par.devices) if par.pp > 1 else group_link(system, 1)
    # Scatter/gather optimisation: each TP rank sends 1/tp of the activation; forward and backward sends.
    pp_mb = 2 * par.virtual_stages * p2p_s(pp_link, act_msg / par.tp, eta_comm) if par.pp > 1 else 0.0

    ep_mb = 0.0
    if fp.is_moe and par.ep > 1:
        ep_link = group_link(system, par.ep, par.tp * par.cp, world=par.devices)
        ep_msg = act_msg * fp.top_k / par.tp
        ep_mb = layers_per_stage * 4 * all_to_all_s(ep_link, ep_msg, eta_comm)

    t_stage_mb = compute_mb + dequant_mb + tp_mb + cp_mb + pp_mb + ep_mb

    shard_mb, t_dp = sharded_dp_times(fp, par, system, compute_mb, layers_per_stage, eta_comm, reduce_bytes,
                                      adapter)
    # A pipeline keeps each stage's gathered parameters across its micro-batches and reduces the gradients
    # after the last (PyTorch's pipeline schedules with FSDP2; torchtitan does not reshard under PP), so
    # the sharded traffic is paid once per step there, every micro-batch without a pipeline.
    shard_step = shard_mb if par.pp > 1 else 0.0
    if par.pp == 1:
        t_stage_mb += shard_mb
    bubble = (par.pp - 1) * t_stage_mb / par.virtual_stages
    t_pipeline = m * t_stage_mb + bubble
    # Gradient buckets are reduced while backward passes run: all of them without a pipeline, only the
    # last micro-batch's (2/3 of its compute) after a pipeline flush.
    backward_window = 2.0 / 3.0 * compute_mb * (m if par.pp == 1 else 1)
    exposed_dp = t_dp - min(t_dp * overlap, backward_window)

    memory = memory or training_memory(fp, seq_len, par, precision, m, family, adapter)
    t_optimizer = 0.0
    if device.memory_bw_gb_per_s:
        # Adam reads and writes the fp32 state, gradients and the weights it trains once per step.
        trained_weights = memory.weights if adapter is None else memory.gradients / GRAD_BYTES * 2.0
        state_bytes = memory.optimizer + trained_weights + memory.gradients
        t_optimizer = 2 * state_bytes / (device.memory_bw_gb_per_s * 1e9 * family.memory_bw_efficiency.value)

    step = t_pipeline + shard_step + exposed_dp + t_optimizer
    breakdown = {
        "compute": m * compute_mb,
        "dequantize": m * dequant_mb,
        "tp_comm": m * tp_mb,
        "cp_comm": m * cp_mb,
        "pp_comm": m * pp_mb,
        "ep_comm": m * ep_mb,
        "shard_comm_exposed": shard_step or m * shard_mb,
        "bubble": bubble,
        "dp_comm_exposed": exposed_dp,
        "optimizer": t_optimizer,
    }
    tokens_per_s = tokens_step / step
    return Prediction(
        kind="training",
        devices=n_devices,
        memory=memory,
        memory_capacity_bytes=device.memory_gb * 1e9,
        breakdown=breakdown,
        step_time_s=step,
        mfu=model_flops_step / (step * n_devices * peak),
        hfu=hw_flops_step / (step * n_devices * peak),
        time_to_train_s=tokens / tokens_per_s,
        tokens_per_s=tokens_per_s,
    )


def sharded_dp_times(fp: LLMFootprint, par: Parallel, system: System, compute_mb: float, layers: int,
                     eta: float, reduce_bytes: float = GRAD_BYTES,
                     adapter: Adapter | None = None) -> tuple[float, float]:
    """(exposed parameter/gradient traffic per micro-batch, gradient sync per step before overlap).

    ZeRO-3/FSDP: per layer, a forward all-gather hidden behind the previous layer's forward, and a backward
    all-gather plus reduce-scatter behind the previous layer's backward (twice the forward's compute).
    """
    dense = fp.total_params - fp.expert_params_total
    params_dense = dense / (par.tp * par.pp)
    params_expert = fp.expert_params_total / (par.ep * par.tp * par.pp)
    replicas = par.dp * par.cp
    shard = par.shard_size
    gather_bytes = GATHER_BYTES
    grads_dense, grads_expert = params_dense, params_expert  # parameters whose gradients are reduced
    if adapter is not None:
        # Only the adapters have gradients; a sharded frozen base is still gathered, as stored.
        costs = adapter_costs(fp, adapter)
        gather_bytes = costs.base_weight_bytes_per_param
        grads_dense, grads_expert = costs.trainable_params / (par.tp * par.pp), 0.0
    if par.zero_stage < 3 or shard <= 1:
        t = all_reduce_s(group_link(system, replicas, par.tp, world=par.devices), grads_dense * reduce_bytes, eta)
        if fp.is_moe:
            t += all_reduce_s(group_link(system, replicas // par.ep, par.tp * par.cp * par.ep,
                                         world=par.devices),
                              grads_expert * reduce_bytes, eta)
        return 0.0, t
    link = group_link(system, shard, par.tp, world=par.devices)
    gather = all_gather_s(link, (params_dense + params_expert) / max(1, layers) * gather_bytes, eta)
    scatter = reduce_scatter_s(link, (grads_dense + grads_expert) / max(1, layers) * reduce_bytes, eta)
    forward = compute_mb / 3.0 / max(1, layers)
    backward = 2.0 * forward
    exposed = (layers * (max(gather, forward) - forward) + gather
               + layers * (max(gather + scatter, backward) - backward) + scatter)
    t_step = 0.0
    if shard < replicas:
        # Hybrid sharding: each shard's gradients are all-reduced across the groups holding that shard.
        t_step = all_reduce_s(group_link(system, replicas // shard, par.tp * shard, world=par.devices),
                              (grads_dense + grads_expert) / shard * reduce_bytes, eta)
    return exposed, t_step


def gemm_shape_slowdown(fp: LLMFootprint, tp: int, tokens: float, family: DeviceFamily) -> float:
    """How much longer a layer's weight GEMMs take than at the family's large-shape efficiency.

    Each GEMM (QKV, attention output, MLP in, MLP out; M = tokens of the micro-batch, N and K the hidden
    and projection widths with TP's split) reaches d / (d + half) of it, d its smallest dimension; the
    layer's slowdown is their FLOP-weighted time. TP8 on a 2,048-wide model leaves 256-wide shards.
    """
    half = family.gemm_half_dim.value if family.gemm_half_dim else 0.0
    if half <= 0:
        return 1.0
    h = fp.hidden
    qkv = fp.attn_dim + fp.kv_elems_per_token_per_layer
    mlp_in = fp.ffn * (2 if fp.gated else 1)
    # A routed expert multiplies only the tokens sent to it; its FLOPs count once per chosen expert.
    expert_tokens, share = (tokens * fp.top_k / fp.experts, fp.top_k) if fp.is_moe else (tokens, 1)
    gemms = [(tokens, h, qkv / tp, 1), (tokens, fp.attn_dim / tp, h, 1),
             (expert_tokens, h, mlp_in / tp, share), (expert_tokens, fp.ffn / tp, h, share)]
    flops = [k * n * w for _, k, n, w in gemms]
    times = [f * (1.0 + half / max(1.0, min(m, k, n))) for f, (m, k, n, _) in zip(flops, gemms)]
    return sum(times) / sum(flops)


def activation_bytes_per_hidden(fp: LLMFootprint) -> float:
    """Korthikanti's 34 bytes per token x hidden per layer, its MLP part scaled to the real MLP width."""
    mlp_width = fp.ffn * (1.5 if fp.gated else 1.0) * (fp.top_k if fp.is_moe else 1)
    return ATTN_ACT_COEFF + MLP_ACT_COEFF_PER_4H * mlp_width / (4.0 * fp.hidden)


def elementwise_seconds_per_token(fp: LLMFootprint, par: Parallel, device: Accelerator,
                                  family: DeviceFamily) -> float:
    """HBM time of the memory-bound kernels between the GEMMs, per trained token of one device's share
    (sequence parallelism splits them over TP like the GEMMs)."""
    if not device.memory_bw_gb_per_s:
        return 0.0
    passes = ELEMENTWISE_PASSES + (1.0 if par.recompute == "full" else 0.0)
    traffic = passes * activation_bytes_per_hidden(fp) * fp.hidden * fp.layers
    return traffic / (device.memory_bw_gb_per_s * 1e9 * family.memory_bw_efficiency.value)
