"""Loading specs: includes, defaults, and clear one-line errors for bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planner.errors import SpecError
from planner.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


SERVING = """
name: t
workload:
  kind: serving
  model: llama-3.1-8b
  traffic: {requests_per_s: 2, input_tokens: 512, output_tokens: 128}
"""


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_loads(example):
    spec = load_spec(example)
    assert spec.name


def test_include_merges_profile_under_spec(tmp_path):
    spec = load_spec(write(tmp_path, SERVING + "include: [chat-interactive]\n"))
    assert spec.workload.slo.ttft_p99_ms == 450 and spec.workload.slo.tpot_ms == 40


def test_spec_values_override_profile(tmp_path):
    text = SERVING.replace("traffic:", "slo: {tpot_ms: 25}\n  traffic:") + "include: [chat-interactive]\n"
    spec = load_spec(write(tmp_path, text))
    assert spec.workload.slo.tpot_ms == 25  # the spec wins
    assert spec.workload.slo.ttft_p99_ms == 450  # the profile fills the rest


def one_error(tmp_path, text) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text))
    return "\n".join(p.render() for p in info.value.problems)


def test_malformed_yaml_names_file_and_line(tmp_path):
    msg = one_error(tmp_path, "name: t\nworkload: {kind: serving\n")
    assert "spec.yaml:" in msg and "malformed YAML" in msg


def test_unknown_key_suggests_the_right_one(tmp_path):
    msg = one_error(tmp_path, SERVING.replace("requests_per_s", "request_per_s"))
    assert "workload.traffic.request_per_s" in msg
    assert "Did you mean `requests_per_s`?" in msg


def test_negative_values_are_rejected_with_path(tmp_path):
    msg = one_error(tmp_path, SERVING.replace("requests_per_s: 2", "requests_per_s: -2"))
    assert "workload.traffic.requests_per_s" in msg and "greater than 0" in msg


def test_zero_tokens_rejected(tmp_path):
    msg = one_error(tmp_path, SERVING.replace("input_tokens: 512", "input_tokens: 0"))
    assert "workload.traffic.input_tokens" in msg


def test_unknown_profile_suggests(tmp_path):
    msg = one_error(tmp_path, SERVING + "include: [chat-interactiv]\n")
    assert "unknown constraint profile `chat-interactiv`" in msg and "Did you mean `chat-interactive`?" in msg


def test_training_needs_exactly_one_batch_size(tmp_path):
    text = """
name: t
workload: {kind: training, model: llama-3-8b, tokens: 1.0e9, seq_len: 2048}
"""
    msg = one_error(tmp_path, text)
    assert "global_batch_tokens or global_batch_sequences" in msg


def test_all_problems_reported_at_once(tmp_path):
    text = SERVING.replace("requests_per_s: 2", "requests_per_s: -2").replace("input_tokens: 512", "input_tokens: 0")
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text))
    assert len(info.value.problems) == 2
    assert all(p.line for p in info.value.problems)


def test_device_names_as_people_type_them_expand_to_the_variants(tmp_path):
    from planner.catalog.loader import load_catalogs
    from planner.errors import did_you_mean
    from planner.evaluate import resolve_workload
    from planner.spec import WorkloadSpec

    catalog = load_catalogs()
    spec = WorkloadSpec.model_validate({
        "name": "aliases", "workload": {"kind": "serving", "model": "llama-3.1-8b",
                     "traffic": {"requests_per_s": 5, "input_tokens": 512, "output_tokens": 128},
                     "slo": {"ttft_p99_ms": 2000, "tpot_ms": 50}},
        "search": {"devices": ["h100", "L4:1", "mi300x"]}})
    devices = resolve_workload(spec, catalog).spec.search.devices
    assert devices == ["h100-96gb-hbm2e", "h100-nvl", "h100-pcie", "h100-sxm", "l4", "mi300x"]
    # A name that prefixes several ids lists them all; a typo still gets the closest spelling.
    assert "`h100-pcie`" in did_you_mean("h100", catalog.accelerators)
    assert did_you_mean("mi300", catalog.accelerators) == " Did you mean `mi300x`?"
    assert did_you_mean("h100sxm", catalog.accelerators) == " Did you mean `h100-sxm`?"


@pytest.mark.parametrize("value, fix", [(".inf", "give a finite number"), (".nan", "give a finite number"),
                                        ("yes", "give a number, not true/false"), ("true", "give a number, not true/false")])
def test_non_numbers_in_number_fields_are_refused(tmp_path, value, fix):
    from click.testing import CliRunner

    from planner.cli import main

    spec = tmp_path / "spec.yaml"
    text = (Path(__file__).resolve().parents[1] / "examples" / "llama3-70b-chat.yaml").read_text()
    spec.write_text(re.sub(r"requests_per_s: [0-9.]+", f"requests_per_s: {value}", text))
    for command in ("validate", "solve"):
        result = CliRunner().invoke(main, [command, str(spec)])
        assert result.exit_code == 2 and fix in result.output and "Traceback" not in result.output, result.output
        assert "requests_per_s" in result.output


def test_repeats_merge_and_a_batch_below_one_sequence_is_refused(tmp_path):
    from planner.spec import Search

    assert Search.model_validate({"devices": ["h100-sxm"] * 1000 + ["l4"]}).devices == ["h100-sxm", "l4"]
    spec = tmp_path / "spec.yaml"
    text = (Path(__file__).resolve().parents[1] / "examples" / "llama3-8b-pretrain.yaml").read_text()
    spec.write_text(text.replace("global_batch_tokens: 4.0e6", "global_batch_tokens: 100"))
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    assert "less than one sequence of seq_len 8192 tokens" in err.value.problems[0].render()


def test_time_limit_must_be_finite():
    from click.testing import CliRunner

    from planner.cli import main

    example = str(Path(__file__).resolve().parents[1] / "examples" / "llama3-70b-chat.yaml")
    result = CliRunner().invoke(main, ["solve", example, "--time-limit", "nan"])
    assert result.exit_code == 2 and "not a finite number of seconds" in result.output
