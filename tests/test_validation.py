"""The performance model against published training runs (tests/validation/training.yaml)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "validation"))

import validate  # noqa: E402

from planner.catalog.loader import load_catalogs  # noqa: E402


def test_training_throughput_within_targets():
    """In sample, against the 128 scored runs (the leave-one-source-out figures are in the README)."""
    cases, _ = validate.run(load_catalogs())
    stats = validate.summary(cases)
    assert stats["rows"] >= 100
    assert len({c.source for c in cases}) >= 6
    assert stats["median_abs_error"] <= 0.09, stats
    assert stats["p90_abs_error"] <= 0.24, stats
    assert abs(stats["bias"]) <= 0.05, stats
    # The biases the issue names, by slice: ZeRO-3/FSDP runs and models under 5B parameters.
    for name, group in (("zero3", [c for c in cases if c.zero_stage == 3]), ("small", [c for c in cases if c.params < 5e9])):
        sliced = validate.summary(group)
        assert sliced["rows"] >= 10 and abs(sliced["bias"]) <= 0.06 and sliced["median_abs_error"] <= 0.10, (name, sliced)


def test_training_leave_one_source_out_starts_from_priors_not_the_held_out_fit():
    catalog = load_catalogs()
    held = "AI-Hypercomputer/maxtext MaxText/configs/v5e/README.md"
    params = validate.fit(catalog, only=lambda row: validate.source_group(row) != held, sweeps=0, from_catalog=False)
    # The only TPU rows are held out: the TPU factors stay at the priors, not the catalog's fitted values.
    assert params[("google-tpu", "matmul_efficiency")] == validate.PRIORS["matmul_efficiency"]
    assert catalog.families["google-tpu"].matmul_efficiency.value != validate.PRIORS["matmul_efficiency"]


def test_validation_covers_several_device_families():
    cases, _ = validate.run(load_catalogs())
    assert {c.device for c in cases} >= {"a100-80gb", "h100-sxm", "b200"}
    # MaxText's notes say ici_tensor_parallelism=4: not four model chunks (every v5p run was once skipped so).
    assert sum(c.device == "tpu-v5p" for c in cases) >= 16


@functools.cache
def _serving_rows():
    import validate_serving

    return validate_serving.load_rows(load_catalogs())


@functools.cache
def _serving_cases():
    import validate_serving

    rows, _ = _serving_rows()
    return rows, validate_serving.cases_of(load_catalogs(), rows, {})


def _median_abs(cases) -> float:
    errors = sorted(abs(c.error) for c in cases)
    return errors[len(errors) // 2]


def catalog_model_is_moe(model: str) -> bool:
    return load_catalogs().models[model].shape.moe is not None


def test_serving_validation_covers_sources_engines_vendors_and_loads():
    rows, cases = _serving_cases()
    assert len(rows) >= 120
    assert len({c.source for c in cases}) >= 5
    assert {c.engine for c in cases} >= {"vllm", "sglang", "trtllm"}
    assert {"mi300x", "h100-sxm"} <= {c.device for c in cases}
    assert {c.tp for c in cases} >= {1, 2, 4, 8}
    assert {"offline", "online_rate"} <= {c.scenario for c in cases}


def test_serving_predictions_against_published_runs():
    rows, every_case = _serving_cases()
    # Scored without being fitted: MLA models (DeepSeek) and data-parallel-attention layouts; nothing dense,
    # and nothing silently.
    scored_only = {r.model for r in rows if not r.fitted and not r.par.attention_dp}
    assert scored_only == {"deepseek-v3"}, scored_only
    assert all(not r.fitted for r in rows if r.par.attention_dp)
    assert all(catalog_model_is_moe(r.model) for r in rows if not r.fitted)
    assert any(not c.fitted for c in every_case)
    cases = [c for c in every_case if c.fitted]
    throughput = [c for c in cases if c.quantity == "tokens/s"]
    assert _median_abs(throughput) <= SERVING_TOKENS_MEDIAN
    for quantity in ("tpot_mean", "ttft_mean"):
        assert _median_abs([c for c in cases if c.quantity == quantity]) <= SERVING_LATENCY_MEDIAN, quantity
    # No tensor-parallel degree may carry a bias (signed median) beyond the stated bound.
    for tp in (1, 2, 4, 8):
        errors = sorted(c.error for c in throughput if c.tp == tp)
        assert abs(errors[len(errors) // 2]) <= SERVING_TP_BIAS, tp
    # The fitted MoE rows (Qwen3, Llama 4, gpt-oss, Mixtral) ride on the grouped-GEMM efficiency and the routed
    # copies' traffic: without them they ran +23% (TensorRT-LLM PyTorch backend) with a 28% median.
    moe = [c for c in throughput if catalog_model_is_moe(c.model)]
    errors = sorted(c.error for c in moe)
    assert len(moe) >= 200 and _median_abs(moe) <= SERVING_MOE_MEDIAN and abs(errors[len(errors) // 2]) <= 0.10


# In-sample gates with the catalog's fitted parameters (README, "Serving model" gives the leave-one-source-out
# figures that say how the model transfers).
SERVING_TOKENS_MEDIAN = 0.10
SERVING_LATENCY_MEDIAN = 0.12
SERVING_TP_BIAS = 0.06
SERVING_MOE_MEDIAN = 0.18


def test_leave_one_source_out_never_fits_on_the_source_it_predicts(monkeypatch):
    import validate_serving

    seen = []

    def recording_fit(catalog, rows, **kwargs):
        seen.append({r.source for r in rows})
        assert kwargs.get("from_catalog") is False  # the catalog's values were fitted on every row
        return {}

    monkeypatch.setattr(validate_serving, "fit", recording_fit)
    group = "trtllm-perf-overview 1.0"
    held = validate_serving._held_out(group)
    assert held and all(c.source == group for c in held)
    assert seen and group not in seen[0]


def test_a_pipeline_run_that_does_not_publish_its_micro_batches_gets_its_frameworks_default():
    catalog = load_catalogs()
    # torchtitan before 2025: as many micro-batches as pipeline stages (F6), whatever the local batch.
    assert catalog.frameworks["torchtitan-2024"].pp_microbatches == "pipeline_degree"
    assert catalog.frameworks["torchtitan"].pp_microbatches == "per_micro_batch"
    rid = "torchtitan2412-llama31-405b-512gpu-fsdp8-tp8-pp8-1f1b-fp8"
    (case,) = [c for c in validate.run(catalog, only=lambda row: row["id"] == rid)[0]]
    # Local batch 32 in 8 micro-batches of 4: a 7/15 bubble. Read as 32 micro-batches of 1 (a 7/39 bubble),
    # the same run was predicted 66% too fast.
    assert abs(case.predicted_tokens_per_s_per_device / case.measured_tokens_per_s_per_device - 1) < 0.2, case


def test_trtllm_moe_columns_that_ran_attention_data_parallel_are_not_scored_as_tensor_parallel():
    """From v1.0 the TensorRT-LLM perf overview runs Qwen3 MoE with enable_attention_dp: its 'TP8' columns are
    scored as attention-DP + EP, never as tensor parallel; one-GPU columns mean the same either way; TP8 with EP4
    (a layout the model lacks) is skipped, not scored as something else."""
    import validate_serving

    rows, skipped = _serving_rows()
    by_id = {r.raw["id"]: r for r in rows}
    dep = by_id["trtllm10-qwen3-235b-a22b-h200-sxm-fp8-tp8-128-128"]
    assert dep.par.attention_dp and dep.par.ep == dep.par.tp == 8
    assert not by_id["trtllm10-qwen3-30b-a3b-b200-fp4-tp1-128-128"].par.attention_dp
    assert any("expert parallel over 4 devices beside tp=8" in why for _, why in skipped)
    assert any(r.model == "mixtral-8x7b" and r.par.tp > 1 for r in rows)  # v0.17 TensorRT engines: real TP


def test_speculative_speedups_against_published_runs():
    """Speed-ups of EAGLE-3 (vLLM, SGLang chains and trees) and MTP (TensorRT-LLM) at their stated accept lengths."""
    import validate_speculative as vs

    catalog = load_catalogs()
    rows = vs.load_rows()
    assert len(rows) >= 25 and {r.engine for r in rows} == {"vllm", "trtllm", "sglang"} and len({r.source for r in rows}) >= 4
    assert sum(1 for r in rows if r.tree_tokens) >= 10 and any(r.batch > 1 for r in rows)
    med, p90, _, bias = vs.error_stats(vs.in_sample(catalog, rows))
    assert med <= 0.05 and p90 <= 0.20 and abs(bias) <= 0.03, (med, p90, bias)
    # Trees at batch 1 on a 3B-active MoE target were slower than no speculation; so is the model.
    trees = [c for c in vs.in_sample(catalog, rows) if c.row.tree_tokens and c.row.batch == 1]
    assert trees and all(c.predicted < 1.0 for c in trees), [(c.row.id, c.predicted) for c in trees]
    # Held out, a source's engine is fitted on the other sources (or takes the others' mean): the README's figure.
    med, p90, _, bias = vs.error_stats(vs.leave_one_source_out(catalog, rows))
    assert med <= 0.12 and p90 <= 0.30, (med, p90, bias)


def test_disaggregated_runs_against_published_measurements():
    """Published prefill/decode pools at their stated load: every row is modelled, and the errors stay where the
    README reports them (TTFT under-predicted, TPOT over-predicted, no parameter fitted on these rows)."""
    import validate_disaggregated as vd

    rows = vd.load_rows()
    assert len(rows) >= 4 and len({r["source"] for r in rows}) >= 3
    figures = vd.score(load_catalogs(), rows)
    assert len(figures) == sum(len(r["measured"]) for r in rows)
    errors = sorted(abs(f.error) for f in figures)
    assert errors[len(errors) // 2] <= 0.5 and errors[-1] <= 0.75, errors


def test_wide_expert_parallel_against_published_phases():
    """DeepSeek-V3 prefill over 4 nodes and decode over 9, as LMSYS measured them: every row within 10% with the
    exchanges over the NICs (charged as one ring over the nodes, the rows came out 43-52% too fast)."""
    import validate_wide_ep as vw

    rows = vw.load_rows()
    assert {r["phase"] for r in rows} == {"prefill", "decode"}
    cases = vw.score(load_catalogs(), rows)
    assert len(cases) == len(rows)
    assert max(abs(c.error) for c in cases) <= 0.10, [(c.row, c.error) for c in cases]
    # DeepEP's own low-latency kernel timings, EP16 to EP256: the exchange the decode step charges a layer.
    kernels = vw.score_kernels(load_catalogs(), vw.load_kernels())
    assert len(kernels) == 5 and max(abs(c.error) for c in kernels) <= 0.15, [(c.row, c.error) for c in kernels]
