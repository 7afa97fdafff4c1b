"""Sweeps (planner/sweep/): scenarios expanded from axes, run on a local pool and on a local Ray head with
identical results, resumed after an interruption, summarized; bad axes refused in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from planner.cli import main
from planner.sweep.run import done_keys, run_sweep
from planner.sweep.spec import load_sweep
from planner.sweep.summary import flips, read_results

ROOT = Path(__file__).resolve().parents[1]
AXES = [{"path": "workload.traffic.requests_per_s", "values": [2, 20]},
        {"path": "workload.slo.tpot_ms", "values": [30, 90]}]


def _sweep(folder: Path, axes=AXES, **extra) -> Path:
    shutil.copy(ROOT / "examples" / "llama3-70b-chat.yaml", folder / "chat.yaml")
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": "chat.yaml", "axes": axes, "time_limit_s": 20} | extra))
    return path


def _rows(results: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "solve_s"} for r in read_results(results)]


def test_the_shipped_example_expands_to_200_scenarios():
    sweep = load_sweep(ROOT / "examples" / "sweeps" / "chat-growth.yaml")
    assert len(sweep.scenarios) == 200
    assert len({s.key for s in sweep.scenarios}) == 200


def test_a_local_sweep_writes_one_row_per_scenario_and_the_summary_finds_the_flips(tmp_path):
    path = _sweep(tmp_path)
    result = CliRunner().invoke(main, ["sweep", str(path), "-o", str(tmp_path / "out"), "--workers", "2"])
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "out")
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert all(r["status"] == "optimal" for r in rows)
    by = {(r["axis:workload.traffic.requests_per_s"], r["axis:workload.slo.tpot_ms"]): r for r in rows}
    assert by[(20, 30)]["devices"] > by[(2, 30)]["devices"]  # ten times the traffic needs more devices
    changes = flips(read_results(tmp_path / "out"))
    assert any(f["axis"] == "workload.traffic.requests_per_s" for f in changes)
    summary = CliRunner().invoke(main, ["sweep", "--summarize", str(tmp_path / "out"), "--plot",
                                        str(tmp_path / "heat.png"), "--x", "workload.traffic.requests_per_s",
                                        "--y", "workload.slo.tpot_ms"])
    assert summary.exit_code == 0, summary.output
    assert "->" in summary.output and (tmp_path / "heat.png").stat().st_size > 1000


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path):
    first = load_sweep(_sweep(tmp_path, axes=[AXES[0] | {"values": [2]}, AXES[1]]))
    ran, skipped = run_sweep(first, tmp_path / "out", workers=1)
    assert (ran, skipped) == (2, 0)
    whole = load_sweep(_sweep(tmp_path))
    ran, skipped = run_sweep(whole, tmp_path / "out", workers=1)
    assert (ran, skipped) == (2, 2)  # only the scenarios the first run did not reach
    assert done_keys(tmp_path / "out") == {s.key for s in whole.scenarios}
    assert run_sweep(whole, tmp_path / "out", workers=1) == (0, 4)


def test_a_sweep_stopped_by_ctrl_c_keeps_what_finished(tmp_path, monkeypatch):
    from planner.sweep import run

    sweep = load_sweep(_sweep(tmp_path))
    real = run.run_scenario
    calls = []

    def stopping(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(run, "run_scenario", stopping)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, tmp_path / "out", workers=1)
    assert len(done_keys(tmp_path / "out")) == 2  # the two finished rows were written on the way out
    monkeypatch.setattr(run, "run_scenario", real)
    assert run_sweep(sweep, tmp_path / "out", workers=1) == (2, 2)


def test_the_ray_backend_gives_the_local_answers(tmp_path):
    import ray
    path = _sweep(tmp_path)
    sweep = load_sweep(path)
    run_sweep(sweep, tmp_path / "local", workers=1)
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        ran, _ = run_sweep(sweep, tmp_path / "ray", backend="ray")
    finally:
        ray.shutdown()
    assert ran == 4
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "local")


@pytest.mark.parametrize("axes, extra, where, message", [
    ([{"path": "workload.trafic.requests_per_s", "values": [1]}], {}, "axes[0]", "trafic"),
    ([{"path": "workload.traffic.requests_per_s", "range": {"start": 5, "stop": 1, "step": 1}}], {}, "axes[0]",
     "no values"),
    ([{"path": "workload.traffic.requests_per_s", "values": []}], {}, "axes[0]", "no values"),
    ([{"path": "workload.traffic.requests_per_s", "values": [1], "range": {"start": 1, "stop": 2, "step": 1}}], {},
     "axes[0]", "exactly one of values or range"),
    ([{"path": "workload.traffic.requests_per_s", "values": [-1]}], {}, "axes[0].values[0]", "greater than 0"),
    (AXES[:1] + [{"path": "workload.slo.tpot_ms", "values": [30]}], {"combine": "zip"}, "combine",
     "equal lengths"),
    ([{"path": "price_scenario", "values": ["nowhere.yaml"]}], {}, "axes[0].values[0]", "not found"),
])
def test_bad_axes_are_refused_in_one_line(tmp_path, axes, extra, where, message):
    path = _sweep(tmp_path, axes=axes, **extra)
    result = CliRunner().invoke(main, ["sweep", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and where in lines[0] and message in lines[0] and str(path) in lines[0]
    assert not (tmp_path / "out").exists()


def test_summarizing_a_folder_without_results_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["sweep", "--summarize", str(tmp_path)])
    assert result.exit_code == 2 and "no sweep results here" in result.output
