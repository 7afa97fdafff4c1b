"""`planner tier`: the edge performance model, one focused test per tier constraint unit, the checker on
every returned plan, the explanations against independent solves, bad input, and the command line."""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.catalog.loader import load_catalogs
from planner.cli import main
from planner.errors import SpecError
from planner.perf.edge import edge_llm, edge_targets, measurement_index
from planner.perf.edge_vision import edge_vision, model_vision
from planner.perf.shapes import llm_footprint
from planner.tier import plan_tier
from planner.tier.questions import tiers
from planner.tier.check import check_tier_plan
from planner.tier.spec import TierSpec, load_tier_spec
from planner.tier.units import TIER_UNITS

ROOT = Path(__file__).resolve().parents[1]
EDGE_EXAMPLES = sorted((ROOT / "examples" / "edge").glob("*.yaml"))
CAT = load_catalogs()


def spec_of(**changes) -> TierSpec:
    """A one-camera-group vision spec with a reachable cloud region; `changes` are deep-merged."""
    data = {
        "name": "t",
        "site": {"count": 1, "electricity_usd_per_kwh": 0.1},
        "network": {"links": [{"from": "site", "to": "isp", "rtt_ms": 10, "bandwidth_mbps": 100},
                              {"from": "isp", "to": "aws/us-east-1", "rtt_ms": 10}]},
        "workloads": [{"name": "cam", "kind": "vision", "model": "yolov8n", "streams": 4, "fps": 30, "frame_kb": 60,
                       "precisions": {"int8": 0.99, "fp16": 1.0}}],
        "edge_devices": ["hailo-8", "jetson-orin-nano-super", "jetson-agx-orin-64gb", "coral-edge-tpu"],
    }
    return TierSpec.model_validate(_merge(data, changes))


def llm_spec(**changes) -> TierSpec:
    data = {
        "name": "t",
        "site": {"count": 200, "electricity_usd_per_kwh": 0.1},
        "network": {"links": [{"from": "site", "to": "isp", "rtt_ms": 10, "bandwidth_mbps": 10},
                              {"from": "isp", "to": "aws/us-east-1", "rtt_ms": 10}]},
        "workloads": [{"name": "chat", "kind": "llm", "model": "llama-3.2-3b", "requests_per_hour": 40,
                       "input_tokens": 400, "output_tokens": 200, "precisions": {"int4": 0.97, "fp16": 1.0}}],
        "edge_devices": ["jetson-orin-nano-super", "jetson-agx-orin-64gb"],
        "cloud": {"devices": ["t4", "l4"]},
    }
    return TierSpec.model_validate(_merge(data, changes))


def _merge(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if key == "workload":  # changes to the first workload
            out["workloads"][0].update(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def solved(spec: TierSpec, explain: bool = False):
    result = plan_tier(spec, CAT, explain=explain)
    if result.plan.options:
        assert result.check_problems == [], result.check_problems
        assert all(c.satisfied for c in result.checks), [c.as_dict() for c in result.checks if not c.satisfied]
    return result


def chosen(result, workload="cam"):
    return result.plan.of(workload)


# ---------------------------------------------------------------------------------------------- perf model


def test_vision_latency_is_overhead_plus_roofline_plus_activations_by_hand():
    target = edge_targets(CAT.edge_devices, CAT.edge_families, "jetson-orin-nano-super")[0]
    shape = CAT.models["yolov8s"].shape
    fam = target.family
    got = model_vision(target, shape, "int8").latency_s
    # A share of INT8 work at the FP16 rate (16.75 of 33.5 TOPS).
    share = fam.int8_fp16_share.value
    peak = 1 / ((1 - share) / 33.5e12 + share / 16.75e12)
    compute = 28.6e9 / (peak * fam.compute_efficiency.value)
    memory = 11.2e6 / (102e9 * fam.memory_bw_efficiency.value)
    # One byte per INT8 element, 640 x 640 input pixels.
    activations = 640 * 640 * fam.activation_bytes_per_pixel.value / (102e9 * fam.memory_bw_efficiency.value)
    assert got == pytest.approx(fam.framework_overhead_ms.value / 1000 + max(compute, memory) + activations)
    # Resolution scales the FLOPs with the pixel count.
    half = model_vision(target, shape, "int8", (320, 320)).breakdown["compute"]
    assert half == pytest.approx(compute / 4)


def test_weights_beyond_on_chip_memory_stream_over_the_host_link():
    target = edge_targets(CAT.edge_devices, CAT.edge_families, "coral-edge-tpu")[0]
    small = model_vision(target, CAT.models["yolov8n"].shape, "int8")
    large = model_vision(target, CAT.models["yolov8m"].shape, "int8")
    assert small.breakdown["weight_streaming"] == 0
    assert large.breakdown["weight_streaming"] == pytest.approx((25.9e6 - 8e6) / 0.64e9)


def test_a_published_measurement_replaces_the_model_and_scales_with_the_power_mode():
    index = measurement_index(list(CAT.edge_measurements), CAT.edge_devices)
    hailo = edge_targets(CAT.edge_devices, CAT.edge_families, "hailo-8")[0]
    # The zoo's figures are hailortcli's (a C++ harness): they stand for an optimized pipeline only.
    got = edge_vision(hailo, CAT.models["yolov8n"].shape, "yolov8n", "int8", None, index, "optimized")
    assert got.basis == "hailo-mz-hailo8-yolov8n-bs1-v333" and got.fps_capacity == pytest.approx(1036)
    app = edge_vision(hailo, CAT.models["yolov8n"].shape, "yolov8n", "int8", None, index, "framework")
    assert app.basis == "model" and app.latency_s > got.latency_s
    # A run on the catalog's own host (the Pi 5 under the card) wins over the zoo's x86 figure.
    pi = edge_vision(hailo, CAT.models["yolov8s"].shape, "yolov8s", "int8", None, index, "optimized")
    assert pi.basis == "ai-pipestream-yolov8s-h8-hailortcli-benchmark-pi5" and pi.fps_capacity == pytest.approx(309.58)
    agx = edge_targets(CAT.edge_devices, CAT.edge_families, "jetson-orin-nano-super")
    top = edge_llm(agx[0], llm_footprint(CAT.models["llama-3.2-3b"].shape), "llama-3.2-3b", "int4", 100, 100, index)
    low = edge_llm(agx[1], llm_footprint(CAT.models["llama-3.2-3b"].shape), "llama-3.2-3b", "int4", 100, 100, index)
    assert 1 / top.profile.decode_step_s(1) == pytest.approx(43.07)  # the measured batch-1 rate
    assert 1 / low.profile.decode_step_s(1) == pytest.approx(43.07 * 10 / 16.75, rel=1e-6)  # fp16 peak ratio of the modes


def test_rpi5_runs_only_what_was_measured_on_it():
    index = measurement_index(list(CAT.edge_measurements), CAT.edge_devices)
    pi = edge_targets(CAT.edge_devices, CAT.edge_families, "rpi5-8gb")[0]
    assert edge_vision(pi, CAT.models["yolov8n"].shape, "yolov8n", "int8", None, index) is None
    measured = edge_vision(pi, CAT.models["yolo11n"].shape, "yolo11n", "fp32", None, index)
    assert measured.latency_s == pytest.approx(0.088026)


def test_llm_decode_streams_weights_at_the_family_bandwidth():
    target = edge_targets(CAT.edge_devices, CAT.edge_families, "jetson-agx-orin-64gb")[0]
    fp = llm_footprint(CAT.models["llama-3.1-8b"].shape)
    prof = edge_llm(target, fp, "llama-3.1-8b", "int4", 16, 2, {}).profile
    # Every weight but the input embedding table (a step looks up only its token's row); GGUF/MLC quantize the
    # head with the rest.
    weights = (fp.total_params - fp.embedding_params) * 0.5
    assert prof.decode_step_s(1) == pytest.approx(weights / (204.8e9 * target.family.memory_bw_efficiency.value), rel=0.02)


def test_a_model_that_does_not_fit_is_refused_with_the_reason():
    target = edge_targets(CAT.edge_devices, CAT.edge_families, "jetson-orin-nano-super")[0]
    why = edge_llm(target, llm_footprint(CAT.models["llama-3.1-70b"].shape), "llama-3.1-70b", "int4", 100, 100, {})
    assert isinstance(why, str) and "exceed" in why


def test_speech_window_by_hand():
    from planner.perf.speech import speech_window

    shape = CAT.models["whisper-small"].shape
    enc_params, dec_params = 12 * 12 * 768**2, 16 * 12 * 768**2 + 51865 * 768
    assert shape.encoder_params == enc_params and shape.decoder_params == dec_params
    enc_flops = 2 * enc_params * 1500 + 4 * 12 * 1500**2 * 768
    tok_flops = 2 * dec_params + 4 * 12 * 1500 * 768
    weights = 244e6 * 2
    dec_bytes = weights * dec_params / (enc_params + dec_params)
    kv = 2 * 12 * 1500 * 768 * 2
    got = speech_window(shape, "fp16", compute_flops=10e12, bandwidth_bytes=50e9, overhead_s=0.001, tokens=100,
                        batch=4)
    want = 0.001 + max(4 * enc_flops / 10e12, weights * enc_params / (enc_params + dec_params) / 50e9) \
        + 100 * max(4 * tok_flops / 10e12, (dec_bytes + 4 * kv) / 50e9)
    assert got.latency_s == pytest.approx(want)
    assert got.windows_per_s == pytest.approx(4 / want)


def test_speech_edge_rows_batch_the_streams_a_unit_carries():
    spec = load_tier_spec(ROOT / "examples" / "edge" / "drive-thru-speech.yaml")
    result = plan_tier(spec, CAT, explain=False)
    edge = [o for o in result.table.options if o.role == "edge"]
    cloud = [o for o in result.table.options if o.role == "cloud"]
    assert edge and cloud
    for o in edge:
        assert o.latency_ms <= 30_000 * spec.edge_max_utilization  # keeps up with 30-second windows
    one = [o for o in edge if o.units == 1 and o.device == "jetson-orin-nano-super"]
    two = [o for o in edge if o.units == 2 and o.device == "jetson-orin-nano-super" and o.mode == one[0].mode
           and o.precision == one[0].precision]
    if two:  # two units each carry one stream: shorter batches
        assert two[0].latency_ms < one[0].latency_ms


def _validate_edge():
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "validation"))
    import validate_edge

    return validate_edge


def test_edge_validation_in_sample_holds_and_the_catalog_carries_the_fit():
    validate_edge = _validate_edge()
    cases, _ = validate_edge.run(CAT)
    stats = validate_edge.summary(cases)
    assert stats["rows"] >= 100 and len({c.publisher for c in cases}) >= 5
    assert stats["median_abs_error"] <= 0.15 and stats["p90_abs_error"] <= 0.55, stats
    assert {c.batch for c in cases} > {1} and len({c.device for c in cases}) >= 7
    # Refitting from scratch lands on the values edge.yaml carries (rounded there to two figures).
    _, fitted = validate_edge.fit_all(CAT)
    sizes = fitted.pop("context_gflop")
    for family, values in fitted.items():
        for name, value in values.items():
            assert validate_edge._get(CAT, family, name) == pytest.approx(value, rel=0.05), (family, name)
    for device, size in sizes.items():
        assert CAT.edge_devices[device].context_gflop.value == pytest.approx(size, rel=0.05)


def test_edge_leave_one_source_out_stays_where_the_note_reports_it():
    # Measured 2026-12-03: 26.0% median, 68.3% p90 over 137 rows (Jetson alone 14.1% / 45.9%); the issue's
    # target (15% / 40%) is not met while Hailo has one publisher with comparable rows. This guards the
    # reported figures from drifting up unnoticed.
    validate_edge = _validate_edge()
    cases = validate_edge.leave_one_source_out(CAT)
    stats = validate_edge.summary(cases)
    assert stats["median_abs_error"] <= 0.28 and stats["p90_abs_error"] <= 0.75, stats
    jetson = validate_edge.summary([c for c in cases if c.family == "jetson-orin"])
    assert jetson["median_abs_error"] <= 0.16, jetson


def test_edge_energy_uses_the_power_a_published_run_drew():
    # The trtexec blog measured 12.49 W on an Orin Nano Super in its 25 W mode running YOLOv8n INT8.
    result = solved(spec_of(edge_devices=["jetson-orin-nano-super"], objective="energy",
                            workload={"streams": 2, "fps": 15, "tiers": ["edge"], "precisions": {"int8": 0.99},
                                      "video": {"codec": "none"}}))
    rows = {(o.mode, o.precision, o.units): o for o in result.table.of("cam") if o.role == "edge"}
    top = next(o for (mode, precision, units), o in rows.items() if mode == "MAXN_SUPER-25W" and units == 1)
    assert top.detail["power_basis"] == "hokwangchoi-orin-nano-super-yolov8n-640-int8-trtexec"
    idle = 25 * CAT.edge_families["jetson-orin"].power_at_idle.value
    watts = idle + top.detail["utilization"] * (12.49 - idle)
    assert top.energy_kwh_per_month == pytest.approx(watts * 730 / 1000, rel=1e-3)
    assert top.site_power_w == 25  # the site still provisions the mode's budget
    low = next(o for (mode, _, units), o in rows.items() if mode == "15W" and units == 1)
    assert "power_basis" not in low.detail and low.detail["busy_w"] == 15


def test_one_agx_orin_carries_300_fps_of_yolov8s_int8():
    # The report: the planner bought two AGX Orins for ten 30-FPS YOLOv8s streams, where Ultralytics
    # publishes 3.0-3.4 ms per INT8 frame (about 300 FPS) on one.
    result = solved(spec_of(edge_devices=["jetson-agx-orin-64gb"],
                            workload={"model": "yolov8s", "streams": 10, "fps": 30, "tiers": ["edge"],
                                      "precisions": {"int8": 0.99}, "video": {"codec": "none"}}))
    assert [o.units for o in chosen(result)] == [1]


def test_edge_catalog_peaks_are_dense_and_below_the_top_mode():
    for device in CAT.edge_devices.values():
        top = device.modes[0]
        for mode in device.modes[1:]:
            assert mode.power_w <= top.power_w, device.id
            for p, v in mode.peak_dense_tflops.items():
                assert v <= top.peak_dense_tflops[p], (device.id, mode.name, p)
        if device.host:
            assert device.host in CAT.edge_devices


# ---------------------------------------------------------------------------------------------- one test per unit


def test_tier_latency_frame_budget_rules_out_slow_devices():
    base = solved(spec_of(edge_devices=["coral-edge-tpu", "jetson-orin-nano-super"],
                          workload={"streams": 1, "fps": 5}))
    assert chosen(base)[0].device == "coral-edge-tpu"  # the cheapest box, 72 ms per frame at 5 FPS
    fast = solved(spec_of(edge_devices=["coral-edge-tpu", "jetson-orin-nano-super"],
                          workload={"streams": 1, "fps": 5, "latency_budget_ms": 40}))
    assert chosen(fast)[0].device == "jetson-orin-nano-super"
    assert chosen(fast)[0].latency_ms <= 40


def test_tier_latency_of_an_llm_is_ttft_including_the_network():
    result = solved(llm_spec(workload={"ttft_ms": 5000}))
    cloud = [o for o in result.table.options if o.role == "cloud"]
    assert cloud and all(o.latency_ms > o.detail["cloud_latency_ms"] + o.detail["rtt_ms"] - 1e-9 for o in cloud)
    tight = solved(llm_spec(workload={"ttft_ms": 15}))  # below the 20 ms round trip: only the edge is left
    assert tight.plan.value is None or all(o.tier == "edge" for o in tight.plan.options)


def test_tier_tpot_limits_the_token_rate():
    loose = solved(llm_spec(site={"count": 1}, workload={"tpot_ms": 1000}))
    strict = solved(llm_spec(site={"count": 1}, workload={"tpot_ms": 40}))
    assert all(o.tpot_ms <= 40 for o in strict.plan.options)
    assert strict.plan.value >= loose.plan.value


def test_tier_locality_keeps_raw_video_on_site():
    anywhere = solved(spec_of(edge_devices=["amd-ryzen-ai-300"], workload={"streams": 1, "fps": 1, "latency_budget_ms": 2000}))
    assert chosen(anywhere)[0].tier == "cloud"
    kept = solved(spec_of(edge_devices=["amd-ryzen-ai-300"], workload={"streams": 1, "fps": 1, "latency_budget_ms": 2000,
                                                     "locality": "on_site"}))
    assert kept.plan.status == "infeasible"
    assert [i.id for i in plan_tier(kept.spec, CAT).explanation.conflict.items] == ["tier.locality[cam]"]


def test_tier_accuracy_excludes_lossy_precisions():
    lossy = solved(spec_of(edge_devices=["jetson-orin-nano-super"], workload={"precisions": {"int8": 0.9,
                                                                                            "fp16": 1.0}}))
    assert chosen(lossy)[0].precision == "int8"
    strict = solved(spec_of(edge_devices=["jetson-orin-nano-super"],
                            workload={"precisions": {"int8": 0.9, "fp16": 1.0}, "min_accuracy": 0.95}))
    assert chosen(strict)[0].precision == "fp16"


def test_tier_accuracy_of_a_split_mixes_both_halves():
    data = {"split": {"edge_model": "yolov8n", "fallback_fraction": 0.2, "accuracy_retention": 0.9,
                      "fallback_kb": 5}, "model": "yolov8x", "min_accuracy": 0.89}
    result = plan_tier(spec_of(workload=data), CAT, explain=False)
    for o in result.table.options:
        if o.role == "split-edge":
            assert o.accuracy == pytest.approx(0.9 * 0.8 * {"int8": 0.99, "fp16": 1.0}[o.precision])
        if o.role == "split-cloud":
            assert o.accuracy == pytest.approx(0.9 * 0.2 * {"int8": 0.99, "fp16": 1.0}[o.precision])


def test_site_power_caps_the_edge_hardware():
    relaxed = {"latency_budget_ms": 200}
    free = solved(spec_of(workload=relaxed))
    power = sum(o.site_power_w for o in free.plan.options)
    assert power > 0
    capped = solved(spec_of(workload=relaxed, site={"power_w": power - 1}))
    assert sum(o.site_power_w for o in capped.plan.options) <= power - 1
    assert capped.plan.value > free.plan.value


def test_site_device_slots_cap_the_units():
    many = solved(spec_of(edge_devices=["jetson-orin-nano-super"], network={"links": []},
                          workload={"model": "yolov8x", "streams": 2, "fps": 30, "latency_budget_ms": 1000}))
    assert chosen(many)[0].units >= 2
    one = solved(spec_of(edge_devices=["jetson-orin-nano-super"], network={"links": []}, site={"device_slots": 1},
                         workload={"model": "yolov8x", "streams": 2, "fps": 30, "latency_budget_ms": 1000}))
    assert one.plan.status == "infeasible"
    assert [i.id for i in plan_tier(one.spec, CAT).explanation.conflict.items] == ["site.device_slots"]


def test_site_budget_names_itself_when_too_low():
    result = plan_tier(spec_of(site={"budget_usd_per_month": 1.0}), CAT)
    assert result.plan.status == "infeasible"
    assert [i.id for i in result.explanation.conflict.items] == ["site.budget"]
    value, cost = result.explanation.conflict.nearest["site.budget"]
    assert cost <= value + 1e-6 and value == pytest.approx(solved(spec_of()).plan.value, rel=1e-3)


def test_network_link_bandwidth_counts_every_workload_routed_over_it():
    cams = {"streams": 2, "fps": 10, "latency_budget_ms": 2000, "frame_kb": 100}  # 16 Mbps each
    two = {"workloads": [{"name": n, "kind": "vision", "model": "yolov8n", "precisions": {"int8": 0.99},
                          "frame_kb": 100, **{k: v for k, v in cams.items() if k != "frame_kb"}}
                         for n in ("a", "b")], "edge_devices": ["jetson-agx-orin-64gb"],
           "share_edge_devices": False,  # one box each, so the second workload's cheapest way is the cloud
           "site": {"count": 1000}}  # the cloud fleet is shared: cheaper than a box per site
    roomy = solved(spec_of(**two))
    assert {o.tier for o in roomy.plan.options} == {"cloud"}
    narrow = solved(spec_of(**two, network={"links": [
        {"from": "site", "to": "isp", "rtt_ms": 10, "bandwidth_mbps": 20},
        {"from": "isp", "to": "aws/us-east-1", "rtt_ms": 10}]}))
    assert sorted(narrow.plan.tier_of(w) for w in ("a", "b")) == ["cloud", "edge"]
    assert sum(o.uplink_mbps for o in narrow.plan.options) <= 20


def test_every_tier_unit_has_a_focused_test():
    tested = {name for name in globals() if name.startswith("test_")}
    missing = [u.id for u in TIER_UNITS if not any(t.startswith("test_" + u.id.replace(".", "_")) for t in tested)]
    assert missing == []


# ---------------------------------------------------------------------------------------------- solver and checker


def _brute_force(result) -> float | None:
    """Cheapest assignment over every combination of whole/split options, judged by the float checker."""
    spec, table = result.spec, result.table
    choices = []
    for w in spec.workloads:
        mine = table.of(w.name)
        whole = [[o] for o in mine if o.role in ("edge", "cloud")]
        split = [[a, b] for a in mine if a.role == "split-edge" for b in mine if b.role == "split-cloud"]
        choices.append(whole + split)
    best = None
    for combo in itertools.product(*choices):
        options = [o for part in combo for o in part]
        plan = type(result.plan)("optimal", spec.objective, options)
        checks, problems = check_tier_plan(spec, CAT, plan)
        if all(c.satisfied for c in checks) and (best is None or plan.value < best):
            best = plan.value
    return best


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(power=st.sampled_from([None, 5, 15, 30, 70]), slots=st.sampled_from([None, 1, 2]),
       budget=st.sampled_from([None, 3.0, 8.0, 60.0]), fps=st.sampled_from([1, 10, 30]),
       uplink=st.sampled_from([5, 50, 500]), locality=st.sampled_from(["any", "crops_only", "on_site"]),
       split=st.booleans(), count=st.sampled_from([1, 50]))
def test_solver_matches_brute_force_and_the_checker_on_random_specs(power, slots, budget, fps, uplink, locality,
                                                                     split, count):
    site = {"count": count, "electricity_usd_per_kwh": 0.1}
    for key, value in (("power_w", power), ("device_slots", slots), ("budget_usd_per_month", budget)):
        if value is not None:
            site[key] = value
    workload = {"fps": fps, "streams": 2, "locality": locality}
    if split:
        workload |= {"model": "yolov8s", "split": {"edge_model": "yolov8n", "fallback_fraction": 0.1,
                                                   "fallback_kb": 5}}
    spec = spec_of(site=site, workload=workload, cloud={"devices": ["t4", "l4"]}, network={"links": [
        {"from": "site", "to": "isp", "rtt_ms": 10, "bandwidth_mbps": uplink},
        {"from": "isp", "to": "aws/us-east-1", "rtt_ms": 10}]})
    result = solved(spec)
    brute = _brute_force(result)
    if brute is None:
        assert result.plan.status == "infeasible"
    else:
        assert result.plan.value == pytest.approx(brute, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("path", EDGE_EXAMPLES, ids=lambda p: p.stem)
def test_every_edge_example_plans_checks_and_explains(path):
    result = plan_tier(load_tier_spec(path), CAT)
    ex = result.explanation
    if path.stem.startswith("impossible"):
        assert result.plan.status == "infeasible" and ex.conflict.items
        return
    assert result.plan.status == "optimal"
    assert result.check_problems == [] and all(c.satisfied for c in result.checks)
    assert ex.limits and ex.alternatives


# ---------------------------------------------------------------------------------------------- explanations


def test_binding_latency_saving_equals_a_solve_without_it():
    shipped = load_tier_spec(ROOT / "examples" / "edge" / "shelf-scan-1000-sites.yaml")
    data = shipped.model_dump(by_alias=True, exclude_defaults=True)
    data["workloads"][0]["latency_budget_ms"] = 1e9  # no budget at all
    free = solved(TierSpec.model_validate(data))
    # A budget just below the unconstrained plan's frame time, so that it binds.
    data["workloads"][0]["latency_budget_ms"] = 0.9 * free.plan.of("shelf-gaps")[0].latency_ms
    spec = TierSpec.model_validate(data)
    result = plan_tier(spec, CAT)
    price = next(p for p in result.explanation.limits if p.item.id == "tier.latency[shelf-gaps]")
    assert price.drop_saving > 0
    assert free.plan.value == pytest.approx(result.plan.value * (1 - price.drop_saving), rel=1e-6)


def test_why_not_costs_equal_restricted_solves():
    spec = load_tier_spec(ROOT / "examples" / "edge" / "yolov8-4cam-15w.yaml")
    result = plan_tier(spec, CAT)
    for alt in result.explanation.alternatives:
        if alt.kind == "device" and alt.objective is not None:
            alone = solved(spec.model_copy(update={"edge_devices": [alt.name], "network": spec.network}))
            # The device alone, or the cloud if cheaper: the restricted answer can only be the device's.
            assert alone.plan.value <= alt.objective + 1e-9
            assert any(o.device == alt.name for o in alone.plan.options) or alone.plan.value < alt.objective


def test_conflict_of_the_impossible_example_is_minimal():
    spec = load_tier_spec(ROOT / "examples" / "edge" / "impossible-doorbell-5w.yaml")
    conflict = plan_tier(spec, CAT).explanation.conflict
    ids = {i.id for i in conflict.items}
    assert ids == {"tier.locality[person-detector]", "site.power"}

    def only(keep: set[str]) -> TierSpec:
        data = spec.model_dump(by_alias=True, exclude_defaults=True)
        if "site.power" not in keep:
            data["site"]["power_w"] = None
        if "tier.locality[person-detector]" not in keep:
            data["workloads"][0]["locality"] = "any"
        data["workloads"][0]["latency_budget_ms"] = 1e9  # the other user limits dropped
        data["network"]["links"][0]["bandwidth_mbps"] = None
        return TierSpec.model_validate(data)

    assert solved(only(ids)).plan.status == "infeasible"
    for item in ids:
        assert solved(only(ids - {item})).plan.status == "optimal"


def test_uplink_price_flip_is_where_the_tier_changes():
    spec = load_tier_spec(ROOT / "examples" / "edge" / "shelf-scan-1000-sites.yaml")
    flip = next(f for f in plan_tier(spec, CAT).explanation.flips if f.parameter.name.startswith("network"))
    assert flip.at is not None

    def tiers_at(price: float) -> str:
        data = spec.model_dump(by_alias=True, exclude_defaults=True)
        data["network"]["links"][0]["usd_per_gb"] = price
        return tiers(solved(TierSpec.model_validate(data)).plan)

    assert tiers_at(flip.at * 1.01) == flip.now and tiers_at(flip.at * 0.99) == flip.then != flip.now


def test_site_count_flip_is_where_the_tier_changes():
    spec = load_tier_spec(ROOT / "examples" / "edge" / "kiosk-assistant-3b.yaml")
    flip = next(f for f in plan_tier(spec, CAT).explanation.flips if f.parameter.name == "site.count")
    assert flip.at is not None and flip.at < spec.site.count

    def tiers_at(count: int) -> str:
        return tiers(solved(spec.model_copy(update={"site": spec.site.model_copy(update={"count": count})})).plan)

    assert tiers_at(int(flip.at)) == flip.then and tiers_at(int(flip.at) + 1) == flip.now


# ---------------------------------------------------------------------------------------------- bad input


def run_cli(*args):
    return CliRunner().invoke(main, list(args))


def write(tmp_path, data) -> Path:
    path = tmp_path / "tier.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


BASE = yaml.safe_load((ROOT / "examples" / "edge" / "yolov8-4cam-15w.yaml").read_text())


@pytest.mark.parametrize("change, needle", [
    (lambda d: d["workloads"][0].update(model="yolov8q"), "workloads[0].model: unknown model `yolov8q`"),
    (lambda d: d["workloads"][0].update(model="llama-3.2-3b"), "is a llm model but the workload is vision"),
    (lambda d: d["workloads"][0].update(model="whisper-small"), "is a speech model but the workload is vision"),
    (lambda d: d.update(edge_devices=["jetson-nano-super"]), "edge_devices[0]: unknown edge device"),
    (lambda d: d["network"]["links"][1].update(to="aws/us-east-9"), "network.links[1].to: unknown cloud region"),
    (lambda d: d["site"].pop("electricity_usd_per_kwh"), "site.electricity_usd_per_kwh"),
    (lambda d: d["workloads"][0]["precisions"].update(int3=0.5), "workloads[0].precisions.int3"),
    (lambda d: d["workloads"].append(dict(d["workloads"][0])), "workload names must be unique"),
    (lambda d: d["workloads"][0].update(locality="in_house"), "workloads[0].locality"),
])
def test_bad_tier_specs_fail_in_one_line_with_the_field(tmp_path, change, needle):
    data = copy.deepcopy(BASE)
    change(data)
    result = run_cli("tier", str(write(tmp_path, data)))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert needle in result.output, result.output
    assert "tier.yaml" in result.output


def test_tier_spec_that_is_not_a_mapping(tmp_path):
    with pytest.raises(SpecError, match="mapping"):
        load_tier_spec(write(tmp_path, "- a list\n"))


def test_cli_tier_exit_codes_and_json():
    ok = run_cli("tier", str(ROOT / "examples" / "edge" / "yolov8-4cam-15w.yaml"), "--format", "json")
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["workloads"][0]["tier"] == "edge" and data["explanation"]["alternatives"]
    assert data["workloads"][0]["real_time"]["meets_frame_budget"] is True
    assert not math.isnan(data["usd_per_site_month"])
    bad = run_cli("tier", str(ROOT / "examples" / "edge" / "impossible-doorbell-5w.yaml"))
    assert bad.exit_code == 3
    assert "cannot hold together" in bad.output
    md = run_cli("tier", str(ROOT / "examples" / "edge" / "kiosk-assistant-3b.yaml"), "--format", "markdown")
    assert md.exit_code == 0 and md.output.startswith("# kiosk-assistant-3b")


def test_validate_accepts_and_solve_redirects_a_tier_spec():
    spec = str(ROOT / "examples" / "edge" / "kiosk-assistant-3b.yaml")
    ok = run_cli("validate", spec)
    assert ok.exit_code == 0 and "tier spec" in ok.output
    wrong = run_cli("solve", spec)
    assert wrong.exit_code == 2 and "planner tier" in wrong.output


def test_schema_of_the_tier_spec():
    out = run_cli("schema", "--tier")
    assert out.exit_code == 0
    schema = json.loads(out.output)
    assert {"site", "workloads", "network"} <= set(schema["properties"])
    assert "from" in json.dumps(schema["$defs"]["Link"])


def test_energy_objective_minimises_kwh_per_site():
    spec = spec_of(objective="energy", workload={"latency_budget_ms": 200}, site={"count": 100})
    result = solved(spec)
    feasible = [o for o in result.table.options
                if o.role in ("edge", "cloud") and o.latency_ms <= 200 and o.uplink_mbps <= 100]
    assert result.plan.value == pytest.approx(min(o.energy_kwh_per_month for o in feasible))
    assert all(o.energy_kwh_per_month is not None for o in result.table.options)


def test_tier_json_lists_exclusions_as_records():
    import json

    from click.testing import CliRunner

    from planner.cli import main

    out = CliRunner().invoke(main, ["tier", str(ROOT / "examples" / "edge" / "drive-thru-speech.yaml"), "--format", "json"])
    records = json.loads(out.stdout)["excluded"]
    assert records and all(set(r) == {"workload", "device", "reason", "at"} for r in records)
    assert any(r["device"] == "hailo-8l" and "unit price" in r["reason"] for r in records)


def test_a_limit_met_on_its_own_is_not_reported_as_violated():
    from planner.explain.render import ruling_reason
    from planner.tier.units import tier_limit

    slots = tier_limit("site.device_slots", "site.device_slots", "site.device_slots", 2)
    assert ruling_reason(slots, 3).startswith("site.device_slots (needs 3")
    within = ruling_reason(slots, 2)
    assert "needs" not in within and "together with the others" in within
    locality = tier_limit("tier.locality[x]", "tier.locality", "workloads[0].locality", 1, "x")
    assert ruling_reason(locality, None) == "tier.locality[x]"
    accuracy = tier_limit("tier.accuracy[x]", "tier.accuracy", "workloads[0].min_accuracy", 0.98, "x")
    assert ruling_reason(accuracy, 0.95).startswith("tier.accuracy[x] (needs 0.95")  # a minimum: below it fails
    assert "together with the others" in ruling_reason(accuracy, 0.99)


# ---------------------------------------------------------------------------------------------- placement, batching


def test_operators_a_compiler_cannot_map_run_on_the_host_by_its_placement_rule():
    from planner.catalog.schema import OperatorGraph, OperatorSupport, Parameter
    from planner.perf.edge_vision import Placement, place

    graph = OperatorGraph(id="g", source=["M25"], as_of="2026-12-02", segments=[
        {"name": "stem", "operators": ["conv2d"], "flops_share": 0.5},
        {"name": "odd", "operators": ["conv2d", "gather"], "flops_share": 0.1},
        {"name": "body", "operators": ["conv2d"], "flops_share": 0.3},
        {"name": "head", "operators": ["softmax"], "flops_share": 0.1}])
    supported = ["conv2d", "softmax"]
    prefix = OperatorSupport(family="coral-edgetpu", placement="prefix", supported=supported, source=["M25"],
                             as_of="2026-12-02")
    per_segment = prefix.model_copy(update={"placement": "per_segment"})
    # The Edge TPU rule: the first unsupported operator sends it and everything after it to the CPU.
    assert (place(graph, prefix).host_share, place(graph, prefix).missing) == (pytest.approx(0.5), ("gather",))
    assert (place(graph, per_segment).host_share, place(graph, per_segment).missing) == (pytest.approx(0.1), ("gather",))
    assert place(graph, None) == Placement()
    # The accelerator's work: its segments' shares, a slow operator class dividing its segment's.
    assert place(graph, per_segment).accelerator_work == pytest.approx(0.9)
    slow = prefix.model_copy(update={"rates": {"conv2d": Parameter(value=0.5, reason="test")}})
    assert place(graph, slow).accelerator_work == pytest.approx(0.5 / 0.5)
    assert place(graph, prefix).cut and not place(graph, prefix.model_copy(update={"supported": ["conv2d", "softmax", "gather"]})).cut


def test_a_batch_pays_the_call_overhead_once_and_its_frames_wait_for_each_other():
    target = edge_targets(CAT.edge_devices, CAT.edge_families, "jetson-agx-orin-64gb")[0]
    shape = CAT.models["yolov8n"].shape
    one = model_vision(target, shape, "fp16")
    eight = model_vision(target, shape, "fp16", batch=8)
    assert eight.breakdown["overhead"] == one.breakdown["overhead"]
    assert eight.latency_s < 8 * one.latency_s and eight.fps_capacity > one.fps_capacity
    assert eight.fps_capacity == pytest.approx(8 / eight.latency_s)
    # Tier rows: a batch of b first waits for its b frames at the per-unit rate, then runs as one call.
    result = solved(spec_of(edge_devices=["jetson-agx-orin-64gb"],
                            workload={"streams": 16, "fps": 30, "tiers": ["edge"], "video": {"codec": "none"}}))
    rows = [o for o in result.table.of("cam") if o.role == "edge" and o.precision == "fp16"]
    assert len({o.detail["batch"] for o in rows}) > 1
    index = measurement_index(list(CAT.edge_measurements), CAT.edge_devices)
    modes = {t.mode.name: t for t in edge_targets(CAT.edge_devices, CAT.edge_families, "jetson-agx-orin-64gb")}
    for o in rows:
        call = edge_vision(modes[o.mode], shape, "yolov8n", "fp16", None, index, batch=o.detail["batch"])
        rate = 16 * 30 / o.units
        assert o.latency_ms == pytest.approx(((o.detail["batch"] - 1) / rate + call.latency_s) * 1000)


# ---------------------------------------------------------------------------------------------- co-location


def _camera_and_assistant(**changes) -> TierSpec:
    return spec_of(**_merge({
        "workloads": [
            {"name": "cam", "kind": "vision", "model": "yolov8n", "streams": 2, "fps": 15, "frame_kb": 60,
             "precisions": {"int8": 0.99}, "tiers": ["edge"], "video": {"codec": "none"}},
            {"name": "chat", "kind": "llm", "model": "llama-3.2-3b", "requests_per_hour": 40, "input_tokens": 400,
             "output_tokens": 200, "ttft_ms": 3000, "precisions": {"int4": 0.97}, "tiers": ["edge"]}],
        "edge_devices": ["jetson-orin-nano-super"]}, changes))


def test_site_video_decode_buys_units_until_the_host_decodes_every_stream():
    # Ten 1080p30 H.264 cameras: a Pi 5 decodes H.264 on its CPU (no hardware decoder), four cores at
    # ~56.6 Mpx/s each = 226 Mpx/s against the 622 Mpx/s the streams carry. One Hailo-8 keeps up with the
    # frames, so without the decode limit one unit would do; with it the plan buys units until the
    # per-unit decode load fits the headroom.
    cameras = {"workloads": [{"name": "cam", "kind": "vision", "model": "yolov8s", "streams": 10, "fps": 30,
                              "frame_kb": 80, "precisions": {"int8": 0.99}, "tiers": ["edge"], "runtime": "optimized",
                              "video": {"codec": "h264", "resolution": [1920, 1080]}}],
               "edge_devices": ["hailo-8"], "site": {"device_slots": 8}}
    result = solved(spec_of(**cameras))
    (option,) = chosen(result)
    pi = CAT.edge_devices["rpi5-8gb"]
    per_unit = 10 * 30 * 1920 * 1080 / option.units / (pi.cpu_cores * pi.software_decode_pixels_per_s_per_core["h264"].value)
    bound = result.spec.edge_max_utilization
    assert option.host_load == pytest.approx(per_unit, rel=1e-3)
    assert option.host_load <= bound < 10 * 30 * 1920 * 1080 / (option.units - 1) / (pi.cpu_cores * pi.software_decode_pixels_per_s_per_core["h264"].value)
    checks = {c.id: c for c in result.checks}
    assert checks["site.video_decode[cam]"].value == pytest.approx(option.host_load)
    # Frames that arrive decoded (MIPI/USB cameras) need one unit only.
    raw = solved(spec_of(**_merge(cameras, {"workloads": [{**cameras["workloads"][0], "video": {"codec": "none"}}]})))
    assert chosen(raw)[0].units == 1


def test_site_video_decode_rules_out_a_host_with_no_decoder_for_the_codec():
    # The Pi 5 decodes H.265 in hardware (4Kp60) but the catalog has no AV1 figure for it: an AV1 camera
    # on a Hailo card is not planned, with the reason named.
    result = plan_tier(spec_of(workloads=[{"name": "cam", "kind": "vision", "model": "yolov8n", "streams": 2,
                                            "fps": 15, "frame_kb": 60, "precisions": {"int8": 0.99},
                                            "tiers": ["edge"], "video": {"codec": "av1"}}],
                               edge_devices=["hailo-8"]), CAT)
    assert not result.plan.options
    reasons = " ".join(result.table.excluded["cam"])
    assert "rpi5-8gb has no AV1 hardware decoder" in reasons


def test_edge_shared_capacity_lets_two_workloads_share_one_device_and_each_waits_for_the_other():
    result = solved(_camera_and_assistant())
    plan = result.plan
    # Only devices both workloads can run are offered for sharing: a Hailo card runs no LLM.
    mixed = solved(_camera_and_assistant(edge_devices=["jetson-orin-nano-super", "hailo-8"])).table.options
    assert any(o.device == "hailo-8" and o.role == "edge" for o in mixed)
    assert not any(o.device == "hailo-8" and o.role in ("pool", "edge-shared") for o in mixed)
    assert any(o.role == "edge-shared" for o in mixed)
    assert [o.index for o in mixed] == list(range(len(mixed)))
    pools = [o for o in plan.options if o.role == "pool"]
    assert len(pools) == 1 and pools[0].units == 1
    assert {o.role for o in plan.options if o.workload} == {"edge-shared"}
    cam, chat = plan.of("cam")[0], plan.of("chat")[0]
    # One box, not two: the pool pays the unit and its idle power, each workload only the energy it adds.
    alone = solved(_camera_and_assistant(share_edge_devices=False)).plan
    assert plan.usd_per_site_month < alone.usd_per_site_month
    assert sum(o.units for o in alone.options) == 2
    # The frame may wait for one layer of the assistant's prefill and runs slower while it takes its share;
    # the prompt likewise behind a camera call.
    checks = {c.id: c for c in result.checks}
    assert checks["tier.latency[cam]"].value == pytest.approx(
        cam.latency_ms * (1 + chat.detail["share"]) + chat.detail["block_ms"])
    assert checks["tier.latency[chat]"].value == pytest.approx(
        chat.latency_ms * (1 + cam.detail["share"]) + cam.detail["block_ms"])
    load = cam.detail["share"] + chat.detail["share"]
    assert checks["edge.shared_capacity"].value == pytest.approx(load)
    # Without the headroom for both, they no longer share one unit in that power mode: the plan moves the
    # shared box to a faster, dearer mode, and without headroom there either, shares no unit at all.
    def tighter(shared):
        bound = max(o.detail["share"] for o in shared.plan.options if o.role == "edge-shared") * 1.01
        return solved(_camera_and_assistant(edge_max_utilization=bound))
    faster = tighter(result)
    assert faster.plan.usd_per_site_month > plan.usd_per_site_month
    assert {o.detail["pool"] for o in faster.plan.options if o.role == "pool"} != {cam.detail["pool"]}
    apart = tighter(faster)
    assert not any(o.role == "edge-shared" for o in apart.plan.options)


def test_edge_shared_capacity_keeps_the_frame_budget_with_the_others_wait():
    # A frame budget shorter than one layer of the assistant's prefill: sharing would break it, so the camera
    # gets its own box.
    prefill_ms = solved(_camera_and_assistant()).plan.of("chat")[0].detail["block_ms"]
    result = solved(_camera_and_assistant(workloads=[
        {"name": "cam", "kind": "vision", "model": "yolov8n", "streams": 2, "fps": 15, "frame_kb": 60,
         "latency_budget_ms": prefill_ms * 0.5, "precisions": {"int8": 0.99}, "tiers": ["edge"],
         "video": {"codec": "none"}},
        {"name": "chat", "kind": "llm", "model": "llama-3.2-3b", "requests_per_hour": 40, "input_tokens": 400,
         "output_tokens": 200, "ttft_ms": 3000, "precisions": {"int4": 0.97}, "tiers": ["edge"]}]))
    assert result.plan.of("cam")[0].role == "edge"


def test_shared_devices_hold_every_model_they_run():
    # Two 8B FP16 assistants (16 GB of weights each) cannot share a 64 GB box... they can; on an 8 GB Nano
    # neither fits, so nothing is shared there and the shared rows never exceed one unit's memory.
    result = solved(_camera_and_assistant(edge_devices=["jetson-agx-orin-64gb"]))
    for pool in (o for o in result.plan.options if o.role == "pool"):
        used = sum(o.detail["memory_gb"] for o in result.plan.options if o.role == "edge-shared")
        assert used <= pool.detail["usable_memory_gb"]
    table = result.table
    shared = [o for o in table.options if o.role == "edge-shared"]
    assert shared and all(o.detail["memory_gb"] > 0 for o in shared)
