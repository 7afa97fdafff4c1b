"""The command line through click's CliRunner: exit codes, message text, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# One known-valid configuration per shipped example, so `planner estimate` is exercised on all of them.
ESTIMATE_ARGS = {
    "llama3-70b-chat": ["--device", "h100-sxm", "--tp", "4", "--precision", "fp8"],
    "mixtral-moe-serving": ["--device", "h100-sxm", "--tp", "2", "--precision", "fp8"],
    "deepseek-v3-serving": ["--device", "h200-sxm", "--tp", "8", "--ep", "8", "--precision", "fp8"],
    "long-context-serving": ["--device", "h100-sxm", "--tp", "1", "--micro-batch", "8"],
    "small-model-serving": ["--device", "l4", "--precision", "int8", "--micro-batch", "8"],
    "llama3-8b-pretrain": ["--device", "h100-sxm", "--tp", "1", "--dp", "64", "--micro-batch", "1", "--recompute", "full"],
    "llama3-405b-pretrain": ["--device", "h100-sxm", "--tp", "8", "--pp", "16", "--dp", "64", "--recompute", "full"],
    "onprem-power-capped": ["--device", "h100-sxm", "--tp", "4", "--precision", "fp8"],
    "energy-min-finetune": ["--device", "h100-sxm", "--dp", "32", "--recompute", "full"],
    "impossible-tiny-budget": ["--device", "h100-sxm", "--tp", "8"],
    "yolov8-video": ["--device", "l4", "--precision", "int8", "--micro-batch", "4"],
    "spot-vs-ondemand-training": ["--device", "h100-sxm", "--dp", "16", "--pricing", "spot", "--recompute", "full"],
    "qwen3-32b-h200-peer": ["--device", "h200-sxm", "--tp", "4", "--precision", "fp8", "--micro-batch", "96"],
    "llama3-70b-h100-peer": ["--device", "h100-sxm", "--tp", "4", "--precision", "bf16", "--micro-batch", "32"],
    "llama3-8b-lora": ["--device", "h100-sxm"],
    "llama3-8b-qlora": ["--device", "l4", "--recompute", "full"],
    "llama3-70b-speculative-chat": ["--device", "h200-sxm", "--tp", "1", "--precision", "fp8", "--micro-batch", "16"],
    "rag-prefix-cache": ["--device", "h100-sxm", "--precision", "fp8", "--micro-batch", "32"],
    "deepseek-v3-mi300x-vs-h200": ["--device", "mi300x", "--tp", "8", "--ep", "8", "--attention-dp", "--precision", "fp8"],
    "deepseek-v3-h200-peer": ["--device", "h200-sxm", "--tp", "8", "--ep", "8", "--attention-dp", "--precision", "fp8"],
    "disaggregated-long-prompts": ["--device", "h200-sxm", "--tp", "8", "--precision", "fp8", "--role", "decode"],
    "deepseek-v3-h100-wide-ep": ["--device", "h100-sxm", "--tp", "16", "--ep", "16", "--attention-dp", "--precision", "fp8",
                                 "--system", "hgx-h100-8-ib"],
}


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_every_example_has_an_estimate_case():
    assert sorted(ESTIMATE_ARGS) == sorted(p.stem for p in EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(ESTIMATE_ARGS))
def test_estimate_runs_on_every_example(name):
    result = run("estimate", str(EXAMPLES / f"{name}.yaml"), *ESTIMATE_ARGS[name], "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["devices"] >= 1
    assert data["metrics"]["memory_gib_per_device"] > 0
    assert {c["id"] for c in data["constraints"]} >= {"memory.fits_device"}


def test_estimate_table_output():
    result = run("estimate", str(EXAMPLES / "llama3-70b-chat.yaml"), "--device", "h100-sxm", "--tp", "4")
    assert result.exit_code == 0, result.output
    assert "TTFT p99" in result.output and "Where the time goes" in result.output


def test_schema_is_json():
    result = run("schema")
    assert result.exit_code == 0
    assert "workload" in json.loads(result.output)["properties"]


def test_validate_ok():
    result = run("validate", str(EXAMPLES / "llama3-70b-chat.yaml"))
    assert result.exit_code == 0 and result.output.startswith("ok:")


@pytest.mark.parametrize("what", ["devices", "systems", "models", "prices"])
def test_catalog_list(what):
    result = run("catalog", "list", what, "--format", "json")
    assert result.exit_code == 0
    assert len(json.loads(result.output)) > 3


def test_catalog_show_and_typo():
    assert run("catalog", "show", "h100-sxm").exit_code == 0
    bad = run("catalog", "show", "h100-sxn")
    assert bad.exit_code == 2 and "Did you mean `h100-sxm`?" in bad.output


def bad_input(tmp_path: Path, text: str, *extra: str):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    return run("estimate", str(spec), "--device", "h100-sxm", *extra)


GOOD = EXAMPLES.joinpath("small-model-serving.yaml").read_text()


@pytest.mark.parametrize("text,extra,expected", [
    ("name: x\nworkload: [unclosed\n", (), "malformed YAML"),
    (GOOD.replace("traffic:", "trafic:"), (), "Did you mean `traffic`?"),
    (GOOD.replace("requests_per_s: 2", "requests_per_s: -1"), (), "workload.traffic.requests_per_s"),
    (GOOD.replace("llama-3.1-8b", "llama-3.1-8"), (), "unknown model `llama-3.1-8`"),
    (GOOD, ("--tp", "3"), "does not divide the 32 attention heads"),
    (GOOD.replace("model: llama-3.1-8b", "model: llama-3.1-405b"), ("--tp", "1", "--precision", "bf16"), "NO"),
])
def test_bad_input_is_one_clear_line(tmp_path, text, extra, expected):
    result = bad_input(tmp_path, text, *extra)
    assert "Traceback" not in result.output
    assert expected in result.output
    if expected != "NO":
        assert result.exit_code == 2
        assert "bad.yaml" in result.output or "tp=3" in result.output


def test_unknown_device_suggests(tmp_path):
    result = run("estimate", str(EXAMPLES / "small-model-serving.yaml"), "--device", "h100sxm")
    assert result.exit_code == 2 and "Did you mean `h100-sxm`?" in result.output


def test_missing_file():
    result = run("validate", "no-such-spec.yaml")
    assert result.exit_code == 2 and "file not found" in result.output


# ------------------------------------------------------------------------------ serving engines, simulate


def test_estimate_reports_mean_and_tail_latencies_and_the_engine():
    result = run("estimate", str(EXAMPLES / "llama3-70b-chat.yaml"), "--device", "h100-sxm", "--tp", "4",
                 "--precision", "fp8", "--format", "json")
    assert result.exit_code == 0, result.output
    m = json.loads(result.output)["metrics"]
    for key in ("ttft_mean_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms", "tpot_mean_ms", "tpot_p99_ms",
                "e2e_mean_ms", "e2e_p99_ms", "tokens_per_s", "max_requests_per_s"):
        assert m[key] is not None and m[key] > 0, key
    assert m["ttft_p50_ms"] <= m["ttft_p90_ms"] <= m["ttft_p99_ms"]
    assert m["tpot_mean_ms"] <= m["tpot_p99_ms"]
    assert m["engine"] == "vllm" and m["max_num_seqs"] == 1024  # vLLM's default cap on an 80 GB H100


def test_simulate_a_fixed_configuration_as_json():
    result = run("simulate", str(EXAMPLES / "llama3-70b-chat.yaml"), "--device", "h100-sxm", "--tp", "4",
                 "--precision", "fp8", "--requests", "300", "--seed", "3", "--format", "json")
    assert result.exit_code == 0, result.output
    part = json.loads(result.output)["parts"][0]
    sim = part["simulated"]
    assert sim["requests"] == 300 and sim["measured_requests"] > 200
    for stat in ("ttft_ms", "tpot_ms", "e2e_ms"):
        assert set(sim[stat]) == {"mean", "p50", "p90", "p99"}
        assert sim[stat]["p50"] <= sim[stat]["p99"]
    assert {v["id"] for v in part["slo"]} == {"latency.ttft_p99", "latency.tpot"}


def test_simulate_without_flags_replays_the_plan_solve_picks():
    result = run("simulate", str(EXAMPLES / "small-model-serving.yaml"), "--requests", "200", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["parts"][0]["replicas"] >= 1


def test_solve_simulate_reports_both_columns():
    result = run("solve", str(EXAMPLES / "small-model-serving.yaml"), "--simulate", "--no-explain", "--format", "json")
    assert result.exit_code == 0, result.output
    sims = json.loads(result.output)["simulation"]
    assert sims and all("closed_form_ms" in v and "simulated_ms" in v for v in sims[0]["slo"])


def test_a_bad_trace_row_is_one_line_with_file_and_row(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n0.0,100,10\n0.5,abc,10\n")
    result = run("simulate", str(EXAMPLES / "small-model-serving.yaml"), "--device", "l4", "--precision", "int8",
                 "--trace", str(trace))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{trace}: row 3: a value is not a number" in result.output


def test_a_trace_missing_a_column_names_the_header(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("time,input_tokens,output_tokens\n0,1,1\n")
    result = run("simulate", str(EXAMPLES / "small-model-serving.yaml"), "--device", "l4", "--trace", str(trace))
    assert result.exit_code == 2 and "missing column arrival_s" in result.output


def test_an_unknown_engine_gets_did_you_mean(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text((EXAMPLES / "small-model-serving.yaml").read_text().replace("kind: serving",
                                                                               "kind: serving\n  engine: sglan"))
    result = run("solve", str(spec))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "workload.engine: unknown serving engine `sglan`. Did you mean `sglang`?" in result.output


def test_simulate_refuses_a_training_spec():
    result = run("simulate", str(EXAMPLES / "llama3-8b-pretrain.yaml"))
    assert result.exit_code == 2 and "replays LLM serving" in result.output


def test_estimate_context_parallel_and_hybrid_sharding_flags():
    spec = str(EXAMPLES / "llama3-8b-pretrain.yaml")
    base = ["estimate", spec, "--device", "h100-sxm", "--dp", "16", "--recompute", "full", "--format", "json"]
    plain = json.loads(run(*base).output)
    cp = json.loads(run(*base, "--cp", "2").output)
    assert cp["parallel"]["cp"] == 2 and cp["metrics"]["devices"] == 2 * plain["metrics"]["devices"]
    # p4d's 4 EFA cards for 8 GPUs (6.25 GB/s a GPU) leave full sharding across two nodes communication-bound;
    # on p5 (4 cards a GPU) its gathers hide behind compute and sharding in the node buys nothing.
    slow = ["estimate", spec, "--device", "a100-80gb", "--system", "hgx-a100-80gb-8-efa1", "--dp", "16",
            "--recompute", "full", "--format", "json"]
    full = json.loads(run(*slow, "--zero", "3").output)
    hybrid = json.loads(run(*slow, "--zero", "3", "--shard-group", "8").output)
    # Gathers inside an NVSwitch node instead of across 16 GPUs on two nodes: faster, more memory.
    assert hybrid["metrics"]["tokens_per_s"] > full["metrics"]["tokens_per_s"]
    assert hybrid["metrics"]["memory_gib_per_device"] > full["metrics"]["memory_gib_per_device"]


def test_estimate_rejects_cp_for_serving_and_training_on_an_inference_chip():
    result = run("estimate", str(EXAMPLES / "llama3-70b-chat.yaml"), "--device", "h100-sxm", "--tp", "4", "--cp", "2")
    assert result.exit_code != 0 and "--cp applies to training only" in result.output
    assert "Traceback" not in result.output
    result = run("estimate", str(EXAMPLES / "llama3-8b-lora.yaml"), "--device", "inferentia2")
    assert result.exit_code != 0 and "inference accelerator" in result.output


def test_unknown_framework_and_adapter_method_are_one_line_errors(tmp_path):
    text = (EXAMPLES / "llama3-8b-lora.yaml").read_text()
    spec = tmp_path / "spec.yaml"
    spec.write_text(text.replace("  adapter:", "  framework: torchtitn\n  adapter:"))
    result = run("solve", str(spec))
    assert result.exit_code != 0 and "torchtitan" in result.output and "workload.framework" in result.output
    spec.write_text(text.replace("method: lora", "method: dora"))
    result = run("solve", str(spec))
    assert result.exit_code != 0 and "workload.adapter.method" in result.output and "Traceback" not in result.output


def test_catalog_lists_frameworks_and_new_devices():
    result = run("catalog", "list", "frameworks", "--format", "json")
    assert {f["id"] for f in json.loads(result.output)} >= {"megatron-core", "torchtitan", "deepspeed"}
    devices = {d["id"] for d in json.loads(run("catalog", "list", "devices", "--format", "json").output)}
    assert devices >= {"gh200-96gb", "gb300", "b300", "h800-sxm", "h20", "mi355x", "tpu7x"}


def test_catalog_list_filters_by_device_prefix_provider_and_region():
    rows = json.loads(run("catalog", "list", "prices", "--device", "h100", "--provider", "aws", "--region",
                          "us-east-1", "--format", "json").output)
    assert rows and all(r["provider"] == "aws" and r["region"] == "us-east-1" for r in rows)
    assert all(r["system"].startswith("hgx-h100") for r in rows)
    devices = json.loads(run("catalog", "list", "devices", "--device", "mi3", "--format", "json").output)
    assert {d["id"] for d in devices} == {"mi300x", "mi325x", "mi355x"}
    refused = run("catalog", "list", "engines", "--region", "us-east-1")
    assert refused.exit_code != 0 and "no region column" in refused.output


def test_catalog_tables_print_ids_whole_at_100_columns():
    result = CliRunner(env={"COLUMNS": "100"}).invoke(main, ["catalog", "list", "devices"])
    assert "h100-96gb-hbm2e" in result.output and "gb300" in result.output
    assert "h100-pc…" not in result.output


def test_plans_rest_on_trusted_prices_and_say_what_lower_confidence_would_give(tmp_path):
    result = run("solve", str(EXAMPLES / "llama3-70b-chat.yaml"), "--format", "json", "--no-explain")
    data = json.loads(result.output)
    offering = data["plan"]["offering"]
    assert offering["confidence"] in ("medium", "high") and offering["as_of"]
    assert any("min_price_confidence: low" in note for note in data["price_notes"])
    spec = tmp_path / "low.yaml"
    spec.write_text((EXAMPLES / "llama3-70b-chat.yaml").read_text().replace("search:", "search:\n  min_price_confidence: low", 1))
    low = json.loads(run("solve", str(spec), "--format", "json", "--no-explain").output)
    assert low["objective"]["value"] < data["objective"]["value"]
    assert low["price_notes"] == []  # nothing was left out
    text = run("solve", str(EXAMPLES / "llama3-70b-chat.yaml"), "--no-explain").output
    assert "confidence, as of" in text and "Cheaper at lower confidence" in text



def test_estimate_of_a_configuration_that_does_not_fit_exits_with_the_reason_first():
    result = run("estimate", str(EXAMPLES / "llama3-405b-pretrain.yaml"), "--device", "h100-sxm", "--dp", "8")
    assert result.exit_code == 3
    assert result.output.splitlines()[0].startswith("does not fit: ")
    assert "Traceback" not in result.output


def test_estimate_priced_as_owned_hardware():
    result = run("estimate", str(EXAMPLES / "onprem-power-capped.yaml"), "--device", "h100-sxm", "--tp", "4",
                 "--precision", "fp8", "--pricing", "owned", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    # No rental: the cost per hour is the site's electricity for the devices' power.
    assert data["offering"] is None and 0 < data["metrics"]["usd_per_hour"] < 1.0
    text = run("estimate", str(EXAMPLES / "onprem-power-capped.yaml"), "--device", "h100-sxm", "--tp", "4",
               "--precision", "fp8", "--pricing", "owned").output
    assert "owned hardware: electricity at the spec's onprem site" in text


def test_estimate_refuses_a_system_that_carries_another_device():
    result = run("estimate", str(EXAMPLES / "llama3-70b-chat.yaml"), "--device", "h100-sxm", "--tp", "4",
                 "--system", "mi300x-8")
    assert result.exit_code == 2 and "system `mi300x-8` carries mi300x, not h100-sxm" in result.output
    assert "hgx-h100-8" in result.output and "Traceback" not in result.output
