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
from planner.perf.edge import edge_llm, edge_targets, edge_vision, measurement_index, model_vision
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


def test_vision_latency_is_overhead_plus_roofline_by_hand():
    target = edge_targets(CAT.edge_devices, CAT.edge_families, "jetson-orin-nano-super")[0]
    shape = CAT.models["yolov8s"].shape
    fam = target.family
    got = model_vision(target, shape, "int8").latency_s
    compute = 28.6e9 / (33.5e12 * fam.compute_efficiency.value)
    memory = 11.2e6 / (102e9 * fam.memory_bw_efficiency.value)
    assert got == pytest.approx(fam.framework_overhead_ms.value / 1000 + max(compute, memory))
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
    got = edge_vision(hailo, CAT.models["yolov8n"].shape, "yolov8n", "int8", None, index)
    assert got.basis == "hailo-mz-hailo8-yolov8n-bs1" and got.fps_capacity == pytest.approx(1023)
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


def test_edge_validation_meets_its_targets():
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "validation"))
    import validate_edge

    cases, _ = validate_edge.run(CAT)
    stats = validate_edge.summary(cases)
    assert stats["rows"] >= 8
    assert stats["median_abs_error"] <= 0.2, stats
    assert len({c.device for c in cases}) >= 4


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
    spec = load_tier_spec(ROOT / "examples" / "edge" / "shelf-scan-1000-sites.yaml")
    result = plan_tier(spec, CAT)
    price = next(p for p in result.explanation.limits if p.item.id == "tier.latency[shelf-gaps]")
    assert price.drop_saving > 0
    data = spec.model_dump(by_alias=True, exclude_defaults=True)
    data["workloads"][0]["latency_budget_ms"] = 1e9  # no budget at all
    free = solved(TierSpec.model_validate(data))
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
