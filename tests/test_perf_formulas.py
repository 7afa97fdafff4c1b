"""Each formula of the performance model against values computed by hand from the seed's formulas."""

from __future__ import annotations

import math

import pytest

from planner.catalog.topology import GroupLink, group_link
from planner.perf.comm import all_gather_s, all_reduce_s, p2p_s
from planner.perf.shapes import llm_footprint
from planner.perf.training import predict_training, training_flops_per_token, training_memory
from planner.perf.types import Parallel


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
    assert pred.breakdown["compute"] == pytest.approx(hw * 4 * 2048 / (1000e12 * 0.5))
    assert pred.mfu == pytest.approx(hw * 4 * 2048 / (pred.step_time_s * 1000e12))


def test_training_memory_bytes_per_param_and_zero(gpt_shape, family):
    fp = llm_footprint(gpt_shape)
    params = fp.total_params
    plain = training_memory(fp, 2048, Parallel(dp=4, zero_stage=0), "bf16", 1, family)
    assert plain.weights + plain.gradients + plain.optimizer == pytest.approx(18 * params)
    zero1 = training_memory(fp, 2048, Parallel(dp=4, zero_stage=1), "bf16", 1, family)
    assert zero1.optimizer == pytest.approx(12 * params / 4)
    zero3 = training_memory(fp, 2048, Parallel(dp=4, zero_stage=3), "bf16", 1, family)
    assert zero3.weights + zero3.gradients + zero3.optimizer == pytest.approx(18 * params / 4)


def test_activation_memory_follows_korthikanti(gpt_shape, family):
    fp = llm_footprint(gpt_shape)
    s, b, h, L = 2048, 1, 2048, 24
    logits = 4 * s * b * 50000
    none = training_memory(fp, s, Parallel(recompute="none"), "bf16", 1, family).activations
    assert none - logits == pytest.approx(L * s * b * h * 34)  # FlashAttention: no s x s scores kept
    full = training_memory(fp, s, Parallel(recompute="full"), "bf16", 1, family).activations
    assert full - logits == pytest.approx(L * 2 * s * b * h)


def test_torus_ring_uses_one_port_per_neighbour(system):
    from planner.catalog.schema import ScaleUp

    torus = system.model_copy(update={"id": "torus-16", "devices_per_node": 4, "scaleout": None,
                                      "scaleup": ScaleUp(topology="torus-2d", domain_devices=16, link_gb_per_s=100.0,
                                                         hop_latency_us=1.0, torus_dims=[4, 4])})
    row = group_link(torus, 4, 1)  # a full row of the 4x4 torus: a ring over wrap-around links
    assert row.bw_bytes_per_s == pytest.approx(100e9 / 4) and row.hops == 1
    column = group_link(torus, 4, 4)  # stride 4 walks the second dimension
    assert column.bw_bytes_per_s == pytest.approx(100e9 / 4) and column.hops == 1
    half = group_link(torus, 2, 1)  # two neighbours of a row that has no wrap-around of its own
    assert half.hops == 1
