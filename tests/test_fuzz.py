"""Seeded random mutations of every shipped example, every file kind: no internal error, no hang, and no
nonsense accepted.

Each case changes one thing of a valid file: a number made infinite, NaN, boolean, negative or absurdly
large (must be refused: exit 2), or a value swapped for another type, a key dropped, a list emptied, a
string made long (must never crash: exit 0, 2, 3 or 4). Mutations that `planner validate` accepts are then
run through the file's own command, so validation and the pipeline agree.
"""

from __future__ import annotations

import copy
import math
import os
import random
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from planner.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPECS = sorted(EXAMPLES.glob("*.yaml")) + sorted((EXAMPLES / "edge").glob("*.yaml"))
FLEETS = sorted((EXAMPLES / "fleets").glob("*.yaml"))
SCENARIOS = sorted((EXAMPLES / "scenarios").glob("*.yaml"))
MUTATIONS_PER_FILE = 6
# More seeds for a longer hunt: PLANNER_FUZZ_SEEDS=20 pytest tests/test_fuzz.py (the suite runs one).
SEEDS = range(int(os.environ.get("PLANNER_FUZZ_SEEDS", "1")))
# Numbers no field accepts: every numeric field is finite, positive or at least zero, and bounded.
NONSENSE_NUMBERS = [math.inf, -math.inf, math.nan, True, -1, 1e30]
OTHER_VALUES = [None, "", "x" * 300, [], {}, [1, 2], "1e3", 0]
CLEAN_EXITS = {0, 2, 3, 4}


def _leaves(data, path=()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield path + (key,), value
            yield from _leaves(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield path + (i,), value
            yield from _leaves(value, path + (i,))


def _set(data, path, value):
    for key in path[:-1]:
        data = data[key]
    if value is _DROP:
        del data[path[-1]]
    else:
        data[path[-1]] = value


_DROP = object()


def mutations(path: Path, seed: int):
    """(description, mutated data, must_refuse) for one file, reproducible from the seed."""
    rng = random.Random(f"{path.name}:{seed}")
    data = yaml.safe_load(path.read_text())
    leaves = list(_leaves(data))
    numeric = [(p, v) for p, v in leaves if isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = []
    for i in range(MUTATIONS_PER_FILE):
        mutated = copy.deepcopy(data)
        if numeric and i % 2 == 0:
            where, _ = rng.choice(numeric)
            value = rng.choice(NONSENSE_NUMBERS)
            must_refuse = True
        else:
            where, _ = rng.choice(leaves)
            value = rng.choice(OTHER_VALUES + [_DROP])
            must_refuse = False
        _set(mutated, where, value)
        shown = "dropped" if value is _DROP else repr(value)[:20]
        out.append((f"{'.'.join(map(str, where))} = {shown}", mutated, must_refuse))
    return out


def _cases():
    for path in SPECS + FLEETS:
        for seed in SEEDS:
            for what, data, must_refuse in mutations(path, seed):
                yield pytest.param(path, data, must_refuse, id=f"{path.stem}:{what}")


def _command(path: Path, target: Path) -> list[str]:
    if "edge" in path.parts:
        return ["tier", str(target), "--no-explain"]
    if "fleets" in path.parts:
        return ["compare", str(target), "--time-limit", "10"]
    return ["solve", str(target), "--no-explain", "--time-limit", "10"]


def _clean(result) -> None:
    assert result.exit_code in CLEAN_EXITS, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output, result.output
    if result.exit_code == 2:
        first = result.output.strip().splitlines()[0]
        assert first.startswith(("error:", "Error:", "Usage:")), result.output


@pytest.mark.parametrize("path, data, must_refuse", list(_cases()))
def test_a_mutated_example_is_refused_cleanly_or_planned(path, data, must_refuse):
    # Written beside the original: relative includes and fleet members resolve as they do for it.
    target = path.parent / f"_fuzz_{path.name}"
    target.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        checked = CliRunner().invoke(main, ["validate", str(target)])
        _clean(checked)
        if must_refuse:
            assert checked.exit_code == 2, f"accepted nonsense: {checked.output}"
        if checked.exit_code == 0:
            ran = CliRunner().invoke(main, _command(path, target))
            _clean(ran)
            assert ran.exit_code != 2, f"validate accepted what the command refuses: {ran.output}"
    finally:
        target.unlink()


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
@pytest.mark.parametrize("seed", range(4))
def test_a_mutated_price_scenario_is_refused_cleanly_or_applied(tmp_path, path, seed):
    for what, data, must_refuse in mutations(path, seed)[:2]:
        scenario = tmp_path / "scenario.yaml"
        scenario.write_text(yaml.safe_dump(data))
        result = CliRunner().invoke(main, ["solve", str(EXAMPLES / "small-model-serving.yaml"), "--no-explain",
                                           "--price-scenario", str(scenario)])
        _clean(result)
        if must_refuse:
            assert result.exit_code == 2, f"{what}: accepted nonsense: {result.output}"


CSV = (EXAMPLES / "scenarios" / "aws.csv").read_text().splitlines()


@pytest.mark.parametrize("seed", range(12))
def test_a_mutated_price_csv_is_refused_cleanly_or_read(tmp_path, seed):
    rng = random.Random(seed)
    rows = [line.split(",") for line in CSV]
    row = rng.randrange(1, len(rows))
    column = rng.randrange(len(rows[row]))
    rows[row][column] = rng.choice(["nan", "inf", "-1", "", "1e30", "x", "\u00e9", "0"])
    if rng.random() < 0.3:
        rows[row] = rows[row][: rng.randrange(len(rows[row]))]  # a short row
    body = "\n".join(",".join(r) for r in rows) + "\n"
    prices = tmp_path / "aws.csv"
    prices.write_bytes(body.encode("latin-1" if rng.random() < 0.2 else "utf-8"))
    result = CliRunner().invoke(main, ["solve", str(EXAMPLES / "small-model-serving.yaml"), "--no-explain",
                                       "--prices", str(prices)])
    _clean(result)


# ---- the file kinds of sweeps, calibration and launch configurations

SWEEP = EXAMPLES / "sweeps" / "chat-growth.yaml"
RUNS = EXAMPLES / "calibration" / "runs.yaml"


@pytest.mark.parametrize("seed", range(3))
def test_a_mutated_sweep_is_refused_cleanly_or_expanded(seed):
    from planner.errors import PlannerError
    from planner.sweep.spec import load_sweep

    for what, data, must_refuse in mutations(SWEEP, seed):
        target = SWEEP.parent / f"_fuzz_{SWEEP.name}"
        target.write_text(yaml.safe_dump(data))
        try:
            load_sweep(target)
        except PlannerError as exc:
            assert exc.problems and all(p.render() for p in exc.problems), what
        else:
            assert not must_refuse, f"{what}: accepted nonsense"
        finally:
            target.unlink()


@pytest.mark.parametrize("seed", range(3))
def test_a_mutated_runs_file_is_refused_cleanly_or_fitted(tmp_path, seed):
    for what, data, must_refuse in mutations(RUNS, seed)[:4]:
        target = RUNS.parent / f"_fuzz_{RUNS.name}"
        target.write_text(yaml.safe_dump(data))
        try:
            result = CliRunner().invoke(main, ["calibrate", str(target), "-o", str(tmp_path / "c.yaml")])
        finally:
            target.unlink()
        _clean(result)
        if must_refuse:
            assert result.exit_code == 2, f"{what}: accepted nonsense: {result.output}"


def test_a_mutated_calibration_overlay_is_refused_cleanly_or_applied(tmp_path):
    overlay = tmp_path / "calibration.yaml"
    assert CliRunner().invoke(main, ["calibrate", str(RUNS), "-o", str(overlay)]).exit_code == 0
    for seed in range(3):
        for what, data, must_refuse in mutations(overlay, seed)[:4]:
            bad = tmp_path / "bad.yaml"
            bad.write_text(yaml.safe_dump(data))
            result = CliRunner().invoke(main, ["estimate", str(EXAMPLES / "llama3-8b-pretrain.yaml"), "--device",
                                               "h100-sxm", "--dp", "8", "--calibration", str(bad)])
            _clean(result)
            if must_refuse and what.split(".")[0] in ("families", "engines"):
                assert result.exit_code == 2, f"{what}: accepted nonsense: {result.output}"


def test_a_mutated_solve_result_is_refused_cleanly_or_emitted(tmp_path):
    import json

    solved = CliRunner().invoke(main, ["solve", str(EXAMPLES / "deepseek-v3-serving.yaml"), "--format", "json",
                                       "--no-explain", "--reproducible"])
    source = tmp_path / "result.json"
    source.write_text(solved.stdout)
    as_yaml = tmp_path / "result.yaml"  # mutations() reads YAML, which JSON is
    as_yaml.write_text(solved.stdout)
    for seed in range(4):
        for what, data, must_refuse in mutations(as_yaml, seed):
            bad = tmp_path / "bad.json"
            bad.write_text(json.dumps(data, allow_nan=True))
            out = tmp_path / f"out{seed}"
            result = CliRunner().invoke(main, ["emit", str(bad), str(out)])
            _clean(result)
            if must_refuse and what.split(".")[0] in ("plan", "workload") and not what.startswith(
                    ("plan.predicted", "plan.cost", "plan.offering.usd", "plan.offering.source")):
                assert result.exit_code == 2, f"{what}: accepted nonsense: {result.output}"
            if out.exists():
                import shutil

                shutil.rmtree(out)
