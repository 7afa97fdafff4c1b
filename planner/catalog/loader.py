"""Load and cross-check the catalogs once; everything downstream reads the frozen `Catalog`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from planner.catalog.schema import (
    Accelerator,
    AcceleratorsFile,
    AccuracyFigure,
    AccuracyFile,
    DeviceFamily,
    EdgeDevice,
    EdgeFamily,
    EdgeFile,
    EdgeMeasurement,
    EdgeMeasurementsFile,
    EfficiencyFile,
    Engine,
    EnginesFile,
    Framework,
    FrameworksFile,
    EngineValue,
    Model,
    ModelsFile,
    Offering,
    OperatorGraph,
    OperatorSupport,
    OperatorsFile,
    PricesFile,
    Purchase,
    Region,
    Source,
    SourcesFile,
    System,
    SystemsFile,
)
from planner.catalog.cache import cached
from planner.errors import CatalogError, Problem, did_you_mean
from planner.yamlio import dotted, load_yaml, parse_document

CATALOG_FILES = {
    "sources.yaml": SourcesFile,
    "accelerators.yaml": AcceleratorsFile,
    "efficiency.yaml": EfficiencyFile,
    "systems.yaml": SystemsFile,
    "models.yaml": ModelsFile,
    "prices.yaml": PricesFile,
    "edge.yaml": EdgeFile,
    "edge_measurements.yaml": EdgeMeasurementsFile,
    "engines.yaml": EnginesFile,
    "frameworks.yaml": FrameworksFile,
    "accuracy.yaml": AccuracyFile,
    "operators.yaml": OperatorsFile,
}


def _named(table: dict, name: str, kind: str):
    try:
        return table[name]
    except KeyError:
        raise CatalogError(Problem(f"unknown {kind} `{name}`.{did_you_mean(name, table)}",
                                   fix=f"use one of: {', '.join(sorted(table))}")) from None


def _package_data_dir(name: str) -> Path:
    """`catalogs/` or `constraints/`: the repository copy in a checkout, the wheel copy when installed."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / name).is_dir():
        return root / name
    return Path(__file__).resolve().parents[1] / "_data" / name


def default_catalog_dir() -> Path:
    override = os.environ.get("PLANNER_CATALOG_DIR")
    return Path(override) if override else _package_data_dir("catalogs")


def default_constraints_dir() -> Path:
    return _package_data_dir("constraints")


@dataclass(frozen=True)
class CalibrationNote:
    file: str
    families: frozenset[str]
    engines: frozenset[str]
    figures: int
    leave_one_out_p90_pct: float | None


@dataclass(frozen=True)
class Catalog:
    root: Path
    sources: dict[str, Source]
    families: dict[str, DeviceFamily]
    accelerators: dict[str, Accelerator]
    systems: dict[str, System]
    models: dict[str, Model]
    offerings: tuple[Offering, ...]
    regions: dict[tuple[str, str], Region]
    purchases: dict[str, Purchase] = field(default_factory=dict)
    egress_usd_per_gb: dict[str, float] = field(default_factory=dict)
    edge_families: dict[str, EdgeFamily] = field(default_factory=dict)
    edge_devices: dict[str, EdgeDevice] = field(default_factory=dict)
    edge_measurements: tuple[EdgeMeasurement, ...] = ()
    engines: dict[str, Engine] = field(default_factory=dict)
    default_engine: str = "vllm"
    frameworks: dict[str, Framework] = field(default_factory=dict)
    default_framework: str = "megatron-core"
    default_framework_by_vendor: dict[str, str] = field(default_factory=dict)
    # (kind, metric) -> how far that prediction was off, left out of the fit (accuracy.yaml)
    accuracy: dict[tuple[str, str], AccuracyFigure] = field(default_factory=dict)
    operator_graphs: dict[str, OperatorGraph] = field(default_factory=dict)
    operator_support: dict[str, OperatorSupport] = field(default_factory=dict)  # by edge family
    # The overlay applied with --calibration: its file, the families and engines it sets, its left-out error.
    calibration: "CalibrationNote | None" = None

    def framework(self, framework_id: str | None, device: Accelerator | None = None) -> Framework:
        """The named framework, else the device vendor's default, else the catalog's."""
        default = self.default_framework_by_vendor.get(device.vendor) if device is not None else None
        return _named(self.frameworks, framework_id or default or self.default_framework, "training framework")

    def engine(self, engine_id: str | None) -> Engine:
        return _named(self.engines, engine_id or self.default_engine, "serving engine")

    def devices_named(self, name: str) -> list[str]:
        """The device ids a name as people type it means: the id itself (case and a SkyPilot-style `:8`
        count ignored), else every id it prefixes (`h100` -> h100-nvl, h100-pcie, h100-sxm ...)."""
        base = name.split(":")[0].strip().lower()
        if base in self.accelerators:
            return [base]
        return sorted(a for a in self.accelerators if base and a.startswith(base))

    def accelerator(self, device_id: str) -> Accelerator:
        try:
            return self.accelerators[device_id]
        except KeyError:
            raise CatalogError(
                Problem(f"unknown device `{device_id}`.{did_you_mean(device_id, self.accelerators)}",
                        fix="run `planner catalog list devices` for the known ids")
            ) from None

    def systems_for(self, device_id: str) -> list[System]:
        return [s for s in self.systems.values() if s.accelerator == device_id]

    def offerings_for(self, system_id: str) -> list[Offering]:
        return [o for o in self.offerings if o.system == system_id]

    def family_of(self, device: Accelerator) -> DeviceFamily:
        return self.families[device.family]

    def region(self, provider: str, region: str) -> Region | None:
        return self.regions.get((provider, region))


def _check_ids_unique(items, file: str, section: str, key=lambda x: x.id) -> list[Problem]:
    seen: set = set()
    problems = []
    for i, item in enumerate(items):
        k = key(item)
        if k in seen:
            problems.append(Problem(f"duplicate id `{k}`", file=file, path=f"{section}[{i}]", fix="ids must be unique"))
        seen.add(k)
    return problems


def _check_sources(items, sources: dict, file: str, section: str) -> list[Problem]:
    problems = []
    for i, item in enumerate(items):
        for sid in getattr(item, "source", []) or []:
            if sid not in sources:
                problems.append(
                    Problem(f"source `{sid}` is not in sources.yaml{did_you_mean(sid, sources)}",
                            file=file, path=f"{section}[{i}].source", fix="add it to sources.yaml with title, url and as_of")
                )
    return problems


def _check_refs(items, field: str, known, file: str, section: str, kind: str, fix: str) -> list[Problem]:
    """Every item's `field` names an entry of `known` (unset optional references pass)."""
    problems = []
    for i, item in enumerate(items):
        name = getattr(item, field)
        if name is not None and name not in known:
            problems.append(Problem(f"unknown {kind} `{name}`.{did_you_mean(name, known)}", file=file,
                                    path=f"{section}[{i}].{field}", fix=fix))
    return problems


def load_catalogs(root: Path | None = None) -> Catalog:
    return _load_catalogs_cached(str((root or default_catalog_dir()).resolve()))


@lru_cache(maxsize=4)
def _load_catalogs_cached(root_str: str) -> Catalog:
    root = Path(root_str)
    return cached([root / name for name in CATALOG_FILES], lambda: _validated_catalog(root))


def _validated_catalog(root: Path) -> Catalog:
    parsed = {}
    problems: list[Problem] = []
    for name, model in CATALOG_FILES.items():
        doc = load_yaml(root / name, CatalogError)
        try:
            parsed[name] = parse_document(doc, model, CatalogError)
        except CatalogError as exc:
            problems.extend(exc.problems)
    if problems:
        raise CatalogError(problems)

    sources: dict[str, Source] = parsed["sources.yaml"].sources
    acc: AcceleratorsFile = parsed["accelerators.yaml"]
    eff: EfficiencyFile = parsed["efficiency.yaml"]
    sysf: SystemsFile = parsed["systems.yaml"]
    mod: ModelsFile = parsed["models.yaml"]
    pri: PricesFile = parsed["prices.yaml"]
    edge: EdgeFile = parsed["edge.yaml"]
    f_acc, f_eff, f_sys, f_mod, f_pri, f_edge, _, f_eng, f_fw, f_accuracy, f_ops = (
        str(root / n) for n in list(CATALOG_FILES)[1:])

    problems += _check_ids_unique(acc.accelerators, f_acc, "accelerators")
    problems += _check_ids_unique(eff.families, f_eff, "families")
    problems += _check_ids_unique(sysf.systems, f_sys, "systems")
    problems += _check_ids_unique(mod.models, f_mod, "models")
    problems += _check_ids_unique(pri.regions, f_pri, "regions", key=lambda r: (r.provider, r.region))
    problems += _check_sources(acc.accelerators, sources, f_acc, "accelerators")
    problems += _check_sources(sysf.systems, sources, f_sys, "systems")
    problems += _check_sources(mod.models, sources, f_mod, "models")
    problems += _check_sources(pri.offerings, sources, f_pri, "offerings")
    problems += _check_sources(pri.purchases, sources, f_pri, "purchases")
    problems += _check_sources(pri.egress, sources, f_pri, "egress")
    for i, fam in enumerate(eff.families):
        for fname in ("matmul_efficiency", "memory_bw_efficiency", "collective_bw_efficiency", "comm_overlap",
                      "power_at_full_load", "power_at_idle"):
            problems += _check_sources([getattr(fam, fname)], sources, f_eff, f"families[{i}].{fname}")
        for optional in ("fp8_matmul_efficiency", "kv_read_efficiency", "inference_matmul_efficiency",
                         "inference_fp4_matmul_efficiency", "roofline_overlap_exponent"):
            if getattr(fam, optional) is not None:
                problems += _check_sources([getattr(fam, optional)], sources, f_eff, f"families[{i}].{optional}")
    for i, region in enumerate(pri.regions):
        for fname in ("electricity_usd_per_kwh", "pue", "grid_gco2_per_kwh"):
            value = getattr(region, fname)
            if value is not None:
                problems += _check_sources([value], sources, f_pri, f"regions[{i}].{fname}")

    families = {f.id: f for f in eff.families}
    accelerators = {a.id: a for a in acc.accelerators}
    systems = {s.id: s for s in sysf.systems}
    problems += _check_refs(acc.accelerators, "family", families, f_acc, "accelerators", "family",
                            "add the family to efficiency.yaml")
    problems += _check_refs(sysf.systems, "accelerator", accelerators, f_sys, "systems", "accelerator",
                            "use an id from accelerators.yaml")
    for i, s in enumerate(sysf.systems):
        if s.scaleup.domain_devices < s.devices_per_node and s.scaleup.topology != "pcie":
            problems.append(Problem("scale-up domain is smaller than the node", file=f_sys,
                                    path=f"systems[{i}].scaleup.domain_devices", fix="check the system's topology"))
    problems += _check_refs(pri.offerings, "system", systems, f_pri, "offerings", "system",
                            "use an id from systems.yaml")
    problems += _check_refs(pri.purchases, "accelerator", accelerators, f_pri, "purchases", "accelerator",
                            "use an id from accelerators.yaml")
    problems += _check_edge(edge, sources, f_edge)
    eng: EnginesFile = parsed["engines.yaml"]
    problems += _check_ids_unique(eng.engines, f_eng, "engines")
    for i, engine in enumerate(eng.engines):
        for fname, value in engine:
            if isinstance(value, EngineValue):
                problems += _check_sources([value], sources, f_eng, f"engines[{i}].{fname}")
                for j, rule in enumerate(value.rules):
                    problems += [Problem(f"unknown device `{d}`.{did_you_mean(d, accelerators)}", file=f_eng,
                                         path=f"engines[{i}].{fname}.rules[{j}].devices",
                                         fix="use an id from accelerators.yaml")
                                 for d in rule.devices if d not in accelerators]
    if eng.default not in {e.id for e in eng.engines}:
        problems.append(Problem(f"default engine `{eng.default}` is not listed", file=f_eng, path="default",
                                fix="name one of the engines below"))
    fw: FrameworksFile = parsed["frameworks.yaml"]
    problems += _check_ids_unique(fw.frameworks, f_fw, "frameworks")
    problems += _check_sources(fw.frameworks, sources, f_fw, "frameworks")
    problems += [Problem(f"default framework `{f}` for {vendor} is not listed", file=f_fw,
                         path=f"default_by_vendor.{vendor}", fix="name one of the frameworks below")
                 for vendor, f in fw.default_by_vendor.items() if f not in {x.id for x in fw.frameworks}]
    if fw.default not in {f.id for f in fw.frameworks}:
        problems.append(Problem(f"default framework `{fw.default}` is not listed", file=f_fw, path="default",
                                fix="name one of the frameworks below"))
    accuracy: AccuracyFile = parsed["accuracy.yaml"]
    problems += _check_sources(accuracy.figures, sources, f_accuracy, "figures")
    ops: OperatorsFile = parsed["operators.yaml"]
    problems += _check_operators(ops, mod, edge, sources, f_ops, f_mod)
    problems += _check_refs(parsed["edge_measurements.yaml"].measurements, "host_device", {d.id for d in edge.devices},
                            str(root / "edge_measurements.yaml"), "measurements", "edge device",
                            "use a device id from edge.yaml, or leave host_device out")
    if problems:
        raise CatalogError(problems)

    return Catalog(
        root=root,
        sources=sources,
        families=families,
        accelerators=accelerators,
        systems=systems,
        models={m.id: m for m in mod.models},
        offerings=tuple(pri.offerings),
        regions={(r.provider, r.region): r for r in pri.regions},
        purchases={p.accelerator: p for p in pri.purchases},
        egress_usd_per_gb={e.provider: e.usd_per_gb for e in pri.egress},
        edge_families={f.id: f for f in edge.families},
        edge_devices={d.id: d for d in edge.devices},
        edge_measurements=tuple(parsed["edge_measurements.yaml"].measurements),
        engines={e.id: e for e in eng.engines},
        default_engine=eng.default,
        frameworks={f.id: f for f in fw.frameworks},
        default_framework=fw.default,
        default_framework_by_vendor=dict(fw.default_by_vendor),
        accuracy={(f.kind, f.metric): f for f in accuracy.figures},
        operator_graphs={g.id: g for g in ops.graphs},
        operator_support={s.family: s for s in ops.support},
    )


def _check_edge(edge: EdgeFile, sources: dict, file: str) -> list[Problem]:
    problems = _check_ids_unique(edge.families, file, "families") + _check_ids_unique(edge.devices, file, "devices")
    problems += _check_sources(edge.devices, sources, file, "devices")
    families = {f.id for f in edge.families}
    devices = {d.id for d in edge.devices}
    for i, fam in enumerate(edge.families):
        for fname in ("compute_efficiency", "memory_bw_efficiency", "framework_overhead_ms", "optimized_overhead_ms",
                      "power_at_idle"):
            if getattr(fam, fname) is not None:
                problems += _check_sources([getattr(fam, fname)], sources, file, f"families[{i}].{fname}")
    problems += _check_refs(edge.devices, "family", families, file, "devices", "edge family",
                            "add the family under `families:`")
    problems += _check_refs(edge.devices, "host", devices, file, "devices", "host", "use the id of another edge device")
    for i, d in enumerate(edge.devices):
        if d.unit_price_usd is not None:
            problems += _check_sources([d.unit_price_usd], sources, file, f"devices[{i}].unit_price_usd")
        problems += _check_sources(d.video_decoders, sources, file, f"devices[{i}].video_decoders")
        cited = [p for p in (d.host_cpu_gflops, d.context_gflop, *d.software_decode_pixels_per_s_per_core.values())
                 if p is not None and p.source]
        problems += _check_sources(cited, sources, file, f"devices[{i}]")
    return problems


def _check_operators(ops: OperatorsFile, mod: ModelsFile, edge: EdgeFile, sources: dict, file: str,
                     models_file: str) -> list[Problem]:
    problems = _check_ids_unique(ops.graphs, file, "graphs") + _check_sources(ops.graphs, sources, file, "graphs")
    problems += _check_sources(ops.support, sources, file, "support")
    for i, sup in enumerate(ops.support):
        problems += _check_sources(list(sup.rates.values()), sources, file, f"support[{i}].rates")
    graphs = {g.id for g in ops.graphs}
    for i, g in enumerate(ops.graphs):
        total = sum(s.flops_share for s in g.segments)
        if abs(total - 1.0) > 1e-6:
            problems.append(Problem(f"segment flops_share values add up to {total:g}, not 1", file=file,
                                    path=f"graphs[{i}].segments", fix="make the shares of the graph's FLOPs sum to 1"))
    problems += _check_refs(ops.support, "family", {f.id for f in edge.families}, file, "support", "edge family",
                            "use a family id from edge.yaml")
    for i, m in enumerate(mod.models):
        graph = getattr(m.shape, "graph", None)
        if graph is not None and graph not in graphs:
            problems.append(Problem(f"unknown operator graph `{graph}`.{did_you_mean(graph, graphs)}",
                                    file=models_file, path=f"models[{i}].shape.graph",
                                    fix="use a graph id from operators.yaml"))
    return problems


__all__ = ["Catalog", "load_catalogs", "default_catalog_dir", "default_constraints_dir", "dotted"]
