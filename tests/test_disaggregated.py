"""Disaggregated prefill/decode serving: the pools' formulas by hand, the closed form against the tandem
simulator, the solver's pool pairing, the checker's request latencies, the explanation's mode choice and the
spec's one-line errors."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner.catalog.loader import load_catalogs
from planner.catalog.topology import group_link
from planner.check import check_plan, violations
from planner.cli import main
from planner.evaluate import resolve_workload
from planner.perf.disaggregated import (
    Split,
    decode_profile,
    prefill_profile,
    split_options,
)
from planner.perf.serving import (
    EngineParams,
    ServingFeatures,
    kv_bytes_per_elem,
    latencies_at,
    max_rate,
    replica_profile,
)
from planner.perf.shapes import llm_footprint
from planner.perf.types import Parallel
from planner.simulate import poisson_requests, simulate_pools
from planner.solve import solve
from planner.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
CAT = load_catalogs()
SYSTEM = CAT.systems["hgx-h100-8-ib"]
DEVICE = CAT.accelerators[SYSTEM.accelerator]
FAMILY = CAT.family_of(DEVICE)
LLAMA70 = CAT.models["llama-3.1-70b"].shape
FP = llm_footprint(LLAMA70)


def engine_for(engine_id: str = "vllm", tp: int = 4) -> EngineParams:
    return EngineParams.of(CAT.engines[engine_id], DEVICE, tp)


def shape_of(engine_id: str = "vllm", tp: int = 4, batch: int = 256, precision: str = "fp8") -> dict:
    """What every pool profile of these tests takes beside its lengths: Llama 3.1 70B on InfiniBand H100 nodes."""
    return {"fp": FP, "par": Parallel(tp=tp, micro_batch=batch), "precision": precision, "device": DEVICE,
            "family": FAMILY, "system": SYSTEM, "engine": engine_for(engine_id, tp), "features": ServingFeatures()}


def pools(engine_id: str = "vllm", i: int = 4000, o: int = 500):
    shape = shape_of(engine_id)
    return (prefill_profile(input_tokens=i, **shape), decode_profile(input_tokens=i, output_tokens=o, **shape),
            replica_profile(input_tokens=i, output_tokens=o, **shape))


def test_kv_transfer_is_each_ranks_shard_of_the_prompts_cache_over_the_fabric():
    prefill, _, _ = pools(i=4000)
    # Llama 3.1 70B: 80 layers x 8 KV heads x 128 x (K, V) at two bytes (vLLM keeps the cache 16-bit beside FP8
    # weights unless told), 2 KV heads per rank at TP4, over one device's path across the InfiniBand fabric.
    assert kv_bytes_per_elem("fp8", engine_for()) == 2.0
    per_rank = 80 * 8 * 128 * 2 * 2 * 4000 / 4
    link = group_link(SYSTEM, 2, stride=8)
    assert link.crosses_domain
    expected = per_rank / (link.bw_bytes_per_s * FAMILY.collective_bw_efficiency.value) + link.latency_s
    assert prefill.transfer_s == pytest.approx(expected, rel=1e-6)


def test_an_idle_prefill_pool_answers_in_one_prompts_prefill_and_its_transfer():
    prefill, _, _ = pools()
    idle = prefill.at_rate(0.0)
    assert idle.ttft_mean_s == pytest.approx(prefill.engine.request_overhead_s + prefill.prefill_s + prefill.transfer_s)
    # Full steps of the token budget: the highest rate is the budget over a prompt's share of one full step.
    assert prefill.saturation_rate == pytest.approx(
        prefill.budget / (prefill.prefill_tokens * prefill.step_s(prefill.budget)))


def test_the_step_chunk_is_the_fixed_point_of_arrivals_during_a_step():
    prefill, _, _ = pools(i=2000)
    for chunk in (2500.0, 4000.0, 7000.0):
        lam = prefill.rate_at_chunk(chunk)
        m = lam * prefill.step_s(chunk)
        assert 2000 * m / -math.expm1(-m) == pytest.approx(chunk, rel=1e-6)
        assert prefill.chunk_at(lam) == pytest.approx(chunk, rel=1e-3)


@pytest.mark.parametrize("metric, limit", [("ttft_mean_s", 0.8), ("ttft_p99_s", 1.5), ("utilization", 0.9)])
def test_the_prefill_pools_rate_meets_its_limit_there(metric, limit):
    prefill, _, _ = pools()
    rate = prefill.max_rate(metric, limit)
    assert 0 < rate < prefill.saturation_rate
    assert getattr(prefill.at_rate(rate), metric) == pytest.approx(limit, rel=1e-3)
    assert getattr(prefill.at_rate(rate * 1.01), metric) > limit


def test_a_decode_pool_prefills_nothing_and_beats_the_aggregated_tpot():
    _, decode, aggregated = pools()
    assert decode.prefill_tokens == 0 and decode.features.kv_transferred
    # Every sequence holds its whole prompt and half its output, as on the aggregated replica.
    assert decode.max_batch_fit == aggregated.max_batch_fit
    lam = 0.5 * aggregated.saturation_rate
    assert latencies_at(decode, lam).tpot_s < latencies_at(aggregated, lam).tpot_s
    assert max_rate(decode, "tpot_s", 0.04) > 2 * max_rate(aggregated, "tpot_s", 0.04)


def test_split_groups_share_the_limits_that_span_both_pools():
    assert split_options(False, False) == [Split()]
    groups = split_options(True, True)
    assert len(groups) == 4
    g = groups[0]
    assert g.share("decode", "ttft_mean_s") + g.share("prefill", "ttft_mean_s") == pytest.approx(1.0)
    assert g.share("decode", "e2e_p99_s") + g.share("prefill", "e2e_p99_s") == pytest.approx(1.0)


@pytest.mark.parametrize("engine_id", ["vllm", "sglang", "trtllm"])
@pytest.mark.parametrize("load", [0.3, 0.7])
def test_closed_form_pools_agree_with_the_tandem_simulator(engine_id, load):
    # 12,000-token prompts: beyond vLLM's and SGLang's 8,192-token chunk, whole on TensorRT-LLM (no chunking).
    prefill, decode, _ = pools(engine_id, i=12000, o=300)
    lam = load * min(prefill.saturation_rate, decode.saturation_rate)
    closed_ttft = prefill.at_rate(lam).ttft_mean_s + latencies_at(decode, lam).ttft_mean_s
    closed_tpot = latencies_at(decode, lam).tpot_s
    # The prefill side replays as an engine whose requests end at their first token, at the launch's cap.
    cap = max(1, math.ceil(prefill.budget / 12000))
    prefill_engine = replica_profile(input_tokens=12000, output_tokens=1, **shape_of(engine_id, batch=cap))
    sim = simulate_pools(prefill_engine, prefill.transfer_s, decode, poisson_requests(lam, 1500, 12000, 300, 7),
                         1, 1, seed=7)
    assert closed_ttft * 1e3 == pytest.approx(sim.ttft_ms.mean, rel=0.2)
    assert closed_tpot * 1e3 == pytest.approx(sim.tpot_ms.mean, rel=0.15)
    assert lam * 300 == pytest.approx(sim.tokens_per_s, rel=0.05)


def test_engines_differ_in_who_samples_the_first_token_and_when_the_cache_leaves():
    (vp, vd, _), (sp, sd, _) = pools("vllm", 12000, 300), pools("sglang", 12000, 300)
    # SGLang sends each 8,192-token chunk's cache after its forward: only the last 3,808 tokens' follow the prefill.
    assert kv_bytes_per_elem("fp8", engine_for("sglang")) == kv_bytes_per_elem("fp8", engine_for("vllm"))
    assert sp.transfer_s == pytest.approx(vp.transfer_s * (12000 - 8192) / 12000, rel=0.02)
    # vLLM's decode instance samples the first token (one step); SGLang's streams the one the prefill side sent.
    assert not vd.features.first_token_sent and sd.features.first_token_sent
    lam = 0.3 * vd.saturation_rate
    sent = replace(vd, features=replace(vd.features, first_token_sent=True), states={})
    own_step = latencies_at(vd, lam).ttft_mean_s - latencies_at(sent, lam).ttft_mean_s
    assert own_step == pytest.approx(vd.decode_step_s(latencies_at(vd, lam).running_batch), rel=0.1)


def spec_with(tmp_path, **search):
    base = load_spec(ROOT / "examples" / "disaggregated-long-prompts.yaml")
    return base.model_copy(update={"search": base.search.model_copy(update=search)})


def test_the_long_prompt_example_splits_prefill_and_decode_onto_different_devices(tmp_path):
    work = resolve_workload(load_spec(ROOT / "examples" / "disaggregated-long-prompts.yaml"), CAT)
    result = solve(work, CAT)
    assert result.status == "optimal"
    plan = result.plan
    roles = {p.evaluation.candidate.role: p for p in plan.parts}
    assert set(roles) == {"prefill", "decode"}
    assert roles["prefill"].evaluation.candidate.device != roles["decode"].evaluation.candidate.device
    # A pair shares one checkpoint, so one KV cache format.
    assert roles["prefill"].evaluation.candidate.precision == roles["decode"].evaluation.candidate.precision
    checks = check_plan(work, CAT, plan)
    assert not violations(checks)
    assert {c.id for c in checks} >= {"demand.served", "demand.decoded", "latency.ttft_mean", "latency.tpot"}
    p, d = roles["prefill"].evaluation.metrics, roles["decode"].evaluation.metrics
    # A request's TTFT is the prefill side's (with the transfer) plus the decode side's wait and first step.
    assert p["ttft_mean_ms"] == pytest.approx(p["pool_ttft_mean_ms"] + d["pool_ttft_mean_ms"])
    assert p["pool_ttft_mean_ms"] > p["kv_transfer_ms"] > 0
    assert d["tpot_ms"] == p["tpot_ms"] <= work.spec.workload.slo.tpot_ms
    # Only the decode pool produces the answer's tokens.
    assert plan.totals["tokens_per_s"] == pytest.approx(12 * 400)


def test_the_checker_refuses_a_vllm_decode_pool_narrower_than_its_prefill_pool():
    from dataclasses import replace

    from planner.check import rebuild

    work = resolve_workload(spec_with(None, disaggregated="always"), CAT)
    plan = solve(work, CAT).plan
    parts = {p.evaluation.candidate.role: p.evaluation.candidate for p in plan.parts}
    wide, narrow = max(parts["prefill"].parallel.tp, 2), 1
    swapped = [(replace(parts["prefill"], parallel=replace(parts["prefill"].parallel, tp=wide)), 1.0),
               (replace(parts["decode"], parallel=replace(parts["decode"].parallel, tp=narrow, dp=8)), 1.0)]
    checks = {c.id: c for c in check_plan(work, CAT, rebuild(work, CAT, swapped))}
    assert not checks["demand.decode_tp"].satisfied
    assert checks["demand.decoded"].satisfied


def test_never_and_always_restrict_the_serving_mode():
    never = resolve_workload(spec_with(None, disaggregated="never"), CAT)
    plan = solve(never, CAT).plan
    assert not plan.disaggregated
    always = resolve_workload(spec_with(None, disaggregated="always"), CAT)
    assert solve(always, CAT).plan.disaggregated


def test_the_explanation_prices_the_serving_mode_not_chosen():
    result = CliRunner().invoke(main, ["solve", str(ROOT / "examples" / "disaggregated-long-prompts.yaml"),
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.output)
    assert data["plan"]["mode"] == "disaggregated"
    assert {r for r in data["plan"]["roles"]} == {"prefill", "decode"}
    why = [w for w in data["alternatives"] if w["kind"] == "serving mode"]
    assert why and why[0]["name"] == "aggregated" and why[0]["objective"] > data["objective"]["value"]


def test_solve_simulate_replays_both_pools_together():
    result = CliRunner().invoke(main, ["simulate", str(ROOT / "examples" / "disaggregated-long-prompts.yaml"),
                                       "--requests", "600", "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    parts = json.loads(result.output)["parts"]
    assert len(parts) == 1 and parts[0]["configuration"].startswith("prefill ")
    assert parts[0]["simulated"]["tpot_ms"]["mean"] > 0


@pytest.mark.parametrize("extra, message", [
    ("  engine: trtllm-tensorrt\nsearch: {disaggregated: always}", "runs no disaggregated prefill/decode"),
    ("search: {disaggregated: sometimes}", "search.disaggregated"),
])
def test_a_disaggregated_spec_the_planner_cannot_take_is_refused_in_one_line(tmp_path, extra, message):
    path = tmp_path / "spec.yaml"
    path.write_text("name: t\nworkload:\n  kind: serving\n  model: llama-3.1-8b\n"
                    "  traffic: {requests_per_s: 1, input_tokens: 100, output_tokens: 50}\n" + extra + "\n")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert all(line.startswith("error: ") for line in result.output.strip().splitlines())


@pytest.mark.parametrize("engine, flags", [
    ("vllm", ["--kv-transfer-config", '{"kv_connector":"NixlConnector","kv_role":"kv_both"}']),
    ("sglang", ["--disaggregation-mode", "--disaggregation-transfer-backend", "mooncake"]),
    ("trtllm", ["cache_transceiver_config", "context_servers"]),
])
def test_emit_writes_each_pool_with_its_kv_connector(tmp_path, engine, flags):
    spec = tmp_path / "spec.yaml"
    spec.write_text((ROOT / "examples" / "disaggregated-long-prompts.yaml").read_text()
                    .replace("engine: vllm", f"engine: {engine}"))
    out = tmp_path / "launch"
    result = CliRunner().invoke(main, ["solve", str(spec), "--no-explain", "--emit", str(out)])
    assert result.exit_code == 0, result.output
    written = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()}
    assert {"prefill/launch.sh", "decode/launch.sh"} <= set(written)
    text = "\n".join(written.values())
    assert all(flag in text for flag in flags)
    if engine == "sglang":
        assert "--disaggregation-mode prefill" in written["prefill/launch.sh"]
        assert "--disaggregation-mode decode" in written["decode/launch.sh"]
    assert "route requests with" in written["README.md"]


def test_estimate_one_pool_reports_its_own_side():
    import json

    path = str(ROOT / "examples" / "disaggregated-long-prompts.yaml")
    prefill = CliRunner().invoke(main, ["estimate", path, "--device", "b200", "--tp", "4", "--precision", "fp8",
                                        "--role", "prefill", "--format", "json"])
    assert prefill.exit_code == 0, prefill.output
    data = json.loads(prefill.output)
    assert data["role"] == "prefill" and data["metrics"]["kv_transfer_ms"] > 0
    assert not any(c["id"].startswith("latency.tpot") for c in data["constraints"])
    decode = json.loads(CliRunner().invoke(main, ["estimate", path, "--device", "h200-sxm", "--tp", "8", "--precision",
                                                  "fp8", "--role", "decode", "--format", "json"]).output)
    assert {c["id"] for c in decode["constraints"]} >= {"latency.tpot"}
    assert not any(c["id"].startswith("latency.ttft") for c in decode["constraints"])
    refused = CliRunner().invoke(main, ["estimate", str(ROOT / "examples" / "llama3-8b-pretrain.yaml"), "--device",
                                        "h100-sxm", "--role", "prefill"])
    assert refused.exit_code == 2 and "--role prefill" in refused.output and "Traceback" not in refused.output


def test_markdown_and_html_reports_name_each_pool(tmp_path):
    path = str(ROOT / "examples" / "disaggregated-long-prompts.yaml")
    markdown = CliRunner().invoke(main, ["solve", path, "--format", "markdown", "--no-explain"])
    assert markdown.exit_code == 0 and "(prefill pool)" in markdown.output and "(decode pool)" in markdown.output
    out = tmp_path / "plan.html"
    assert CliRunner().invoke(main, ["solve", path, "--format", "html", "-o", str(out), "--no-explain"]).exit_code == 0
    page = out.read_text()
    assert "prefill pool</div>" in page and "decode pool</div>" in page
