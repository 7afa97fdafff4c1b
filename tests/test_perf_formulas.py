"""Each formula of the performance model against values computed by hand from the seed's formulas."""

from __future__ import annotations

import math

import pytest

from planner.catalog.schema import GemmHalfDimension
from planner.catalog.topology import GroupLink, group_link
from planner.perf.comm import all_gather_s, all_reduce_s, p2p_s
from planner.perf.shapes import llm_footprint
from planner.perf.adapters import NF4_BYTES_PER_PARAM, adapter_params
from planner.perf.training import (
    gemm_shape_slowdown,
    predict_training,
    sharded_dp_times,
    training_flops_per_token,
    training_memory,
)
from planner.perf.types import Adapter, Parallel


def test_kv_cache_per_token_is_gqa_aware(llama_shape):
    fp = llm_footprint(llama_shape)
    # 2 (K and V) x 32 layers x 8 KV heads x 128 head dim x 2 bytes = 128 KiB
    assert fp.kv_bytes_per_token(2.0) == 2 * 32 * 8 * 128 * 2 == 131072


def test_training_flops_are_six_p_plus_attention(gpt_shape):
    fp = llm_footprint(gpt_shape)
    h, L, V, f, s = 2048, 24, 50000, 8192, 2048
    active = L * (4 * h * h + 2 * h * f) + V * h
    assert fp.active_params == active == 1_310_359_552
    model, hardware = training_flops_per_token(fp, s, "none")
    assert model == hardware == 6 * active + 12 * L * s * h


def test_full_recompute_matches_megatron_formula(gpt_shape):
    # Narayanan et al. 2021, eq. 3: 96 B s L h^2 (1 + s/6h + V/(16 L h)) FLOPs per iteration with recompute.
    fp = llm_footprint(gpt_shape)
    h, L, V, s = 2048, 24, 50000, 2048
    megatron = 96 * s * L * h * h * (1 + s / (6 * h) + V / (16 * L * h)) / s
    _, hardware = training_flops_per_token(fp, s, "full")
    assert hardware == pytest.approx(megatron, rel=1e-12)


def test_ring_all_reduce_cost():
    link = GroupLink(size=8, bw_bytes_per_s=100e9, latency_s=5e-6, crosses_domain=False, hops=2)
    # large message: ring 2(N-1)/N M/BW + 2(N-1) alpha beats the tree
    assert all_reduce_s(link, 1e9, 1.0) == pytest.approx(2 * 7 / 8 * 1e9 / 100e9 + 2 * 7 * 5e-6)
    # tiny message: latency dominates and the tree's 2 log2(N) alpha wins
    assert all_reduce_s(link, 1e3, 1.0) == pytest.approx(2 * 1e3 / 100e9 + 2 * 3 * 5e-6)
    assert all_gather_s(link, 1e9, 1.0) == pytest.approx(7 / 8 * 1e9 / 100e9 + 7 * 5e-6)
    assert p2p_s(link, 1e9, 0.5) == pytest.approx(1e9 / 50e9 + 5e-6)
    assert all_reduce_s(GroupLink(1, math.inf, 0.0, False, 0), 1e9, 1.0) == 0.0


def test_topology_group_inside_nvswitch(system):
    link = group_link(system, 8, 1)
    assert link.bw_bytes_per_s == pytest.approx(400e9)
    assert link.latency_s == pytest.approx(2e-6)
    assert not link.crosses_domain


def test_topology_group_across_nodes_uses_every_rail(system):
    # 16 ranks over 2 nodes: 8 rings, each leaving the node through its own 400 Gb/s NIC (50 GB/s).
    link = group_link(system, 16, 1)
    assert link.crosses_domain
    assert link.bw_bytes_per_s == pytest.approx(8 * 50e9)
    # NIC (2 us) on both sides and one leaf switch hop (1 us)
    assert link.latency_s == pytest.approx(5e-6)


def test_topology_device_with_several_nics_drives_them_all(system):
    # AWS p5: 32 EFA cards of 100 Gb/s for 8 GPUs, 4 a GPU: a ring across nodes leaves each GPU at 4 x 12.5 GB/s.
    p5 = system.model_copy(update={"id": "test-p5", "scaleout": system.scaleout.model_copy(
        update={"fabric": "fat-tree", "nics_per_node": 32, "nic_gbit_per_s": 100.0})})
    assert group_link(p5, 2, 8).bw_bytes_per_s == pytest.approx(4 * 12.5e9)
    # p4d: 4 cards for 8 GPUs, two GPUs share one.
    p4d = system.model_copy(update={"id": "test-p4d", "scaleout": system.scaleout.model_copy(
        update={"fabric": "fat-tree", "nics_per_node": 4, "nic_gbit_per_s": 100.0})})
    assert group_link(p4d, 16, 1).bw_bytes_per_s == pytest.approx(8 * 12.5e9 / 2)


def test_topology_dp_group_beyond_one_leaf_crosses_the_spine(system):
    same_leaf = group_link(system, 4, 8)  # one rank per node, 4 nodes = one leaf
    via_spine = group_link(system, 5, 8)
    assert same_leaf.bw_bytes_per_s == pytest.approx(50e9)
    assert via_spine.bw_bytes_per_s == pytest.approx(50e9)
    assert via_spine.latency_s == pytest.approx(same_leaf.latency_s + 2e-6)


def test_bubble_fraction(gpt_shape, device, family, system):
    fp = llm_footprint(gpt_shape)
    par = Parallel(tp=1, pp=4, dp=1, micro_batch=1)
    pred = predict_training(fp, tokens=1e9, seq_len=2048, global_batch_seqs=12, par=par, precision="bf16",
                            device=device, family=family, system=system)
    b = pred.breakdown
    pipeline = b["compute"] + b["pp_comm"] + b["bubble"]
    assert b["bubble"] / pipeline == pytest.approx((4 - 1) / (12 + 4 - 1))


def test_compute_time_is_flops_over_peak_times_efficiency(gpt_shape, device, family, system):
    fp = llm_footprint(gpt_shape)
    par = Parallel(tp=1, pp=1, dp=1, micro_batch=1, recompute="none")
    pred = predict_training(fp, tokens=1e9, seq_len=2048, global_batch_seqs=4, par=par, precision="bf16",
                            device=device, family=family, system=system)
    _, hw = training_flops_per_token(fp, 2048, "none")
    # The memory-bound kernels between GEMMs: 3 passes over Korthikanti's 34 bytes per token x hidden
    # per layer (4h MLP), at 80% of 2,000 GB/s.
    elementwise = 3 * 34 * 2048 * 24 / (2000e9 * 0.8)
    assert pred.breakdown["compute"] == pytest.approx(4 * 2048 * (hw / (1000e12 * 0.5) + elementwise))
    assert pred.mfu == pytest.approx(hw * 4 * 2048 / (pred.step_time_s * 1000e12))


def test_gemm_shape_slowdown_by_smallest_dimension(gpt_shape, family):
    fp = llm_footprint(gpt_shape)
    assert gemm_shape_slowdown(fp, 1, 2048, family) == 1.0  # no half dimension: shape-free
    shaped = family.model_copy(update={"gemm_half_dim": GemmHalfDimension(value=64.0, reason="test")})
    # TP1, 2,048 tokens: every GEMM's smallest side is 2,048.
    assert gemm_shape_slowdown(fp, 1, 2048, shaped) == pytest.approx(1 + 64 / 2048)
    # TP8: QKV 2048 x 768, attention out 256 x 2048, MLP 2048 x 1024 and 1024 x 2048, FLOP-weighted.
    flops = [2048 * 768, 256 * 2048, 2048 * 1024, 1024 * 2048]
    sides = [768, 256, 1024, 1024]
    expected = sum(f * (1 + 64 / d) for f, d in zip(flops, sides)) / sum(flops)
    assert gemm_shape_slowdown(fp, 8, 2048, shaped) == pytest.approx(expected)
    # Four tokens per micro-batch: the token side binds every GEMM.
    assert gemm_shape_slowdown(fp, 1, 4, shaped) == pytest.approx(1 + 64 / 4)


def test_zero3_gathers_every_layer_twice_and_hides_behind_compute(gpt_shape, system):
    fp = llm_footprint(gpt_shape)
    par = Parallel(dp=4, zero_stage=3)
    layers = fp.layers
    link = group_link(system, 4, 1)
    per_layer = fp.total_params / layers
    gather = all_gather_s(link, per_layer * 2.0, 1.0)
    scatter = all_gather_s(link, per_layer * 4.0, 1.0)
    # Compute far longer than any collective: only the first gather and last reduce-scatter show.
    exposed, step = sharded_dp_times(fp, par, system, 1e3, layers, 1.0)
    assert exposed == pytest.approx(gather + scatter) and step == 0.0
    # No compute to hide behind: every layer pays two gathers and a reduce-scatter.
    exposed, _ = sharded_dp_times(fp, par, system, 1e-12, layers, 1.0)
    assert exposed == pytest.approx(layers * (2 * gather + scatter) + gather + scatter, rel=1e-6)
    # ZeRO-1 pays one gradient all-reduce per step instead, and nothing per micro-batch.
    exposed, step = sharded_dp_times(fp, Parallel(dp=4, zero_stage=1), system, 1.0, layers, 1.0)
    assert exposed == 0.0 and step == pytest.approx(all_reduce_s(link, fp.total_params * 4.0, 1.0))


def test_hybrid_sharding_gathers_in_its_group_and_all_reduces_across(gpt_shape, system):
    fp = llm_footprint(gpt_shape)
    full = sharded_dp_times(fp, Parallel(dp=16, zero_stage=3), system, 1e-12, fp.layers, 1.0)
    hybrid = sharded_dp_times(fp, Parallel(dp=16, zero_stage=3, shard_group=8), system, 1e-12, fp.layers, 1.0)
    assert full[1] == 0.0
    across = group_link(system, 2, 8)
    assert hybrid[1] == pytest.approx(all_reduce_s(across, fp.total_params / 8 * 4.0, 1.0))
    # Gathers inside one NVSwitch node beat gathers over the 16-GPU fabric.
    assert hybrid[0] < full[0]


def test_training_memory_bytes_per_param_and_zero(gpt_shape, family):
    fp = llm_footprint(gpt_shape)
    params = fp.total_params
    plain = training_memory(fp, 2048, Parallel(dp=4, zero_stage=0), "bf16", 1, family)
    assert plain.weights + plain.gradients + plain.optimizer == pytest.approx(18 * params)
    zero1 = training_memory(fp, 2048, Parallel(dp=4, zero_stage=1), "bf16", 1, family)
    assert zero1.optimizer == pytest.approx(12 * params / 4)
    zero3 = training_memory(fp, 2048, Parallel(dp=4, zero_stage=3), "bf16", 1, family)
    # The shards, plus two layers' bf16 weights gathered whole (the one computing, the one prefetched).
    prefetch = 2 * 2 * params / fp.layers
    assert zero3.weights + zero3.gradients + zero3.optimizer == pytest.approx(18 * params / 4 + prefetch)
    hybrid = training_memory(fp, 2048, Parallel(dp=8, zero_stage=3, shard_group=2), "bf16", 1, family)
    assert hybrid.optimizer == pytest.approx(12 * params / 2)


def test_activation_memory_follows_korthikanti(gpt_shape, family):
    fp = llm_footprint(gpt_shape)
    s, b, h, L = 2048, 1, 2048, 24
    logits = 4 * s * b * 50000
    none = training_memory(fp, s, Parallel(recompute="none"), "bf16", 1, family).activations
    assert none - logits == pytest.approx(L * s * b * h * 34)  # FlashAttention: no s x s scores kept
    full = training_memory(fp, s, Parallel(recompute="full"), "bf16", 1, family).activations
    assert full - logits == pytest.approx(L * 2 * s * b * h)


def test_torus_rings_run_both_ways_on_every_axis_the_group_spans(system):
    from planner.catalog.schema import ScaleUp

    torus = system.model_copy(update={"id": "torus-16", "devices_per_node": 4, "scaleout": None,
                                      "scaleup": ScaleUp(topology="torus-2d", domain_devices=16, link_gb_per_s=100.0,
                                                         hop_latency_us=1.0, torus_dims=[4, 4])})
    # A full row of the 4x4 torus: rings both ways over its wrap-around links, one port each way (100 / 4).
    row = group_link(torus, 4, 1)
    assert row.bw_bytes_per_s == pytest.approx(2 * 100e9 / 4) and row.hops == 1
    column = group_link(torus, 4, 4)  # stride 4 walks the second dimension
    assert column.bw_bytes_per_s == pytest.approx(2 * 100e9 / 4) and column.hops == 1
    # The whole 4x4: both axes at once, both ways (source T1: n axes give n times the bandwidth).
    assert group_link(torus, 16, 1).bw_bytes_per_s == pytest.approx(4 * 100e9 / 4)
    half = group_link(torus, 2, 1)  # two neighbours of a row that has no wrap-around of its own
    assert half.hops == 1


def test_a_tpu_job_sees_the_links_of_the_slice_it_is_cut_as():
    from planner.catalog.loader import load_catalogs

    v5p = load_catalogs().systems["tpu-v5p-pod"]
    # 64 chips run on one 4x4x4 cube, a full torus (source T2): TP4 along an axis is a ring, both ways.
    cube = group_link(v5p, 4, 1, world=64)
    assert cube.bw_bytes_per_s == pytest.approx(2 * 600e9 / 6) and cube.hops == 1
    # The rest of the cube (16 ranks, 4 apart) spans the two other axes: twice the bandwidth.
    assert group_link(v5p, 16, 4, world=64).bw_bytes_per_s == pytest.approx(4 * 600e9 / 6)
    # The same four chips inside the 16x16x24 slice are a line of a longer ring: one way's worth, 3 hops back.
    line = group_link(v5p, 4, 1, world=6144)
    assert line.bw_bytes_per_s == pytest.approx(cube.bw_bytes_per_s / 2) and line.hops == 3
    v5e = load_catalogs().systems["tpu-v5e-pod"]
    # v5e wraps only a full 16-chip axis (source T4): in an 8x8 slice a row of 8 is a line, in 16x16 a ring.
    assert group_link(v5e, 8, 1, world=64).hops == 7
    assert group_link(v5e, 16, 1, world=256).hops == 1


def test_lora_trains_adapters_on_a_frozen_base(llama_shape, family):
    fp = llm_footprint(llama_shape)
    lora = Adapter(method="lora", rank=32)
    # Rank 32 on QKV (4096 -> 4096 + 2 x 1024), attention out, gated MLP in (4096 -> 2 x 14336) and out.
    per_layer = 32 * (4096 + 6144) + 32 * (4096 + 4096) + 32 * (4096 + 28672) + 32 * (14336 + 4096)
    assert adapter_params(fp, lora) == pytest.approx(per_layer * 32)
    # No weight gradients for the base: 4 FLOPs per base parameter instead of 6, plus 6 per adapter one.
    full_model, _ = training_flops_per_token(fp, 4096, "none")
    lora_model, _ = training_flops_per_token(fp, 4096, "none", lora)
    attention = 3 * fp.attention_flops_per_token(4096)
    assert lora_model == pytest.approx(4 * fp.active_params + 6 * per_layer * 32 + attention)
    assert full_model == pytest.approx(6 * fp.active_params + attention)
    mem = training_memory(fp, 4096, Parallel(), "bf16", 1, family, lora)
    assert mem.weights == pytest.approx(2 * fp.total_params + 2 * per_layer * 32)
    assert mem.optimizer == pytest.approx(12 * per_layer * 32)  # Adam state for the adapters only
    qlora = training_memory(fp, 4096, Parallel(), "bf16", 1, family, Adapter(method="qlora", rank=32))
    assert qlora.weights == pytest.approx(NF4_BYTES_PER_PARAM * fp.total_params + 2 * per_layer * 32)
    assert NF4_BYTES_PER_PARAM == pytest.approx(0.5 + 1 / 64 + 4 / (64 * 256))


def test_qlora_pays_for_dequantising_its_base(llama_shape, device, family, system):
    fp = llm_footprint(llama_shape)
    kwargs = dict(tokens=1e9, seq_len=4096, global_batch_seqs=4, par=Parallel(recompute="none"), precision="bf16",
                  device=device, family=family, system=system)
    lora = predict_training(fp, adapter=Adapter(method="lora"), **kwargs)
    qlora = predict_training(fp, adapter=Adapter(method="qlora"), **kwargs)
    # Two passes (forward, backward) read the NF4 codes and write bf16, per micro-batch, at 80% of 2 TB/s.
    expected = 4 * 2 * fp.total_params * (NF4_BYTES_PER_PARAM + 2) / (2000e9 * 0.8)
    assert qlora.breakdown["dequantize"] == pytest.approx(expected)
    assert lora.breakdown["dequantize"] == 0.0
    assert qlora.step_time_s > lora.step_time_s


def test_framework_tp_overlap_hides_its_share_of_tp_comm(llama_shape, device, system):
    from planner.catalog.loader import load_catalogs

    catalog = load_catalogs()
    fp = llm_footprint(llama_shape)
    family = catalog.families["nvidia-hopper"]
    kwargs = dict(tokens=1e9, seq_len=4096, global_batch_seqs=8, par=Parallel(tp=8), precision="bf16",
                  device=device, family=family, system=system)
    plain = predict_training(fp, framework=catalog.framework("megatron-lm"), **kwargs)
    overlapped = predict_training(fp, framework=catalog.framework("megatron-core"), **kwargs)
    share = 1 - family.comm_overlap.value
    assert overlapped.breakdown["tp_comm"] == pytest.approx(plain.breakdown["tp_comm"] * share)


def test_mla_decodes_in_its_latent_space_and_prefills_in_plain_heads():
    from planner.catalog.loader import load_catalogs

    shape = load_catalogs().models["deepseek-v3"].shape
    fp = llm_footprint(shape)
    # Decode (source M36, FlashMLA's MQA mode): each of 128 heads scores 576-wide keys and sums 512-wide
    # values per cached token; prefill runs plain heads (192-wide keys, 128-wide values, counted as 4 x 192).
    assert fp.decode_attention_flops_per_token(1.0) == pytest.approx(61 * 128 * 2 * (576 + 512))
    assert fp.attention_flops_per_token(1.0) == pytest.approx(4 * 61 * 128 * 192)
    dense = llm_footprint(load_catalogs().models["llama-3.1-8b"].shape)
    assert dense.decode_attention_flops_per_token(100.0) == dense.attention_flops_per_token(100.0)
