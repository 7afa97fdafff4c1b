"""Every way to run each workload of a tier spec, as rows with per-site costs and the metrics limits read.

Roles: `edge` (the whole workload on devices at the site), `cloud` (every site's traffic on one cloud
fleet, reached over the tier graph), `split-edge` + `split-cloud` (a small model at the edge on
everything, the fallback fraction on a larger model in the cloud; chosen together).

Edge rows: device x power mode x precision x units (the fewest that carry the load, and more when more
cuts queueing). Cost per site per month = units x price / amortization + energy x electricity.
Cloud rows: the data-centre candidate table (`candidates.enumerate_candidates`) for all sites' load,
at a ladder of replica counts (more replicas, less queueing), kept where no cheaper row in the same
region is as fast. Cost per site = fleet cost / sites + transfer (upstream metered, downstream egress).
Latency: edge compute; or RTT + upload transfer + cloud latency (TTFT p99 for LLMs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from planner.candidates import enumerate_candidates
from planner.catalog.loader import Catalog
from planner.catalog.schema import LLMShape
from planner.errors import Problem, SpecError, did_you_mean
from planner.evaluate import resolve_workload
from planner.perf.edge import EdgeTarget, edge_llm, edge_targets, edge_vision, measurement_index
from planner.perf.serving import latencies_at
from planner.perf.shapes import llm_footprint
from planner.spec import WorkloadSpec
from planner.tier.graph import Route, routes
from planner.tier.spec import HOURS_PER_MONTH, LLMTierWorkload, TierSpec, VisionTierWorkload
from planner.units import ceil_div

REPLICA_LADDER = (1.0, 1.25, 1.5, 2.0, 3.0)
LEAVES_RANK = {"none": 0, "crops": 1, "raw": 2}


@dataclass(frozen=True)
class TierOption:
    index: int
    workload: str
    role: str  # edge | cloud | split-edge | split-cloud
    model: str
    device: str
    mode: str | None  # edge power mode
    precision: str
    units: int  # edge devices per site, or cloud replicas for the whole fleet
    usd_per_month: float  # per site, all parts
    cost_parts: dict[str, float]  # capex, energy, cloud, transfer (USD per site per month)
    energy_kwh_per_month: float | None  # per site (cloud: the site's share, at the region's PUE)
    site_power_w: float  # peak draw at the site
    slots: int  # devices installed at the site
    uplink_mbps: float  # upstream per site
    hops: tuple[int, ...]  # network links the upstream traffic crosses
    latency_ms: float  # vision: one frame end to end; llm: TTFT p99 end to end
    tpot_ms: float | None
    accuracy: float  # this row's contribution to the workload's accuracy retention
    leaves: str  # none | crops | raw
    basis: str  # "model" or the id of the published measurement used
    region: str | None = None
    detail: dict = field(default_factory=dict)

    @property
    def tier(self) -> str:
        return self.role.split("-")[0]

    def label(self) -> str:
        if self.role in ("edge", "split-edge"):
            return f"{self.units} x {self.device} @{self.mode} {self.precision}"
        return f"{self.device} x{self.detail.get('devices_per_replica', 1)} x {self.units} replicas " \
               f"{self.precision} on {self.region} ({self.detail.get('pricing')})"


@dataclass
class TierTable:
    options: list[TierOption] = field(default_factory=list)
    # workload -> "subject: reason" -> the precisions (or roles) it was excluded at
    excluded: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    routes: dict[str, Route] = field(default_factory=dict)

    def exclude(self, workload: str, reason: str, at: str = "") -> None:
        seen = self.excluded.setdefault(workload, {}).setdefault(reason, [])
        if at and at not in seen:
            seen.append(at)

    def of(self, workload: str) -> list[TierOption]:
        return [o for o in self.options if o.workload == workload]


def check_references(spec: TierSpec, catalog: Catalog, file: str | None) -> None:
    """Every catalog name in the spec, all problems at once."""
    problems = []

    def unknown(kind: str, name: str, known, path: str, fix: str) -> None:
        problems.append(Problem(f"unknown {kind} `{name}`.{did_you_mean(name, known)}", file=file, path=path, fix=fix))

    for i, w in enumerate(spec.workloads):
        want = "vision" if w.kind == "vision" else "llm"
        for path, name in (("model", w.model), ("split.edge_model", w.split.edge_model if w.split else None)):
            if name is None:
                continue
            entry = catalog.models.get(name)
            if entry is None:
                unknown("model", name, catalog.models, f"workloads[{i}].{path}", "see `planner catalog list models`")
            elif entry.shape.kind != want:
                problems.append(Problem(f"model `{name}` is a {entry.shape.kind} model but the workload is {w.kind}",
                                        file=file, path=f"workloads[{i}].{path}", fix=f"pick a {want} model"))
    for i, d in enumerate(spec.edge_devices):
        if d not in catalog.edge_devices:
            unknown("edge device", d, catalog.edge_devices, f"edge_devices[{i}]", "see `planner catalog list edge`")
    for d in spec.edge_prices:
        if d not in catalog.edge_devices:
            unknown("edge device", d, catalog.edge_devices, f"edge_prices.{d}", "see `planner catalog list edge`")
    for i, d in enumerate(spec.cloud.devices):
        if d not in catalog.accelerators:
            unknown("device", d, catalog.accelerators, f"cloud.devices[{i}]", "see `planner catalog list devices`")
    providers = {o.provider for o in catalog.offerings}
    for i, link in enumerate(spec.network.links):
        for end in ("source", "target"):
            node = getattr(link, end)
            if "/" in node:
                provider, _, region = node.partition("/")
                if not any(o.provider == provider and o.region == region for o in catalog.offerings):
                    regions = {f"{o.provider}/{o.region}" for o in catalog.offerings}
                    unknown("cloud region", node, regions, f"network.links[{i}].{'from' if end == 'source' else 'to'}",
                            "write provider/region as in `planner catalog list prices`, or a relay name without '/'")
    for p in spec.network.egress_usd_per_gb:
        if p not in providers:
            unknown("provider", p, providers, f"network.egress_usd_per_gb.{p}", "use a provider of the price catalog")
    if problems:
        raise SpecError(problems)


def enumerate_options(spec: TierSpec, catalog: Catalog, file: str | None = None,
                      cloud_cache: dict | None = None) -> TierTable:
    """All options of every workload. `cloud_cache` keeps the data-centre candidate tables between calls
    that change only the number of sites or prices (a table's rows do not depend on the load)."""
    check_references(spec, catalog, file)
    table = TierTable(routes=routes(spec.network))
    cache = {} if cloud_cache is None else cloud_cache
    measured = measurement_index(list(catalog.edge_measurements), catalog.edge_devices)
    for w in spec.workloads:
        full_acc = dict(w.precisions)
        if "edge" in w.tiers:
            _cached_edge_rows(spec, catalog, w, w.model, "edge", 1.0, table, measured, cache)
        if "cloud" in w.tiers:
            _cloud_rows(spec, catalog, w, w.model, "cloud", 1.0, table, full_acc, cache)
        if w.split is not None and "split" in w.tiers:
            s = w.split
            _cached_edge_rows(spec, catalog, w, s.edge_model, "split-edge",
                              s.accuracy_retention * (1 - s.fallback_fraction), table, measured, cache)
            _cloud_rows(spec, catalog, w, w.model, "split-cloud", s.accuracy_retention * s.fallback_fraction, table,
                        full_acc, cache)
    return table


# ---------------------------------------------------------------------------------------------- edge


def _targets(spec: TierSpec, catalog: Catalog) -> list[EdgeTarget]:
    ids = spec.edge_devices or sorted(catalog.edge_devices)
    return [t for d in ids for t in edge_targets(catalog.edge_devices, catalog.edge_families, d)]


def edge_price(spec: TierSpec, target: EdgeTarget) -> float | None:
    """The spec's quote wins over the catalog; a host (the Pi under a HAT) is priced from the catalog too."""
    quote = spec.edge_prices.get(target.device.id)
    if quote is None:
        return target.unit_price_usd
    host = spec.edge_prices.get(target.host.id) if target.host else None
    if target.host is not None and host is None:
        host = target.host.unit_price_usd.value if target.host.unit_price_usd else None
        if host is None:
            return None
    return quote + (host or 0.0)


def _cached_edge_rows(spec: TierSpec, catalog: Catalog, w, model_id: str, role: str, acc_share: float,
                      table: TierTable, measured, cache: dict) -> None:
    """Edge rows do not depend on the number of sites or the network: computed once per workload and role."""
    key = ("edge", role, w.model_dump_json(), spec.model_dump_json(exclude={"site": {"count"}, "network": True,
                                                                            "workloads": True}))
    local = cache.get(key)
    if local is None:
        local = cache[key] = TierTable()
        _edge_rows(spec, catalog, w, model_id, role, acc_share, local, measured)
    for o in local.options:
        table.options.append(replace(o, index=len(table.options)))
    for reason, at in local.excluded.get(w.name, {}).items():
        for a in at or [""]:
            table.exclude(w.name, reason, a)


def _edge_rows(spec: TierSpec, catalog: Catalog, w, model_id: str, role: str, acc_share: float, table: TierTable,
               measured) -> None:
    shape = catalog.models[model_id].shape
    fp = llm_footprint(shape) if isinstance(shape, LLMShape) else None
    for target in _targets(spec, catalog):
        price = edge_price(spec, target)
        if price is None:
            table.exclude(w.name, f"{target.device.id}: no unit price (add it under edge_prices)", role)
            continue
        for precision, retention in w.precisions.items():
            if isinstance(w, VisionTierWorkload):
                perf = edge_vision(target, shape, model_id, precision, w.input_resolution, measured, w.runtime)
                if perf is None:
                    table.exclude(w.name, f"{target.device.id}: no peak or measurement for {model_id} at", precision)
                    continue
                rows = _edge_vision_rows(spec, w, target, perf, price)
                if not rows:
                    table.exclude(w.name, f"{target.device.id}: {w.streams * w.fps:g} frames/s of {model_id} need "
                                          f"more than edge_max_units = {spec.edge_max_units} devices at", precision)
            else:
                perf = edge_llm(target, fp, model_id, precision, w.input_tokens, w.output_tokens, measured)
                if isinstance(perf, str):
                    table.exclude(w.name, f"{target.device.id}: {perf} for {model_id} at", precision)
                    continue
                rows = _edge_llm_rows(spec, w, target, perf, price)
            for units, latency_ms, tpot_ms, utilization, basis in rows:
                energy = units * target.idle_power_w + utilization * units * (target.power_w - target.idle_power_w)
                kwh = energy * HOURS_PER_MONTH / 1000
                capex = units * price / spec.amortization_months
                electricity = kwh * spec.site.electricity_usd_per_kwh
                table.options.append(TierOption(
                    index=len(table.options), workload=w.name, role=role, model=model_id, device=target.device.id,
                    mode=target.mode.name, precision=precision, units=units, usd_per_month=capex + electricity,
                    cost_parts={"capex": capex, "energy": electricity}, energy_kwh_per_month=kwh,
                    site_power_w=units * target.power_w, slots=units, uplink_mbps=0.0, hops=(),
                    latency_ms=latency_ms, tpot_ms=tpot_ms, accuracy=acc_share * retention, leaves="none",
                    basis=basis, detail={"utilization": utilization, "price_usd": price}))


def _edge_vision_rows(spec: TierSpec, w: VisionTierWorkload, target: EdgeTarget, perf, price):
    """Frames arrive evenly, so a device below full utilisation adds no queueing: latency = one frame's."""
    demand = w.streams * w.fps
    need = max(1, math.ceil(demand / (perf.fps_capacity * spec.edge_max_utilization) - 1e-9))
    if need > spec.edge_max_units:
        return []
    return [(need, perf.latency_s * 1000, None, demand / (need * perf.fps_capacity), perf.basis)]


def _edge_llm_rows(spec: TierSpec, w: LLMTierWorkload, target: EdgeTarget, perf, price):
    lam = w.requests_per_hour / 3600.0
    rows = []
    for units in range(1, spec.edge_max_units + 1):
        lat = latencies_at(perf.profile, lam / units)
        if math.isinf(lat.ttft_p99_s):
            continue
        rows.append((units, lat.ttft_p99_s * 1000, lat.tpot_s * 1000, lat.utilization, perf.basis))
        if lat.queueing_p99_s < 0.01 * lat.ttft_p99_s:
            break  # more units would not shorten anything
    return rows


# ---------------------------------------------------------------------------------------------- cloud


def cloud_spec(spec: TierSpec, w, model_id: str, fraction: float, providers: list[str], regions: list[str]) -> WorkloadSpec:
    """The cloud's share of a workload, for all sites, as an ordinary serving or vision spec without SLOs
    (latency is judged end to end, network included, by the tier model)."""
    if isinstance(w, LLMTierWorkload):
        workload = {"kind": "serving", "model": model_id,
                    "traffic": {"requests_per_s": spec.site.count * w.requests_per_hour / 3600.0 * fraction,
                                "input_tokens": w.input_tokens, "output_tokens": w.output_tokens}}
    else:
        workload = {"kind": "vision", "model": model_id, "streams": spec.site.count * w.streams,
                    "fps_per_stream": w.fps * fraction}
    precisions = [p for p in w.precisions if p != "fp32"]
    return WorkloadSpec.model_validate({
        "name": f"{spec.name}/{w.name}", "workload": workload,
        "search": {"providers": providers, "regions": regions, "pricing": list(spec.cloud.pricing),
                   "precisions": precisions, "devices": list(spec.cloud.devices)},
        "limits": {"max_utilization": spec.cloud.max_utilization}})


def _cloud_rows(spec: TierSpec, catalog: Catalog, w, model_id: str, role: str, acc_share: float, table: TierTable,
                retention: dict[str, float], cache: dict) -> None:
    reachable = {name: r for name, r in table.routes.items()
                 if (not spec.cloud.providers or name.split("/")[0] in spec.cloud.providers)
                 and (not spec.cloud.regions or name.split("/", 1)[1] in spec.cloud.regions)}
    if not reachable:
        table.exclude(w.name, f"{role}: no network path from the site to a cloud region (add network.links)")
        return
    fraction = w.split.fallback_fraction if role == "split-cloud" else 1.0
    up_kb, down_kb, leaves = _payload(w, role)
    providers = sorted({n.split("/")[0] for n in reachable})
    regions = sorted({n.split("/", 1)[1] for n in reachable})
    cspec = cloud_spec(spec, w, model_id, fraction, providers, regions)
    key = (w.name, role, cspec.model_dump_json(exclude={"workload"}), w.model_dump_json(exclude={"streams", "fps",
                                                                                                 "requests_per_hour"}))
    cloud_table = cache.get(key)
    if cloud_table is None:
        cloud_table = cache[key] = enumerate_candidates(resolve_workload(cspec, catalog), catalog)
    w_cloud = cspec.workload
    demand = (w_cloud.traffic.requests_per_s if isinstance(w, LLMTierWorkload)
              else w_cloud.streams * w_cloud.fps_per_stream)
    per_site_events = demand / spec.site.count  # requests or frames per second per site
    seconds = HOURS_PER_MONTH * 3600
    best: dict[tuple, list[TierOption]] = {}
    for row in cloud_table.replica_rows:
        o = row.candidate.offering
        route = reachable.get(f"{o.provider}/{o.region}") if o else None
        if route is None or row.usd_per_unit_hour is None:
            continue
        egress = spec.network.egress_usd_per_gb.get(o.provider, catalog.egress_usd_per_gb.get(o.provider))
        if egress is None:
            table.exclude(w.name, f"{o.provider}: no egress price (add network.egress_usd_per_gb.{o.provider})")
            continue
        rate_cap = row.rate_limits.get("throughput.max_utilization", 0.0)
        if rate_cap <= 0:
            continue
        n_min = max(1, math.ceil(demand / rate_cap - 1e-9))
        for n in sorted({max(n_min, math.ceil(n_min * k)) for k in REPLICA_LADDER}):
            lam = demand / n
            if lam < row.min_rate:
                continue
            if row.profile is not None:
                lat = latencies_at(row.profile, lam)
                cloud_ms, tpot_ms = lat.ttft_p99_s * 1000, lat.tpot_s * 1000
            else:
                batch = row.candidate.parallel.micro_batch
                cloud_ms, tpot_ms = ((batch - 1) / lam + row.latency_s) * 1000, None
            if math.isinf(cloud_ms):
                continue
            billed = ceil_div(n * row.devices_per_replica, row.unit_devices)
            fleet_usd_h = billed * row.usd_per_unit_hour
            cloud_usd = fleet_usd_h * HOURS_PER_MONTH / spec.site.count
            gb_up = per_site_events * up_kb * seconds / 1e6
            gb_down = per_site_events * down_kb * seconds / 1e6
            transfer = gb_up * route.usd_per_gb + gb_down * egress
            kwh = None
            if row.power_static_w is not None and row.site.pue is not None:
                watts = n * row.power_static_w + (row.power_per_rate_w or 0.0) * demand
                kwh = watts * row.site.pue * HOURS_PER_MONTH / 1000 / spec.site.count
            option = TierOption(
                index=-1, workload=w.name, role=role, model=model_id, device=row.candidate.device, mode=None,
                precision=row.candidate.precision, units=n, usd_per_month=cloud_usd + transfer,
                cost_parts={"cloud": cloud_usd, "transfer": transfer}, energy_kwh_per_month=kwh, site_power_w=0.0,
                slots=0, uplink_mbps=per_site_events * up_kb * 8 / 1000, hops=route.hops,
                latency_ms=route.rtt_ms + route.transfer_ms(up_kb) + cloud_ms, tpot_ms=tpot_ms,
                accuracy=acc_share * retention.get(row.candidate.precision, 1.0), leaves=leaves, basis="model",
                region=route.region,
                detail={"pricing": o.pricing, "instance": o.instance, "devices_per_replica": row.devices_per_replica,
                        "batch": row.candidate.parallel.micro_batch, "fleet_usd_per_hour": fleet_usd_h,
                        "billed_units": billed, "cloud_latency_ms": cloud_ms, "rtt_ms": route.rtt_ms,
                        "transfer_ms": route.transfer_ms(up_kb), "gb_up": gb_up, "gb_down": gb_down})
            best.setdefault((route.region, row.candidate.precision), []).append(option)
    if not best:
        table.exclude(w.name, f"{role}: no cloud offering can carry the load in the reachable regions")
    for group in best.values():
        for option in _pareto(group):
            table.options.append(replace(option, index=len(table.options)))


def _payload(w, role: str) -> tuple[float, float, str]:
    """Kilobytes up and down per event, and what leaves the site."""
    if isinstance(w, VisionTierWorkload):
        if role == "split-cloud":
            return w.split.fallback_kb, w.result_kb, "crops"
        return w.frame_kb, w.result_kb, "raw"
    if role == "split-cloud":
        return w.split.fallback_kb, w.response_kb, "raw"
    return w.request_kb, w.response_kb, "raw"


def _pareto(group: list[TierOption]) -> list[TierOption]:
    """Rows of one region and precision: keep those no cheaper row matches on latency, TPOT and energy."""
    kept: list[TierOption] = []
    for o in sorted(group, key=lambda o: (o.usd_per_month, o.latency_ms, o.tpot_ms or 0.0)):
        if any(k.latency_ms <= o.latency_ms and (k.tpot_ms or 0.0) <= (o.tpot_ms or 0.0)
               and (k.energy_kwh_per_month or 0.0) <= (o.energy_kwh_per_month or 0.0) for k in kept):
            continue
        kept.append(o)
    return kept
