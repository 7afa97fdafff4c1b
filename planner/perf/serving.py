"""LLM serving: prefill, decode, KV cache and queueing for one replica of tp x pp devices.

Per replica at a decode batch of B concurrent sequences (continuous batching):
    decode step (per stage) = max(weights + B*ctx*kv_per_token, all on HBM / (bw*eta_mem),
                                  B * forward FLOPs / (peak*eta_mm)) + TP all-reduces (2 per layer)
    TPOT = pp * step(B/pp)     (a token passes every stage; stages work on B/pp sequences each)
    prefill = max(FLOPs(input) / (tp*peak*eta_mm), weights / (tp*bw*eta_mem)) + TP all-reduces + PP sends
A request occupies the replica for S = prefill + output_tokens * TPOT / B; utilisation rho = lambda_r*S,
and rho >= 1 means the replica cannot keep up (latency infinite). Decode steps of running sequences
are shared by the whole batch, but prompts wait for each other: prefills form a queue served in the time
decode leaves free, i.e. with service time prefill / (1 - lambda_r*output_tokens*TPOT/B). TTFT p99 adds
that queue's p99 wait, taken as M/M/1's ln(100*rho_p) / (mu_p*(1-rho_p)) (Kleinrock 1975) — conservative
for prompts of equal length. Prefills pre-empt decode steps, so TPOT is stretched by
1/(1 - lambda_r*prefill).
MoE decode reads only the experts the batch routes to: 1 - (1 - k/E)^B of them per layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.catalog.schema import Accelerator, DeviceFamily, System
from planner.catalog.topology import group_link
from planner.perf.comm import all_reduce_s, all_to_all_s, p2p_s
from planner.perf.shapes import LLMFootprint, model_split_problems
from planner.perf.roofline import achievable_bandwidth, achievable_flops
from planner.perf.types import MemoryBreakdown, Parallel, Prediction
from planner.units import BYTES_PER_ELEMENT, GIB

ACTIVATION_BYTES = 2.0


def kv_bytes_per_elem(precision: str) -> float:
    # 8-bit deployments (TensorRT-LLM, vLLM) also quantise the KV cache to 8 bits; others keep 16-bit.
    return 1.0 if precision in ("fp8", "int8") else 2.0


def kv_bytes_per_token_per_device(fp: LLMFootprint, precision: str, par: Parallel) -> float:
    per_token = fp.kv_bytes_per_token(kv_bytes_per_elem(precision))
    # GQA heads split over TP until each rank holds one KV head; latent (MLA) caches are replicated.
    tp_split = min(par.tp, fp.kv_heads) if fp.kv_shardable_by_tp else 1
    return per_token / (tp_split * par.pp)


def serving_structural_problems(fp: LLMFootprint, par: Parallel, system: System, domain: int) -> list[str]:
    problems = model_split_problems(fp, par.tp, par.pp, domain, system.id)
    if par.ep > 1 and (not fp.is_moe or par.ep != par.tp or fp.experts % par.ep):
        problems.append(f"ep={par.ep}: expert parallelism replaces TP on the expert layers, so ep must equal tp "
                        f"and divide the experts (dense models take ep=1)")
    if par.micro_batch < par.pp:
        problems.append(f"batch {par.micro_batch} is smaller than pp={par.pp}: stages would idle")
    return problems


def weight_bytes_per_device(fp: LLMFootprint, precision: str, par: Parallel) -> float:
    return fp.total_params * BYTES_PER_ELEMENT[precision] / (par.tp * par.pp)


@dataclass(frozen=True)
class ReplicaProfile:
    """What one replica does independently of the load: prefill and decode times, memory."""

    prefill_s: float
    tpot_s: float  # decode step at the full batch, before prefill interruptions
    batch: int
    output_tokens: int
    max_batch_fit: int
    memory: MemoryBreakdown
    capacity_bytes: float
    breakdown: dict[str, float]

    @property
    def service_s(self) -> float:
        """Replica time one request consumes: its prefill plus its share of the batched decode steps."""
        return self.prefill_s + self.output_tokens * self.tpot_s / self.batch


@dataclass(frozen=True)
class Latencies:
    utilization: float
    ttft_p99_s: float
    tpot_s: float
    e2e_p99_s: float
    queueing_p99_s: float


def latencies_at(profile: ReplicaProfile, lam: float) -> Latencies:
    """Latencies of one replica offered `lam` requests/s (see the module docstring)."""
    a, t, b, o = profile.prefill_s, profile.tpot_s, profile.batch, profile.output_tokens
    decode_share = lam * o * t / b
    prefill_share = lam * a
    rho = decode_share + prefill_share
    if rho >= 1.0:
        return Latencies(rho, math.inf, math.inf, math.inf, math.inf)
    tpot_eff = t / (1.0 - prefill_share)
    prefill_service = a / (1.0 - decode_share)
    rho_p = lam * prefill_service
    wait = max(0.0, math.log(100.0 * rho_p) * prefill_service / (1.0 - rho_p)) if rho_p > 0.01 else 0.0
    ttft = wait + a
    return Latencies(rho, ttft, tpot_eff, ttft + (o - 1) * tpot_eff, wait)


def max_rate(profile: ReplicaProfile, metric: str, limit: float) -> float:
    """Largest per-replica request rate at which `metric` stays within `limit` (0 when none does).

    Every latency grows with the load, so the answer is a threshold; utilisation and TPOT have closed
    forms, TTFT and end-to-end are found by bisection on the closed-form latencies.
    """
    a, t = profile.prefill_s, profile.tpot_s
    saturation = 1.0 / profile.service_s
    if metric == "utilization":
        return min(limit, 1.0) * saturation
    if metric == "tpot_s":
        return 0.0 if t > limit else min(saturation, (1.0 - t / limit) / a)
    attr = {"ttft_p99_s": "ttft_p99_s", "e2e_p99_s": "e2e_p99_s"}[metric]
    if getattr(latencies_at(profile, 0.0), attr) > limit:
        return 0.0
    lo, hi = 0.0, saturation
    for _ in range(28):  # 2^-28 of the saturation rate: far below the solver's 1e-4 demand granularity
        mid = (lo + hi) / 2
        if getattr(latencies_at(profile, mid), attr) <= limit:
            lo = mid
        else:
            hi = mid
    return lo


def replica_profile(fp: LLMFootprint, *, input_tokens: int, output_tokens: int, par: Parallel, precision: str,
                    device: Accelerator, family: DeviceFamily, system: System) -> ReplicaProfile:
    bw = achievable_bandwidth(device, family)
    compute = achievable_flops(device, family, precision)
    eta_comm = family.collective_bw_efficiency.value
    tp_link = group_link(system, par.tp, 1)
    batch = par.micro_batch

    weights_dev = weight_bytes_per_device(fp, precision, par)
    kv_tok_dev = kv_bytes_per_token_per_device(fp, precision, par)
    framework = family.framework_overhead_gib * GIB
    capacity = device.memory_gb * 1e9
    max_context = input_tokens + output_tokens
    free = capacity - weights_dev - framework
    max_batch_fit = max(0, int(free // (kv_tok_dev * max_context))) if free > 0 else 0
    memory = MemoryBreakdown(weights=weights_dev, kv_cache=batch * max_context * kv_tok_dev, framework=framework)

    # ---- decode
    ctx = input_tokens + output_tokens / 2.0
    stage_batch = batch / par.pp
    layers_stage = fp.layers / par.pp
    if fp.is_moe:
        touched = 1.0 - (1.0 - fp.top_k / fp.experts) ** stage_batch
        dense_bytes = (fp.total_params - fp.expert_params_total) * BYTES_PER_ELEMENT[precision] / (par.tp * par.pp)
        expert_bytes = fp.expert_params_total * BYTES_PER_ELEMENT[precision] / (par.tp * par.pp)
        weights_read = dense_bytes + expert_bytes * touched
    else:
        weights_read = weights_dev
    kv_bw = bw if family.kv_read_efficiency is None else (
        device.memory_bw_gb_per_s * 1e9 * family.kv_read_efficiency.value)
    decode_mem = weights_read / bw + stage_batch * ctx * kv_tok_dev / kv_bw
    decode_flops = stage_batch * fp.forward_flops_per_token(ctx) / (par.tp * par.pp)
    decode_compute = decode_flops / compute
    decode_tp = layers_stage * 2 * all_reduce_s(tp_link, stage_batch * fp.hidden * ACTIVATION_BYTES, eta_comm)
    decode_ep = 0.0
    if fp.is_moe and par.ep > 1:
        ep_msg = stage_batch * fp.hidden * ACTIVATION_BYTES * fp.top_k
        decode_ep = layers_stage * 2 * all_to_all_s(group_link(system, par.ep, 1), ep_msg, eta_comm)
    pp_link = group_link(system, 2, par.tp) if par.pp > 1 else None
    decode_pp = p2p_s(pp_link, stage_batch * fp.hidden * ACTIVATION_BYTES, eta_comm) if pp_link else 0.0
    stage_step = max(decode_mem, decode_compute) + decode_tp + decode_ep + decode_pp
    tpot = par.pp * stage_step

    # ---- prefill (one request; stages run one after another for a single prompt)
    prefill_flops = 2.0 * fp.active_params * input_tokens + 0.5 * fp.attention_flops_per_token(input_tokens) * input_tokens
    prefill_compute = prefill_flops / (par.tp * compute)
    prefill_mem = weights_dev * par.pp / bw
    prefill_tp = fp.layers * 2 * all_reduce_s(tp_link, input_tokens * fp.hidden * ACTIVATION_BYTES, eta_comm)
    prefill_pp = (par.pp - 1) * p2p_s(pp_link, input_tokens * fp.hidden * ACTIVATION_BYTES / par.tp, eta_comm) if pp_link else 0.0
    prefill = max(prefill_compute, prefill_mem) + prefill_tp + prefill_pp

    breakdown = {
        "prefill_compute": prefill_compute,
        "prefill_memory": prefill_mem,
        "prefill_comm": prefill_tp + prefill_pp,
        "decode_memory": decode_mem * par.pp,
        "decode_compute": decode_compute * par.pp,
        "decode_comm": (decode_tp + decode_ep + decode_pp) * par.pp,
    }
    return ReplicaProfile(prefill_s=prefill, tpot_s=tpot, batch=batch, output_tokens=output_tokens,
                          max_batch_fit=max_batch_fit, memory=memory, capacity_bytes=capacity, breakdown=breakdown)


def predict_serving(fp: LLMFootprint, *, requests_per_s: float, input_tokens: int, output_tokens: int,
                    par: Parallel, precision: str, device: Accelerator, family: DeviceFamily,
                    system: System) -> Prediction:
    profile = replica_profile(fp, input_tokens=input_tokens, output_tokens=output_tokens, par=par,
                              precision=precision, device=device, family=family, system=system)
    return serving_prediction(profile, requests_per_s, par)


def serving_prediction(profile: ReplicaProfile, requests_per_s: float, par: Parallel) -> Prediction:
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
        tpot_s=lat.tpot_s,
        e2e_p99_s=lat.e2e_p99_s,
        prefill_s=profile.prefill_s,
        utilization=lat.utilization,
        max_batch_fit=profile.max_batch_fit,
        tokens_per_s=requests_per_s * profile.output_tokens if stable
        else replicas * profile.batch / profile.tpot_s,
    )
    if not stable:
        pred.notes.append(f"overloaded: each replica would need {lat.utilization:.2f}x its capacity; "
                          "add replicas or batch")
    if profile.batch > profile.max_batch_fit:
        pred.notes.append(f"batch {profile.batch} does not fit: at most {profile.max_batch_fit} sequences")
    return pred
