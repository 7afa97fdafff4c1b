"""Calibration (planner/calibrate/): fitted factors recovered from synthetic runs, overlays that move plans,
provenance on every prediction, and one-line errors for bad runs files and overlays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from planner.calibrate.fit import Case, calibrate, predict
from planner.calibrate.overlay import with_params
from planner.calibrate.runs import Run, RunsFile, load_runs
from planner.catalog.loader import load_catalogs
from planner.cli import main
from planner.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]

TRAINING = [(1, 8), (2, 4), (8, 1)]  # (tp, dp) of llama3-8b pre-training on 8 H100s
SERVING = [(4, 16), (8, 32), (2, 64)]  # (tp, running-sequence cap) of a 70B chat replica at 0.5 req/s


def _write_specs(folder: Path) -> None:
    (folder / "train.yaml").write_text((ROOT / "examples" / "llama3-8b-pretrain.yaml").read_text())
    chat = yaml.safe_load((ROOT / "examples" / "llama3-70b-chat.yaml").read_text())
    chat["workload"]["traffic"]["requests_per_s"] = 0.5  # one replica, well below saturation
    (folder / "serve.yaml").write_text(yaml.safe_dump(chat))


def _synthetic_runs(folder: Path, truth: dict, training_precision: str = "bf16") -> Path:
    """Runs 'measured' by the model itself on a catalog whose factors are `truth`."""
    _write_specs(folder)
    catalog = with_params(load_catalogs(), truth, "truth")
    runs = [{"name": f"train-tp{tp}", "spec": "train.yaml",
             "layout": {"device": "h100-sxm", "tp": tp, "dp": dp, "precision": training_precision, "micro_batch": 1}}
            for tp, dp in TRAINING]
    runs += [{"name": f"serve-tp{tp}", "spec": "serve.yaml",
              "layout": {"device": "h100-sxm", "tp": tp, "precision": "fp8", "micro_batch": cap}}
             for tp, cap in SERVING]
    for run in runs:
        blank = {"step_time_s": 1.0} if run["spec"] == "train.yaml" else {"tpot_mean_ms": 1.0, "ttft_mean_ms": 1.0}
        spec = load_spec(folder / run["spec"])
        case = Case(0, Run.model_validate(run | {"measured": blank}), spec, str(folder / run["spec"]),
                    spec.workload.kind, "nvidia-hopper", "vllm" if spec.workload.kind == "serving" else None,
                    run["layout"]["precision"])
        run["measured"] = predict(case, catalog)
    path = folder / "runs.yaml"
    path.write_text(yaml.safe_dump({"runs": runs}, sort_keys=False))
    return path


def test_calibration_recovers_the_factors_that_made_the_runs(tmp_path):
    shipped = load_catalogs()
    hopper, vllm = shipped.families["nvidia-hopper"], shipped.engines["vllm"]
    truth = {("family", "nvidia-hopper", "matmul_efficiency"): hopper.matmul_efficiency.value * 0.85,
             ("family", "nvidia-hopper", "memory_bw_efficiency"): hopper.memory_bw_efficiency.value * 0.9,
             ("engine", "vllm", "step_overhead_ms"): vllm.step_overhead_ms.value * 1.5,
             ("engine", "vllm", "request_overhead_ms"): 60.0}
    path = _synthetic_runs(tmp_path, truth)
    fit = calibrate(load_runs(path), path, shipped)
    assert set(fit.params) == set(truth)
    for param, value in truth.items():
        assert fit.params[param] == pytest.approx(value, rel=0.02), param
    assert max(abs(e) for e in fit.before) > 0.05  # the shipped factors were off ...
    assert max(abs(e) for e in fit.after) < 0.005  # ... and the fit explains every run
    assert max(abs(e) for e in fit.leave_one_out) < 0.02


def test_the_overlay_is_written_read_back_and_moves_the_plan(tmp_path):
    spec = str(ROOT / "examples" / "spot-vs-ondemand-training.yaml")
    shipped = CliRunner().invoke(main, ["solve", spec, "--format", "json", "--no-explain", "--reproducible"])
    assert shipped.exit_code == 0, shipped.output
    before = json.loads(shipped.stdout)["plan"]
    assert before["device"] == "h100-sxm" and before["precision"] == "fp8"
    assert before["predicted"]["provenance"] == "estimated"
    # FP8 runs that say H100 GEMMs reach a third of what the catalog assumes make H100 time dearer.
    truth = {("family", "nvidia-hopper", "fp8_matmul_efficiency"): 0.2}
    path = _synthetic_runs(tmp_path, truth, training_precision="fp8")
    overlay = tmp_path / "calibration.yaml"
    result = CliRunner().invoke(main, ["calibrate", str(path), "-o", str(overlay)])
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(overlay.read_text())
    assert written["families"]["nvidia-hopper"]["fp8_matmul_efficiency"] == pytest.approx(0.2, rel=0.02)
    assert written["leave_one_out"]["figures"] == 9
    moved = CliRunner().invoke(main, ["solve", spec, "--format", "json", "--no-explain", "--reproducible",
                                      "--calibration", str(overlay)])
    assert moved.exit_code == 0, moved.output
    after = json.loads(moved.stdout)["plan"]
    assert (after["device"], after["cost"]["usd_per_job"]) != (before["device"], before["cost"]["usd_per_job"])
    if after["device"] == "h100-sxm":
        assert after["cost"]["usd_per_job"] > before["cost"]["usd_per_job"]
        assert after["predicted"]["provenance"] == "calibrated"
    layout = [f"--{k}={before['parallel'][k]}" for k in ("tp", "pp", "dp")]
    estimate = CliRunner().invoke(main, ["estimate", spec, "--device", "h100-sxm", *layout, "--precision", "fp8",
                                         "--format", "json", "--calibration", str(overlay)])
    assert estimate.exit_code == 0, estimate.output
    assert json.loads(estimate.stdout)["provenance"]["provenance"] == "calibrated"


def test_every_prediction_says_how_it_was_obtained_and_its_expected_error():
    result = CliRunner().invoke(main, ["solve", str(ROOT / "examples" / "llama3-70b-chat.yaml"), "--format", "json",
                                       "--no-explain", "--reproducible"])
    predicted = json.loads(result.stdout)["plan"]["predicted"]
    accuracy = load_catalogs().accuracy
    assert predicted["provenance"] == "estimated"
    assert predicted["expected_error_pct"]["tokens_per_s"] == accuracy[("serving", "tokens_per_s")].p90_abs_pct
    assert "left out" in predicted["expected_error_basis"]


def _runs_file(tmp_path: Path, runs: list) -> Path:
    _write_specs(tmp_path)
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump({"runs": runs}))
    return path


GOOD = {"spec": "train.yaml", "layout": {"device": "h100-sxm", "dp": 8}, "measured": {"step_time_s": 40.0}}


@pytest.mark.parametrize("runs, where, message", [
    ([], "runs", "at least 1"),
    ([GOOD | {"spec": "missing.yaml"}], "runs[0].spec", "not found"),
    ([GOOD | {"layout": {"device": "h100"}}], "runs[0].layout.device", "unknown device"),
    ([GOOD | {"measured": {}}], "runs[0].measured", "give at least one of"),
    ([GOOD | {"measured": {"step_time_s": -3}}], "runs[0].measured.step_time_s", "greater than 0"),
    ([GOOD | {"measured": {"tpot_mean_ms": 20}}], "runs[0].measured", "cannot be calibrated on tpot_mean_ms"),
    ([GOOD | {"layout": {"device": "h100-sxm", "tp": "yes"}}], "runs[0].layout.tp", ""),
])
def test_bad_runs_files_are_refused_in_one_line(tmp_path, runs, where, message):
    path = _runs_file(tmp_path, runs)
    result = CliRunner().invoke(main, ["calibrate", str(path), "-o", str(tmp_path / "out.yaml")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and where in lines[0] and message in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "out.yaml").exists()


@pytest.mark.parametrize("overlay, message", [
    ({"families": {"nvidia-hoper": {"matmul_efficiency": 0.4}}}, "Did you mean `nvidia-hopper`"),
    ({"families": {"nvidia-hopper": {"tdp_w": 0.4}}}, "not a parameter calibration sets"),
    ({"engines": {"vllm": {"step_overhead_ms": 500}}}, "outside step_overhead_ms's plausible range"),
])
def test_bad_overlays_are_refused_in_one_line(tmp_path, overlay, message):
    path = tmp_path / "calibration.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "kind": "planner-calibration", "fitted_from": "x"} | overlay))
    result = CliRunner().invoke(main, ["solve", str(ROOT / "examples" / "llama3-70b-chat.yaml"),
                                       "--calibration", str(path)])
    assert result.exit_code == 2
    assert message in result.output and str(path) in result.output and "Traceback" not in result.output


def test_runs_file_model_refuses_unknown_keys():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        RunsFile.model_validate({"runs": [GOOD | {"measurd": {}}]})


def test_the_shipped_calibration_example_fits_the_published_runs(tmp_path):
    """examples/calibration/runs.yaml: torchtitan's published 405B runs (BF16 and Float8 on 128 H100s)."""
    result = CliRunner().invoke(main, ["calibrate", str(ROOT / "examples" / "calibration" / "runs.yaml"), "-o",
                                       str(tmp_path / "c.yaml"), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["families"]["nvidia-hopper"]) == {"matmul_efficiency", "fp8_matmul_efficiency"}
    assert report["after"]["median_abs_pct"] < report["before"]["median_abs_pct"]
    # Each run alone informs its precision's factor, so leaving it out leaves that factor as shipped.
    assert report["leave_one_out"] == report["before"]
