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
"""

from __future__ import annotations

from planner.catalog.schema import Accelerator, DeviceFamily, System
from planner.catalog.topology import group_link
from planner.perf.comm import all_gather_s, all_reduce_s, all_to_all_s, p2p_s
from planner.perf.shapes import LLMFootprint, model_split_problems
from planner.perf.roofline import achievable_flops, peak_flops
from planner.perf.types import MemoryBreakdown, Parallel, Prediction
from planner.units import GIB

# Megatron-LM keeps bf16 weights, fp32 main gradients and fp32 Adam state (master weights, m, v).
WEIGHT_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 2.0, "fp32": 4.0}
GRAD_BYTES = 4.0
OPTIMIZER_BYTES = 12.0
ACTIVATION_BYTES = 2.0
# Korthikanti et al. 2022, Eq. 2: 34 bytes per (token x hidden) per layer for a 4h MLP; 10 of them belong
# to attention/layer norms, 24 scale with the MLP width (generalised here to the real ffn and gating).
ATTN_ACT_COEFF = 10.0
MLP_ACT_COEFF_PER_4H = 24.0


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


def training_flops_per_token(fp: LLMFootprint, seq_len: int, recompute: str) -> tuple[float, float]:
    """(model FLOPs, hardware FLOPs) per trained token."""
    model, gemm, attention = training_flops_split(fp, seq_len, recompute)
    return model, gemm + attention


def training_flops_split(fp: LLMFootprint, seq_len: int, recompute: str) -> tuple[float, float, float]:
    """(model FLOPs, hardware FLOPs in weight GEMMs, hardware FLOPs in the attention core) per token.

    The split matters for FP8: recipes (Transformer Engine) run the weight GEMMs in FP8 but the attention
    core (QK^T, softmax, AV) in 16-bit.
    """
    attention = fp.attention_flops_per_token(seq_len)
    gemm = 2.0 * fp.active_params
    model = 3.0 * (gemm + attention)
    if recompute == "full":
        # Every transformer layer runs its forward again; the LM head is not recomputed.
        lm_head = 2.0 * fp.vocab * fp.hidden
        return model, 4.0 * gemm - lm_head, 4.0 * attention
    if recompute == "selective":
        return model, 3.0 * gemm, 4.0 * attention
    return model, 3.0 * gemm, 3.0 * attention


def training_memory(fp: LLMFootprint, seq_len: int, par: Parallel, precision: str, micro_batches: int,
                    family: DeviceFamily) -> MemoryBreakdown:
    dense_params = fp.total_params - fp.expert_params_total
    params_dev = dense_params / (par.tp * par.pp) + fp.expert_params_total / (par.ep * par.tp * par.pp)
    weights = params_dev * WEIGHT_BYTES[precision]
    grads = params_dev * GRAD_BYTES
    optimizer = params_dev * OPTIMIZER_BYTES
    shard = par.dp * par.cp  # optimizer sharding spans every replica of a parameter
    if par.zero_stage >= 1:
        optimizer /= shard
    if par.zero_stage >= 2:
        grads /= shard
    if par.zero_stage >= 3:
        weights /= shard

    s, b, h, t = seq_len / par.cp, par.micro_batch, fp.hidden, par.tp
    mlp_width = fp.ffn * (1.5 if fp.gated else 1.0) * (fp.top_k if fp.is_moe else 1)
    coeff = ATTN_ACT_COEFF + MLP_ACT_COEFF_PER_4H * mlp_width / (4.0 * h)
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
                     precision: str, device: Accelerator, family: DeviceFamily, system: System) -> Prediction:
    peak = peak_flops(device, precision)
    rate = achievable_flops(device, family, precision)
    m = global_batch_seqs // (par.dp * par.micro_batch)
    n_devices = par.devices
    eta_comm = family.collective_bw_efficiency.value
    overlap = family.comm_overlap.value

    model_per_token, gemm_per_token, attn_per_token = training_flops_split(fp, seq_len, par.recompute)
    hw_per_token = gemm_per_token + attn_per_token
    attn_rate = achievable_flops(device, family, "bf16") if precision == "fp8" else rate
    tokens_step = global_batch_seqs * seq_len
    model_flops_step = model_per_token * tokens_step
    hw_flops_step = hw_per_token * tokens_step
    # One micro-batch on the busiest stage: its share of the layers, split over tp*cp devices.
    tokens_mb = par.micro_batch * seq_len
    stage_share = stage_layers(fp.layers, par) / fp.layers
    seconds_per_token = gemm_per_token / rate + attn_per_token / attn_rate
    compute_mb = seconds_per_token * tokens_mb * stage_share / (par.tp * par.cp)

    # Rank order (Megatron): tp fastest, then cp, then dp, then pp.
    layers_per_stage = stage_layers(fp.layers, par)
    act_msg = par.micro_batch * seq_len / par.cp * fp.hidden * ACTIVATION_BYTES
    tp_link = group_link(system, par.tp, 1)
    tp_collectives_per_layer = 6 if par.recompute == "full" else 4
    tp_mb = layers_per_stage * tp_collectives_per_layer * all_reduce_s(tp_link, act_msg, eta_comm)

    cp_mb = 0.0
    if par.cp > 1:
        # Ring attention passes K and V around the cp ring (forward) and their gradients back; it overlaps
        # with the attention blocks, so only the part the family cannot overlap is exposed.
        kv_msg = 2 * par.micro_batch * seq_len * fp.kv_elems_per_token_per_layer / 2 * ACTIVATION_BYTES / par.tp
        cp_link = group_link(system, par.cp, par.tp)
        cp_mb = layers_per_stage * 3 * all_gather_s(cp_link, kv_msg, eta_comm) * (1.0 - overlap)

    stride_pp = par.tp * par.cp * par.dp
    pp_link = group_link(system, 2, stride_pp) if par.pp > 1 else group_link(system, 1)
    # Scatter/gather optimisation: each TP rank sends 1/tp of the activation; forward and backward sends.
    pp_mb = 2 * par.virtual_stages * p2p_s(pp_link, act_msg / par.tp, eta_comm) if par.pp > 1 else 0.0

    ep_mb = 0.0
    if fp.is_moe and par.ep > 1:
        ep_link = group_link(system, par.ep, par.tp * par.cp)
        ep_msg = act_msg * fp.top_k / par.tp
        ep_mb = layers_per_stage * 4 * all_to_all_s(ep_link, ep_msg, eta_comm)

    t_stage_mb = compute_mb + tp_mb + cp_mb + pp_mb + ep_mb
    bubble = (par.pp - 1) * t_stage_mb / par.virtual_stages
    t_pipeline = m * t_stage_mb + bubble

    dense_params = fp.total_params - fp.expert_params_total
    grad_group = par.dp * par.cp
    dp_link = group_link(system, grad_group, par.tp)
    grad_bytes_dense = dense_params / (par.tp * par.pp) * GRAD_BYTES
    t_dp = all_reduce_s(dp_link, grad_bytes_dense, eta_comm)
    if fp.is_moe:
        expert_group = grad_group // par.ep
        grad_bytes_expert = fp.expert_params_total / (par.ep * par.tp * par.pp) * GRAD_BYTES
        t_dp += all_reduce_s(group_link(system, expert_group, par.tp * par.cp * par.ep), grad_bytes_expert, eta_comm)
    if par.zero_stage >= 3:
        t_dp *= 1.5  # parameters are all-gathered again for the backward pass
    # Gradient buckets are reduced while backward passes run: all of them without a pipeline, only the
    # last micro-batch's (2/3 of its compute) after a pipeline flush.
    backward_window = 2.0 / 3.0 * compute_mb * (m if par.pp == 1 else 1)
    exposed_dp = t_dp - min(t_dp * overlap, backward_window)

    memory = training_memory(fp, seq_len, par, precision, m, family)
    t_optimizer = 0.0
    if device.memory_bw_gb_per_s:
        # Adam reads and writes the fp32 state, gradients and weights once per step.
        state_bytes = memory.optimizer + memory.weights + memory.gradients
        t_optimizer = 2 * state_bytes / (device.memory_bw_gb_per_s * 1e9 * family.memory_bw_efficiency.value)

    step = t_pipeline + exposed_dp + t_optimizer
    breakdown = {
        "compute": m * compute_mb,
        "tp_comm": m * tp_mb,
        "cp_comm": m * cp_mb,
        "pp_comm": m * pp_mb,
        "ep_comm": m * ep_mb,
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
