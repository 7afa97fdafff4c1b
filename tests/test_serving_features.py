"""Speculative decoding and prefix caching in the serving model: the formulas by hand, the closed form
against the simulator, and the spec's one-line errors."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from planner.catalog.loader import load_catalogs
from planner.perf.serving import (
    EngineParams,
    ServingFeatures,
    latencies_at,
    replica_profile,
    step_cost,
)
from planner.perf.shapes import llm_footprint
from planner.perf.speculative import acceptance_for_length, speculation, tokens_per_step
from planner.perf.types import Parallel
from planner.simulate import poisson_requests, simulate

CAT = load_catalogs()
H100 = CAT.systems["hgx-h100-8"]
DEVICE = CAT.accelerators[H100.accelerator]
FAMILY = CAT.family_of(DEVICE)
LLAMA8 = CAT.models["llama-3.1-8b"].shape
LLAMA70 = CAT.models["llama-3.1-70b"].shape


def profile(shape, features, *, tp=1, i=2000, o=300, engine=None, batch=256, precision="bf16"):
    return replica_profile(llm_footprint(shape), input_tokens=i, output_tokens=o,
                           par=Parallel(tp=tp, micro_batch=batch), precision=precision, device=DEVICE, family=FAMILY,
                           system=H100, engine=engine or EngineParams.bare(), features=features)


def test_accept_length_and_its_spread_by_hand():
    assert tokens_per_step(3, 0.7) == pytest.approx(1 + 0.7 + 0.49 + 0.343)
    assert tokens_per_step(4, 1.0) == 5
    assert acceptance_for_length(3, 1 + 0.7 + 0.49 + 0.343) == pytest.approx(0.7, abs=1e-9)
    # k = 1 at a = 0.5: one token or two, evenly: variance 0.25.
    assert speculation(LLAMA8, "eagle", 1, 0.5).tokens_variance == pytest.approx(0.25)


def test_eagle3_head_holds_one_layer_a_fusion_and_a_draft_vocabulary_head():
    h, ffn = 4096, 14336
    layer = h * (2 * 4096 + 2 * 1024) + 3 * h * ffn  # Llama 3.1 8B: q/o 4096 wide, k/v 1,024
    wider_qkv = h * (4096 + 2 * 1024)  # attention reads [embedding, fused hidden], 2h deep
    fusion = 3 * h * h
    head = h * 32_000
    spec = speculation(LLAMA8, "eagle", 3, 0.7)
    assert spec.extra_params == pytest.approx(layer + wider_qkv + fusion + head, rel=1e-3)


def test_a_drafter_keeps_none_of_the_targets_window_layers():
    # gpt-oss slides over 128 tokens on 12 of 24 layers; its one-layer EAGLE head attends over everything.
    head = speculation(CAT.models["gpt-oss-20b"].shape, "eagle", 3, 0.7).drafter
    assert head.layers == 1 and head.local_layers == 0 and head.kv_share(4096) == 1.0


def test_deepseek_mtp_module_is_one_moe_layer_and_a_projection():
    ds = CAT.models["deepseek-v3"].shape
    spec = speculation(ds, "mtp", 1, 0.8, mtp_layers=ds.mtp_layers)
    # DeepSeek's model card: 11.5B unique MTP parameters beside the shared embedding and head (M17's notes).
    assert spec.extra_params / 1e9 == pytest.approx(11.5, rel=0.05)


def test_a_verification_step_is_the_target_over_k_plus_one_tokens_and_k_drafter_passes():
    spec = speculation(LLAMA70, "eagle", 3, 0.7)
    prof = profile(LLAMA70, ServingFeatures(speculation=spec), tp=4)
    plain = step_cost(llm_footprint(LLAMA70), par=Parallel(tp=4, micro_batch=256), precision="bf16", device=DEVICE,
                      family=FAMILY, system=H100, engine=EngineParams.bare())
    for b in (1, 32):
        context = b * prof.context_per_seq
        verify = replace(plain, decode_tokens_per_seq=4).seconds(b, context)
        drafts = 3 * prof.cost.drafter.seconds(b, context)
        assert prof.decode_step_s(b) == pytest.approx(verify + drafts)
    # At one sequence the target is bound by its weight reads: verifying 4 tokens costs about as much as 1.
    assert replace(plain, decode_tokens_per_seq=4).seconds(1, 2150) == pytest.approx(plain.seconds(1, 2150), rel=0.03)
    lat = latencies_at(prof, 1e-6)
    assert lat.tpot_s == pytest.approx(prof.decode_step_s(1e-6) / tokens_per_step(3, 0.7), rel=1e-3)


def test_a_tree_widens_every_draft_pass_after_the_first_and_the_verification():
    """Top-8 over 5 passes, 32 nodes verified: the target over 32 tokens a sequence, the drafter once over one token
    a sequence and four times over eight (each candidate its own query over its prefix)."""
    chain_rate = acceptance_for_length(5, 3.6)
    tree = speculation(LLAMA70, "eagle", 5, chain_rate, branches=8, tree_tokens=32)
    assert tree.verify_tokens == 32 and tree.tokens_per_step == pytest.approx(3.6)
    prof = profile(LLAMA70, ServingFeatures(speculation=tree), tp=4)
    plain = step_cost(llm_footprint(LLAMA70), par=Parallel(tp=4, micro_batch=256), precision="bf16", device=DEVICE,
                      family=FAMILY, system=H100, engine=EngineParams.bare())
    drafter = prof.cost.drafter
    for b in (1, 32):
        context = b * prof.context_per_seq
        verify = replace(plain, decode_tokens_per_seq=32).seconds(b, context)
        drafts = drafter.seconds(b, context) + 4 * drafter.seconds(8 * b, 8 * context)
        assert prof.decode_step_s(b) == pytest.approx(verify + drafts)
    # One sequence: the tree's longer accept length pays for its wider steps; at 64 the 32-wide verification binds.
    chain = profile(LLAMA70, ServingFeatures(speculation=speculation(LLAMA70, "eagle", 3, acceptance_for_length(3, 2.6))),
                    tp=4)
    tpot = {name: {b: p.decode_step_s(b) / p.tokens_per_step for b in (1, 64)} for name, p in
            (("tree", prof), ("chain", chain))}
    assert tpot["tree"][1] < tpot["chain"][1] and tpot["tree"][64] > tpot["chain"][64]


def test_speculation_pays_at_low_load_and_less_at_high():
    plain = profile(LLAMA70, ServingFeatures(), tp=4, precision="fp8",
                    engine=EngineParams.of(CAT.engines["vllm"], DEVICE, 4))
    spec = profile(LLAMA70, ServingFeatures(speculation=speculation(LLAMA70, "eagle", 3, 0.7)), tp=4, precision="fp8",
                   engine=EngineParams.of(CAT.engines["vllm"], DEVICE, 4))
    low = latencies_at(plain, 0.2).tpot_s / latencies_at(spec, 0.2).tpot_s
    assert 1.8 < low < tokens_per_step(3, 0.7)
    high = plain.decode_step_s(200) / (spec.decode_step_s(200) / spec.tokens_per_step)
    assert high < low  # a compute-bound step verifies 4x the tokens


def test_prefix_hits_skip_their_prefill_and_the_shared_prefix_is_held_once():
    i, o, cached, shared = 2000, 300, 1600, 1000
    base = profile(LLAMA8, ServingFeatures(), i=i, o=o)
    prof = profile(LLAMA8, ServingFeatures(cached_tokens=cached, shared_prefix_tokens=shared), i=i, o=o)
    new = i - cached
    assert prof.prefill_s == pytest.approx(prof.cost.seconds(0, 0, new, new * (cached + new / 2)))
    assert prof.prefill_s < base.prefill_s * new / i * 1.5
    # The bare engine reserves input + output per sequence: the shared prefix comes off each, once off the pool.
    assert prof.kv_capacity_tokens == pytest.approx(base.kv_capacity_tokens - shared)
    assert prof.max_batch_fit == int((base.kv_capacity_tokens - shared) // (i - shared + o))


def test_prefix_hits_are_whole_kv_blocks():
    engine = EngineParams.of(CAT.engines["vllm"], DEVICE, 1)  # 16-token blocks
    prof = profile(LLAMA8, ServingFeatures(cached_tokens=1000, shared_prefix_tokens=1000), engine=engine)
    assert prof.features.cached_tokens == 992 and prof.prefill_tokens == 1008


@pytest.mark.parametrize("engine_id", ["vllm", "sglang"])
@pytest.mark.parametrize("features", [
    ServingFeatures(speculation=speculation(LLAMA70, "eagle", 3, 0.7)),
    ServingFeatures(speculation=speculation(LLAMA70, "draft", 4, 0.6, CAT.models["llama-3.2-1b"].shape)),
    ServingFeatures(cached_tokens=1600, shared_prefix_tokens=1000),
], ids=["eagle3", "draft", "prefix"])
def test_closed_form_agrees_with_the_simulator(engine_id, features):
    prof = profile(LLAMA70, features, tp=4, precision="fp8", engine=EngineParams.of(CAT.engines[engine_id], DEVICE, 4))
    assert_agrees_with_simulation(prof, tpot_p99=True)


def assert_agrees_with_simulation(prof, tpot_p99: bool = False) -> None:
    """Mean TTFT and TPOT within 15%, throughput within 5% (p99 TPOT within 35%) at 30% and 70% load, for
    requests of 2,000 prompt and 300 output tokens."""
    for load in (0.3, 0.7):
        lam = load * prof.saturation_rate
        cf = latencies_at(prof, lam)
        sim = simulate(prof, poisson_requests(lam, 2000, 2000, 300, seed=7))
        assert cf.ttft_mean_s * 1e3 == pytest.approx(sim.ttft_ms.mean, rel=0.15)
        assert cf.tpot_s * 1e3 == pytest.approx(sim.tpot_ms.mean, rel=0.15)
        if tpot_p99:
            assert cf.tpot_p99_s * 1e3 == pytest.approx(sim.tpot_ms.p99, rel=0.35)
        assert lam * 300 == pytest.approx(sim.tokens_per_s, rel=0.05)


def test_the_simulator_draws_accept_lengths_at_the_stated_rate():
    spec = speculation(LLAMA8, "eagle", 3, 0.7)
    prof = profile(LLAMA8, ServingFeatures(speculation=spec), batch=8, i=200, o=400)
    run = simulate(prof, poisson_requests(0.05, 60, 200, 400, seed=3), trim=0.0)
    steps_per_request = run.steps / 60
    # One prefill step and about 399 / E decode steps each (arrivals rarely overlap at this rate).
    assert steps_per_request == pytest.approx(1 + 399 / spec.tokens_per_step, rel=0.05)
    assert math.isfinite(run.tpot_ms.mean)


# ---------------------------------------------------------------------------------------------- MoE layouts

DEEPSEEK = CAT.models["deepseek-v3"].shape
H200 = CAT.systems["hgx-h200-8"]


def _moe_cost(attention_dp: bool):
    from planner.perf.serving import (
        kv_bytes_per_token_per_device,
        weight_bytes_per_device,
    )

    fp = llm_footprint(DEEPSEEK)
    par = Parallel(tp=8, ep=8, micro_batch=64, attention_dp=attention_dp)
    device = CAT.accelerators[H200.accelerator]
    engine = EngineParams.of(CAT.engines["sglang"], device, 8)
    cost = step_cost(fp, par=par, precision="fp8", device=device, family=CAT.family_of(device), system=H200,
                     engine=engine)
    return fp, par, cost, weight_bytes_per_device(fp, "fp8", par, engine), kv_bytes_per_token_per_device(fp, "fp8", par, engine)


def test_data_parallel_attention_by_hand():
    fp, _, dp, weights, kv = _moe_cost(True)
    _, _, tp, tp_weights, tp_kv = _moe_cost(False)
    vocab = fp.embedding_params + fp.lm_head_params
    # Each rank holds the non-expert weights whole (16-bit vocabulary) and an eighth of the experts.
    assert weights == pytest.approx((fp.total_params - vocab - fp.expert_params_total) * 1.0 + vocab * 2.0
                                    + fp.expert_params_total / 8)
    assert tp_weights == pytest.approx(((fp.total_params - vocab) * 1.0 + vocab * 2.0) / 8)
    # MLA's latent cache is replicated over TP ranks; DP attention splits the sequences instead.
    assert tp_kv == pytest.approx(fp.kv_bytes_per_token(2.0))
    assert kv == pytest.approx(fp.kv_bytes_per_token(2.0) / 8)
    # No TP all-reduce; a dispatch and a combine per MoE layer of each rank's own eighth of the tokens.
    assert dp.allreduces == 0 and dp.moe_exchanges == 2 * (61 - 3) and dp.exchange_share == pytest.approx(1 / 8)
    assert tp.allreduces == 2 * 61 and tp.moe_exchanges == 2 * 61 and tp.exchange_share == 1.0
    # Every rank's scheduler runs its own sequences: the per-sequence host cost is an eighth.
    assert dp.seconds(64, 64 * 2000) - replace(dp, schedulers=1).seconds(64, 64 * 2000) == pytest.approx(
        -dp.engine.step_overhead_per_seq_s * 64 * 7 / 8)


def test_data_parallel_attention_is_searched_for_moe_models_and_launched_with_the_engines_flags():
    from planner.candidates import enumerate_candidates
    from planner.evaluate import resolve_workload
    from planner.spec import load_spec

    root = Path(__file__).resolve().parents[1]
    work = resolve_workload(load_spec(root / "examples" / "deepseek-v3-serving.yaml"), CAT)
    table = enumerate_candidates(work, CAT)
    layouts = {(r.candidate.parallel.tp, r.candidate.parallel.attention_dp) for r in table.replica_rows}
    assert (8, True) in layouts and (8, False) in layouts
    never = work.spec.model_copy(update={"search": work.spec.search.model_copy(update={"attention_dp": "never"})})
    table = enumerate_candidates(resolve_workload(never, CAT), CAT)
    assert not any(r.candidate.parallel.attention_dp for r in table.replica_rows)


def test_layers_that_attend_over_a_window_keep_only_it():
    fp = llm_footprint(CAT.models["gpt-oss-20b"].shape)  # 12 of 24 layers slide over 128 tokens
    assert fp.kv_share(100) == 1.0
    assert fp.kv_share(4096) == pytest.approx((12 + 12 * 128 / 4096) / 24)
    # Causal pairs: a 4,096-token prompt's sliding layers see 128 - 128^2 / (2 x 4096) keys per query on average.
    assert fp.prefill_pair_share(4096) == pytest.approx((12 + 12 * (128 - 128 ** 2 / 8192) / 2048) / 24)
    scout = llm_footprint(CAT.models["llama-4-scout-17b-16e"].shape)  # 36 of 48 layers in 8,192-token chunks
    assert scout.kv_share(20000) == pytest.approx((12 + 36 * 4096 / 20000) / 48)


def test_mxfp4_weights_multiply_at_fp8_on_blackwell_and_16_bit_on_hopper():
    from planner.perf.roofline import peak_flops

    b200, h100 = CAT.accelerators["b200"], CAT.accelerators["h100-sxm"]
    assert peak_flops(b200, "mxfp4") == peak_flops(b200, "fp8")
    assert peak_flops(h100, "mxfp4") == peak_flops(h100, "bf16")


@pytest.mark.parametrize("engine_id", ["vllm", "sglang"])
def test_closed_form_agrees_with_the_simulator_under_data_parallel_attention(engine_id):
    device = CAT.accelerators[H200.accelerator]
    prof = replica_profile(llm_footprint(DEEPSEEK), input_tokens=2000, output_tokens=300,
                           par=Parallel(tp=8, ep=8, micro_batch=256, attention_dp=True), precision="fp8", device=device,
                           family=CAT.family_of(device), system=H200, engine=EngineParams.of(CAT.engines[engine_id], device, 8))
    assert_agrees_with_simulation(prof)


@pytest.mark.parametrize("extra,message", [
    ("speculative: {method: eagle, tokens: 3}", "give exactly one of acceptance_rate or acceptance_length"),
    ("speculative: {method: eagle, tokens: 3, acceptance_length: 5}", "workload.speculative.acceptance_length: 5 exceeds"),
    ("speculative: {method: draft, tokens: 3, acceptance_rate: 0.7}", "workload.speculative.draft_model: method draft"),
    ("engine: sglang\n  speculative: {method: draft, draft_model: llama-3.2-1bb, tokens: 3, acceptance_rate: 0.7}",
     "Did you mean `llama-3.2-1b`?"),
    ("engine: sglang\n  speculative: {method: draft, draft_model: qwen3-32b, tokens: 3, acceptance_rate: 0.7}",
     "drafts must use the target's tokenizer"),
    ("speculative: {method: draft, draft_model: llama-3.2-1b, tokens: 3, acceptance_rate: 0.7}",
     "does not run `draft` speculative decoding"),
    ("speculative: {method: mtp, tokens: 3, acceptance_rate: 0.7}", "ships no multi-token-prediction layers"),
    ("engine: sglang\n  speculative: {method: eagle, tokens: 3, acceptance_rate: 0.7, tree: {topk: 4, verified_tokens: 8}}",
     "a tree's accept length is not a chain's"),
    ("engine: sglang\n  speculative: {method: eagle, tokens: 3, acceptance_length: 2.5, tree: {topk: 2, verified_tokens: 16}}",
     "workload.speculative.tree.verified_tokens: 16 is outside 4..11"),
    ("speculative: {method: eagle, tokens: 3, acceptance_length: 2.5, tree: {topk: 4, verified_tokens: 8}}",
     "is planned with a chain of drafts, not a tree"),
    ("speculative: {method: eagle, tokens: 3, acceptance_rate: yes}", "give a number, not true/false"),
    ("engine: trtllm-tensorrt\n  traffic: {requests_per_s: 1, input_tokens: 100, output_tokens: 50, prefix_hit_rate: 0.5}",
     "does not reuse cached prefixes as launched"),
    ("traffic: {requests_per_s: 1, input_tokens: 100, output_tokens: 50, shared_prefix_tokens: 100}",
     "workload.traffic.shared_prefix_tokens: 100 must be less than input_tokens"),
    ("traffic: {requests_per_s: 1, input_tokens: 100, output_tokens: 50, prefix_hit_rate: 0.1, shared_prefix_tokens: 50}",
     "workload.traffic.prefix_hit_rate: 0.1 finds fewer tokens"),
])
def test_a_speculative_or_prefix_cache_spec_the_planner_cannot_take_is_refused_in_one_line(tmp_path, extra, message):
    from click.testing import CliRunner

    from planner.cli import main

    traffic = "" if "traffic:" in extra else "  traffic: {requests_per_s: 1, input_tokens: 100, output_tokens: 50}\n"
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: t\nworkload:\n  kind: serving\n  model: llama-3.1-8b\n{traffic}  {extra}\n")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert all(line.startswith("error: ") for line in result.output.strip().splitlines())
