"""The Python API (planner/api.py): its reports equal the CLI's JSON on every example, and docs/API.md's
examples run as written."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner import api
from planner.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES)
def test_solve_reports_equal_the_cli_json_on_every_example(example):
    path = ROOT / "examples" / example
    cli = CliRunner().invoke(main, ["solve", str(path), "--format", "json", "--no-explain", "--reproducible"])
    assert cli.exit_code in (0, 3), cli.output
    report = api.solve(path, explain=False, reproducible=True)
    assert report.to_dict() == json.loads(cli.stdout)


def test_estimate_compare_and_simulate_reports_equal_the_cli_json():
    spec = ROOT / "examples" / "llama3-70b-chat.yaml"
    cli = CliRunner().invoke(main, ["estimate", str(spec), "--device", "h100-sxm", "--tp", "4", "--precision", "fp8",
                                    "--format", "json"])
    assert api.estimate(spec, device="h100-sxm", tp=4, precision="fp8").to_dict() == json.loads(cli.stdout)
    small = ROOT / "examples" / "small-model-serving.yaml"
    cli = CliRunner().invoke(main, ["compare", str(small), "--format", "json"])
    assert api.compare([small]).to_dict() == json.loads(cli.stdout)
    cli = CliRunner().invoke(main, ["simulate", str(spec), "--device", "h100-sxm", "--tp", "4", "--precision", "fp8",
                                    "--requests", "200", "--format", "json"])
    assert api.simulate(spec, device="h100-sxm", tp=4, precision="fp8", requests=200).to_dict() == json.loads(cli.stdout)


def test_tier_reports_equal_the_cli_json():
    spec = sorted((ROOT / "examples" / "edge").glob("*.yaml"))[0]
    cli = CliRunner().invoke(main, ["tier", str(spec), "--format", "json", "--no-explain"])
    assert cli.exit_code in (0, 3), cli.output
    assert api.tier(spec, explain=False).to_dict() == json.loads(cli.stdout)


def test_a_bad_spec_raises_the_planner_error_the_cli_prints():
    from planner.errors import SpecError

    with pytest.raises(SpecError) as err:
        api.solve({"name": "x", "workload": {"kind": "serving"}})
    assert err.value.problems and all(p.render() for p in err.value.problems)


def test_the_api_guide_runs_as_written(monkeypatch):
    monkeypatch.chdir(ROOT)
    failures, tried = doctest.testfile(str(ROOT / "docs" / "API.md"), module_relative=False,
                                       optionflags=doctest.ELLIPSIS)
    assert tried >= 10 and failures == 0
