"""Bad input of every file kind is refused in one line with exit 2, never a traceback, never accepted.

Each test names one class of input the planner once crashed on or silently accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from planner.cli import main
from planner.errors import SolveError
from planner.units import MAX_SOLVER_INT, to_bound, to_fixed

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HEADER = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region"
P5 = "p5.48xlarge,H100,8,192,2048,55.04,14.246,us-east-1"


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin)


def refused(result, *needles: str) -> str:
    """The command exited 2 with one clean error line per problem containing every needle."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    for needle in needles:
        assert needle in result.output, result.output
    return result.output


def spec_file(tmp_path: Path, name: str = "spec.yaml", **changes) -> Path:
    data = yaml.safe_load((EXAMPLES / "small-model-serving.yaml").read_text())
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


# ----------------------------------------------------------------------------------------- price CSV

@pytest.mark.parametrize("body, needles", [
    (f"{HEADER}\np5.48xlarge,H100,8,192,2048,nan,14.246,us-east-1\n", ("prices.csv:2", "Price", "finite")),
    (f"{HEADER}\np5.48xlarge,H100,8,192,2048,inf,14.246,us-east-1\n", ("prices.csv:2", "Price", "finite")),
    (f"{HEADER}\np5.48xlarge,H100,8,192,2048,1e9,14.246,us-east-1\n", ("prices.csv:2", "too large")),
    (f"{HEADER}\np5.48xlarge,H100,8,192\n", ("prices.csv:2", "4 columns where the header has 8")),
    (f"{HEADER}\n{P5}\np5.48xlarge,H100,8,192,2048,40,14.246,us-east-1\n", ("prices.csv:3", "55.04", "row 2")),
], ids=["nan", "inf", "huge", "short-row", "conflicting-duplicate"])
def test_bad_price_csv_rows_are_refused_at_their_line(tmp_path, body, needles):
    csv = tmp_path / "prices.csv"
    csv.write_text(body)
    refused(run("solve", str(spec_file(tmp_path)), "--prices", str(csv), "--no-explain"), *needles)


def test_a_price_csv_in_another_encoding_is_refused_at_the_line(tmp_path):
    csv = tmp_path / "prices.csv"
    csv.write_bytes(f"{HEADER}\n{P5}\n".encode() + "p5.48xlarge,H100,8,192,2048,55.04,14.2,São Paulo\n".encode("latin-1"))
    refused(run("solve", str(spec_file(tmp_path)), "--prices", str(csv), "--no-explain"), "prices.csv:3", "UTF-8")


def test_a_price_csv_with_a_byte_order_mark_and_a_repeated_row_is_read(tmp_path):
    csv = tmp_path / "prices.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\n{P5}\n{P5}\n".encode())
    result = run("solve", str(spec_file(tmp_path, search__devices=["h100-sxm"])), "--prices", str(csv),
                 "--no-explain", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "prices: 2 offerings from" in result.output  # on-demand and spot, the repeat merged


# ------------------------------------------------------------------------------------- price scenario

def test_a_scenario_rule_naming_an_unknown_provider_is_refused(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\nrules:\n  - match: {provider: awz}\n    scale: 0.5\n")
    refused(run("solve", str(spec_file(tmp_path)), "--price-scenario", str(scenario), "--no-explain"),
            "rules[0].match.provider", "unknown provider `awz`", "aws")


def test_a_scenario_with_an_infinite_factor_is_refused(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\nrules:\n  - match: {provider: aws}\n    scale: .inf\n")
    refused(run("solve", str(spec_file(tmp_path)), "--price-scenario", str(scenario)), "rules[0].scale", "finite")


# -------------------------------------------------------------------------------------- spec numbers

@pytest.mark.parametrize("field, value, needle", [
    ("limits__max_devices", 1e30, "limits.max_devices: too large (got 1e+30): at most 1,000,000"),
    ("limits__power_kw", 1e30, "limits.power_kw: too large (got 1e+30): at most 1,000,000,000,000,000"),
    ("limits__budget_usd_per_hour", 1e20, "limits.budget_usd_per_hour: too large"),
    ("workload__traffic__requests_per_s", 1e9, "requests_per_s: too large (got 1e+09): at most 1,000,000"),
    ("search__spot__interruptions_per_hour", 1e6, "interruptions_per_hour: too large"),
    ("limits__inventory", {"h100-sxm": -8}, "limits.inventory.h100-sxm"),
], ids=["max-devices", "power", "budget", "rate", "interruptions", "negative-inventory"])
def test_numbers_no_deployment_has_are_refused_by_validate_and_solve(tmp_path, field, value, needle):
    if field.startswith("search__spot"):
        spec = spec_file(tmp_path, search__spot={"interruptions_per_hour": value, "checkpoint_interval_min": 30,
                                                 "checkpoint_s": 60, "restart_min": 5})
    else:
        spec = spec_file(tmp_path, **{field: value})
    for command in ("validate", "solve"):
        refused(run(command, str(spec)), needle)


def test_a_large_but_valid_limit_binds_nothing_instead_of_overflowing_the_solver(tmp_path):
    result = run("solve", str(spec_file(tmp_path, limits__power_kw=1e14, limits__budget_usd_per_hour=1e14)),
                 "--no-explain", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "optimal"


def test_solver_integers_are_bounded():
    assert to_bound(1e15, 1e6) == MAX_SOLVER_INT  # a limit beyond reach binds nothing
    assert to_fixed(2.5, 10) == 25
    with pytest.raises(SolveError, match="too large to plan"):
        to_fixed(1e15, 1e6)  # a figure beyond reach is an input error, not a CP-SAT TypeError


@pytest.mark.parametrize("field", ["search__devices", "search__providers", "search__degrees"])
def test_an_empty_search_list_is_refused_not_read_as_every_value(tmp_path, field):
    value = {"tp": []} if field == "search__degrees" else []
    refused(run("validate", str(spec_file(tmp_path, **{field: value}))), "is empty; leave it out")


# ------------------------------------------------------------------------------------------ YAML files

def test_a_yaml_alias_bomb_is_refused(tmp_path):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nname: bomb\ndescription: *a8\n")
    refused(run("validate", str(bomb)), "bomb.yaml", "aliases", "at most 1,000,000")


def test_a_spec_file_in_another_encoding_is_refused_at_the_line(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes((EXAMPLES / "small-model-serving.yaml").read_bytes() + "# café\n".encode("latin-1"))
    refused(run("validate", str(path)), "spec.yaml:11", "UTF-8")


SECRET = "hunter2-do-not-print"


@pytest.mark.parametrize("how", ["absolute", "dot-dot", "symlink"])
def test_include_is_confined_to_the_spec_folder_and_never_echoes_what_it_refuses(tmp_path, how):
    secret = tmp_path / "secret.yaml"
    secret.write_text(f"password: {SECRET}\n")
    folder = tmp_path / "specs"
    folder.mkdir()
    name = {"absolute": str(secret), "dot-dot": "../secret.yaml", "symlink": "link.yaml"}[how]
    if how == "symlink":
        (folder / "link.yaml").symlink_to(secret)
    spec = spec_file(folder, include=[name])
    output = refused(run("validate", str(spec)), "outside the spec's folder")
    assert SECRET not in output and "password" not in output


def test_include_of_a_shipped_profile_and_of_a_file_beside_the_spec_still_work(tmp_path):
    (tmp_path / "mine.yaml").write_text("description: mine\nlimits: {max_devices: 4}\n")
    spec = spec_file(tmp_path, include=["chat-interactive", "mine.yaml"])
    result = run("validate", str(spec))
    assert result.exit_code == 0, result.output


def test_a_spec_can_come_from_standard_input():
    text = (EXAMPLES / "small-model-serving.yaml").read_text()
    result = run("solve", "-", "--no-explain", "--format", "json", stdin=text)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "optimal"
    refused(run("validate", "-", stdin="workload: [\n"), "-:", "malformed YAML")


# ------------------------------------------------------------------------------------- fleets and tiers

def test_a_fleet_listing_one_workload_twice_is_refused(tmp_path):
    fleet = yaml.safe_load((EXAMPLES / "fleets" / "three-workloads.yaml").read_text())
    fleet["fleet"] = [str(EXAMPLES / "small-model-serving.yaml"), str(EXAMPLES / "." / "small-model-serving.yaml")]
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet))
    refused(run("compare", str(path)), "fleet", "twice")


def test_a_fleet_with_negative_inventory_is_refused(tmp_path):
    fleet = yaml.safe_load((EXAMPLES / "fleets" / "three-workloads.yaml").read_text())
    fleet["inventory"] = {"h100-sxm": -8}
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet))
    refused(run("compare", str(path)), "inventory.h100-sxm")


def test_fleet_json_is_the_same_on_every_run():
    first = run("compare", str(EXAMPLES / "fleets" / "three-workloads.yaml"), "--format", "json")
    second = run("compare", str(EXAMPLES / "fleets" / "three-workloads.yaml"), "--format", "json")
    assert first.exit_code == 0, first.output
    assert first.output == second.output


@pytest.mark.parametrize("cloud, needle", [
    ({"providers": ["awz"]}, "cloud.providers[0]: unknown provider `awz`"),
    ({"regions": ["us-east-9"]}, "cloud.regions[0]: unknown region `us-east-9`"),
    ({"devices": []}, "is empty"),
])
def test_a_tier_spec_naming_an_unknown_cloud_is_refused(tmp_path, cloud, needle):
    data = yaml.safe_load((EXAMPLES / "edge" / "kiosk-assistant-3b.yaml").read_text())
    data["cloud"] = cloud
    path = tmp_path / "tier.yaml"
    path.write_text(yaml.safe_dump(data))
    refused(run("tier", str(path)), needle)


@pytest.mark.parametrize("field, value", [("count", 1e30), ("electricity_usd_per_kwh", 1e30)])
def test_tier_site_numbers_no_site_has_are_refused(tmp_path, field, value):
    data = yaml.safe_load((EXAMPLES / "edge" / "kiosk-assistant-3b.yaml").read_text())
    data["site"][field] = value
    path = tmp_path / "tier.yaml"
    path.write_text(yaml.safe_dump(data))
    refused(run("tier", str(path)), f"site.{field}: too large")


@pytest.mark.parametrize("video, needle", [
    ({"codec": "h263"}, "workloads[0].video.codec: Input should be 'h264', 'h265', 'av1', 'mjpeg' or 'none'"),
    ({"codec": "h264", "resolution": [1920]}, "workloads[0].video.resolution: too few values: entry 2 is missing"),
])
def test_a_camera_stream_the_planner_cannot_decode_is_refused_at_its_field(tmp_path, video, needle):
    data = yaml.safe_load((EXAMPLES / "edge" / "ten-cameras-yolov8s.yaml").read_text())
    data["workloads"][0]["video"] = video
    path = tmp_path / "tier.yaml"
    path.write_text(yaml.safe_dump(data))
    out = refused(run("tier", str(path)), needle)
    assert len(out.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------- plots

@pytest.mark.parametrize("target, needle", [("missing/front.png", "does not exist"), ("front.txt", "`.txt`"),
                                            (".", "is a folder")])
def test_a_plot_that_cannot_be_written_is_refused_before_any_work(tmp_path, target, needle):
    spec = spec_file(tmp_path)
    refused(run("compare", str(spec), "--pareto", "cost,latency", "--plot", str(tmp_path / target)), needle)


# ------------------------------------------------------------------------------------------ time limit

def test_a_spent_deadline_skips_the_optional_work_and_says_which():
    import time

    from planner.catalog.loader import load_catalogs
    from planner.evaluate import resolve_workload
    from planner.explain import explain
    from planner.solve import SolverSettings, solve, with_every_price
    from planner.spec import load_spec

    catalog = load_catalogs()
    work = resolve_workload(load_spec(EXAMPLES / "llama3-70b-chat.yaml"), catalog)
    result = solve(work, catalog)
    spent = SolverSettings(deadline=time.monotonic() - 1.0)
    with_every_price(work, catalog, result, spent)
    assert result.skipped == ["the look at lower-confidence prices"]
    expl = explain(work, catalog, result, [], spent)
    assert expl.solves == 0 and not expl.limits and not expl.alternatives
    assert expl.skipped == ["what each limit costs", "why not each other choice", "where the decision flips"]
    assert spent.seconds_left() > 0  # a solve asked after the deadline still gets a moment to answer


def test_the_time_limit_bounds_the_command_not_each_solve():
    result = run("solve", str(EXAMPLES / "llama3-405b-pretrain.yaml"), "--time-limit", "0.1", "--format", "json")
    assert result.exit_code in (0, 4), result.output
    data = json.loads(result.output)
    # Enumerating the 405B layouts alone takes longer than 0.1 s: nothing optional may run after it.
    assert data.get("explanation") is None or data["explanation"]["skipped"]
