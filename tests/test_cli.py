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
    "llama3-8b-pretrain": ["--device", "h100-sxm", "--tp", "1", "--dp", "64", "--micro-batch", "1"],
    "llama3-405b-pretrain": ["--device", "h100-sxm", "--tp", "8", "--pp", "16", "--dp", "64"],
    "onprem-power-capped": ["--device", "h100-sxm", "--tp", "4", "--precision", "fp8"],
    "energy-min-finetune": ["--device", "h100-sxm", "--dp", "32"],
    "impossible-tiny-budget": ["--device", "h100-sxm", "--tp", "8"],
    "yolov8-video": ["--device", "l4", "--precision", "int8", "--micro-batch", "4"],
    "spot-vs-ondemand-training": ["--device", "h100-sxm", "--dp", "16", "--pricing", "spot"],
    "qwen3-32b-h200-peer": ["--device", "h200-sxm", "--tp", "4", "--precision", "fp8", "--micro-batch", "96"],
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
