"""The shipped catalogs: complete, sourced, cross-referenced and physically plausible."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.catalog.loader import load_catalogs
from planner.perf.shapes import llm_footprint

ROOT = Path(__file__).resolve().parents[1]
REQUIRED_DEVICES = ["a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200-sxm", "b200", "gb200", "l4", "l40s",
                    "mi300x", "mi325x", "gaudi2", "gaudi3", "tpu-v5e", "tpu-v5p", "tpu-v6e", "trainium2", "inferentia2"]
REQUIRED_MODELS = ["llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "qwen3-32b", "qwen3-235b-a22b", "qwen3-30b-a3b",
                   "mixtral-8x7b", "deepseek-v3",
                   "gpt-3-175b", "resnet-50", "yolov8n", "yolov8s", "mobilenet-v2"]


@pytest.fixture(scope="module")
def catalog():
    return load_catalogs()


def test_required_devices_and_count(catalog):
    missing = [d for d in REQUIRED_DEVICES if d not in catalog.accelerators]
    assert not missing
    datacenter = [a for a in catalog.accelerators.values() if a.kind == "datacenter"]
    assert len(datacenter) >= 20


def test_every_entry_is_sourced_and_dated(catalog):
    entries = [*catalog.accelerators.values(), *catalog.systems.values(), *catalog.models.values(),
               *catalog.offerings, *catalog.purchases.values()]
    for e in entries:
        assert e.source and all(s in catalog.sources for s in e.source), e
        # A mistyped year shows up as a date before the models this catalog holds (GoogLeNet, 2014).
        assert e.as_of.year >= 2014
    for src in catalog.sources.values():
        assert src.title and src.as_of


@pytest.mark.parametrize("field,low,high", [("memory_gb", 8, 400), ("memory_bw_gb_per_s", 100, 10_000),
                                            ("tdp_w", 40, 1_500)])
def test_device_figures_plausible(catalog, field, low, high):
    for a in catalog.accelerators.values():
        value = getattr(a, field)
        if value is not None:
            assert low <= value <= high, (a.id, field, value)


def test_dense_peaks_ordered(catalog):
    for a in catalog.accelerators.values():
        p = a.peak_dense_tflops
        if "bf16" in p and "fp8" in p:
            assert p["fp8"] >= p["bf16"], a.id
        if "bf16" in p:
            assert 20 <= p["bf16"] <= 5_000, a.id


def test_systems_reference_known_devices_and_sane_links(catalog):
    for s in catalog.systems.values():
        assert s.accelerator in catalog.accelerators
        if s.scaleup.link_gb_per_s is not None:
            assert 10 <= s.scaleup.link_gb_per_s <= 2_000, s.id
        if s.scaleout:
            assert 10 <= s.scaleout.nic_gbit_per_s <= 3_200, s.id


def test_prices_cover_clouds_regions_and_pricing_models(catalog):
    by_provider: dict[str, set] = {}
    pricing: dict[str, set] = {}
    for o in catalog.offerings:
        by_provider.setdefault(o.provider, set()).add(o.region)
        pricing.setdefault(o.provider, set()).add(o.pricing)
        assert 0.05 <= o.usd_per_device_hour <= 50, o
    for p in ("aws", "gcp", "azure"):
        assert len(by_provider.get(p, ())) >= 2, p
        assert {"on-demand", "spot"} <= pricing[p], p
    gpu_clouds = [p for p in by_provider if p not in ("aws", "gcp", "azure") and len(by_provider[p]) >= 2]
    assert len(gpu_clouds) >= 2


def test_regions_have_energy_facts(catalog):
    with_pue = [r for r in catalog.regions.values() if r.pue]
    with_carbon = [r for r in catalog.regions.values() if r.grid_gco2_per_kwh]
    assert len(with_pue) >= 4 and len(with_carbon) >= 4
    for r in catalog.regions.values():
        if r.pue:
            assert 1.0 <= r.pue.value <= 2.0
        if r.grid_gco2_per_kwh:
            assert 0 <= r.grid_gco2_per_kwh.value <= 1_000


def test_models_present(catalog):
    assert not [m for m in REQUIRED_MODELS if m not in catalog.models]


def test_llm_shapes_reproduce_published_sizes(catalog):
    for m in catalog.models.values():
        if m.shape.kind != "llm":
            continue
        counted = llm_footprint(m.shape).total_params / 1e9
        assert counted == pytest.approx(m.shape.params_b, rel=0.03), (m.id, counted)


# Parameters used per token as each MoE model's publisher states them (model cards and announcements, the
# models' catalog sources), counting the input embedding as the publishers do.
PUBLISHED_ACTIVE_B = {"mixtral-8x7b": 12.9, "deepseek-v3": 37.0, "qwen3-235b-a22b": 22.0, "qwen3-30b-a3b": 3.3}


def test_moe_shapes_reproduce_the_published_active_parameters(catalog):
    for model_id, published in PUBLISHED_ACTIVE_B.items():
        fp = llm_footprint(catalog.models[model_id].shape)
        counted = (fp.active_params + fp.embedding_params) / 1e9
        assert counted == pytest.approx(published, rel=0.03), (model_id, counted)


# ------------------------------------------------------------------------------------------ serving engines


def test_engines_are_sourced_and_every_fitted_value_says_on_what(catalog):
    assert {"vllm", "sglang", "trtllm", "trtllm-tensorrt"} <= set(catalog.engines)
    assert catalog.default_engine == "vllm"
    for engine in catalog.engines.values():
        for name, value in engine:
            if hasattr(value, "reason"):
                assert value.reason and "PENDING" not in value.reason, (engine.id, name)
                assert value.source or "itted" in value.reason or "reserve" in value.reason, (engine.id, name)


def test_driver_reported_memory_is_a_little_above_the_marketed_decimal_figure(catalog):
    for device in catalog.accelerators.values():
        if device.memory_visible_gib:
            assert 0.9 <= device.memory_bytes / (device.memory_gb * 1e9) <= 1.1, device.id
    assert catalog.accelerators["h100-sxm"].memory_bytes == pytest.approx(81559 * 2**20)


def _catalog_copy(tmp_path, edit):
    import shutil

    from planner.catalog.loader import default_catalog_dir

    root = tmp_path / "catalogs"
    shutil.copytree(default_catalog_dir(), root)
    path = root / "engines.yaml"
    path.write_text(edit(path.read_text()))
    return root


def test_an_engine_rule_naming_an_unknown_device_is_refused(tmp_path):
    from planner.errors import CatalogError

    root = _catalog_copy(tmp_path, lambda t: t.replace("devices: [a100-80gb, a100-80gb-pcie, a100-40gb], value: 256",
                                                       "devices: [a100-80g], value: 256", 1))
    with pytest.raises(CatalogError) as err:
        load_catalogs(root)
    # Every id the typed name prefixes, the catalog's order.
    assert ("unknown device `a100-80g`. Did you mean `a100-80gb` or `a100-80gb-pcie`?"
            in str(err.value.problems[0].render()))


def test_an_unlisted_default_engine_is_refused(tmp_path):
    from planner.errors import CatalogError

    root = _catalog_copy(tmp_path, lambda t: t.replace("default: vllm", "default: vlm", 1))
    with pytest.raises(CatalogError) as err:
        load_catalogs(root)
    assert any("default engine `vlm` is not listed" in p.render() for p in err.value.problems)


def test_precomputed_group_links_equal_what_networkx_routes_and_cover_the_examples():
    import json
    import math

    from planner.catalog import topology
    from planner.catalog.loader import load_catalogs

    catalog = load_catalogs()
    stored = json.loads(topology.PRECOMPUTED_PATH.read_text())["links"]
    by_prefix = {topology.precomputed_key(s, 0, 0).rsplit(":", 2)[0]: s for s in catalog.systems.values()}
    for key, (bw, lat, crosses, hops) in stored.items():
        head, _, last = key.rpartition(":")
        shape = [int(n) for n in last.split("x")] if "x" in last else None  # the job's torus slice, if any
        prefix, size, stride = (head if shape else key).rsplit(":", 2)
        system = by_prefix.get(prefix)
        assert system is not None, f"{key}: stale (the system changed); run python -m planner.catalog.topology_cache"
        fresh = topology._group_link(system, int(size), int(stride), shape)
        assert math.isclose(fresh.bw_bytes_per_s, bw, rel_tol=1e-12) and math.isclose(fresh.latency_s, lat,
                                                                                        rel_tol=1e-12), key
        assert (fresh.crosses_domain, fresh.hops) == (bool(crosses), hops), key


def test_solving_an_example_routes_nothing_afresh():
    from planner.catalog import topology
    from planner.catalog.loader import load_catalogs
    from planner.evaluate import resolve_workload
    from planner.solve import solve
    from planner.spec import load_spec

    catalog = load_catalogs()
    topology._GROUP_CACHE.clear()
    topology.ROUTED.clear()
    for name in ("llama3-70b-chat", "llama3-8b-pretrain"):
        solve(resolve_workload(load_spec(ROOT / "examples" / f"{name}.yaml"), catalog), catalog)
    assert topology.ROUTED == [], "group_links.json is behind the catalog: python -m planner.catalog.topology_cache"


def test_a_spec_without_a_framework_gets_its_devices_default():
    from planner.catalog.loader import load_catalogs

    catalog = load_catalogs()
    assert catalog.framework(None, catalog.accelerators["tpu-v6e"]).id == "maxtext"  # TPUs train under JAX
    assert catalog.framework(None, catalog.accelerators["h100-sxm"]).id == "megatron-core"
    assert catalog.framework("torchtitan", catalog.accelerators["tpu-v6e"]).id == "torchtitan"  # named wins


def _fresh_load(root):
    """A load as a new process does it (the in-process memo of `load_catalogs` left out)."""
    from planner.catalog.loader import _load_catalogs_cached

    _load_catalogs_cached.cache_clear()
    return load_catalogs(root)


def test_the_validated_catalog_is_kept_between_processes_and_missed_when_a_file_changes(tmp_path, monkeypatch):
    from planner.errors import CatalogError

    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    root = _catalog_copy(tmp_path, lambda t: t)
    first = _fresh_load(root)
    kept = list((tmp_path / "cache").glob("catalog-*.pickle"))
    assert len(kept) == 1
    again = _fresh_load(root)
    assert again == first and again is not first
    # An edit the cache must not hide: a valid change is seen, an invalid one is refused as before.
    engines = root / "engines.yaml"
    engines.write_text(engines.read_text().replace("default: vllm", "default: sglang", 1))
    assert _fresh_load(root).default_engine == "sglang"
    engines.write_text(engines.read_text().replace("default: sglang", "default: vlm", 1))
    with pytest.raises(CatalogError):
        _fresh_load(root)
    assert len(list((tmp_path / "cache").glob("catalog-*.pickle"))) == 2  # refusals are never kept


def test_a_damaged_cache_file_is_rebuilt_and_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    root = _catalog_copy(tmp_path, lambda t: t)
    expected = _fresh_load(root)
    (kept,) = (tmp_path / "cache").glob("catalog-*.pickle")
    kept.write_bytes(b"not a pickle")
    assert _fresh_load(root) == expected
    assert kept.read_bytes() != b"not a pickle"
    monkeypatch.setenv("PLANNER_CACHE_DIR", "off")
    kept.unlink()
    assert _fresh_load(root) == expected
    assert not list((tmp_path / "cache").glob("catalog-*"))
