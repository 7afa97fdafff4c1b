"""Every way to run each workload of a tier spec, as rows with per-site costs and the metrics limits read.

Roles: `edge` (the whole workload on devices at the site), `cloud` (every site's traffic on one cloud
fleet, reached over the tier graph), `split-edge` + `split-cloud` (a small model at the edge on
everything, the fallback fraction on a larger model in the cloud; chosen together).

Edge rows: device x power mode x precision x units (the fewest that carry the load, and more when more
cuts queueing). Cost per site per month = units x price / amortization + energy x electricity.
Cloud rows: the data-centre candidate table (`candidates.enumerate_candidates`) for all sites' load,
at a ladder of replica counts (more replicas, less queueing), kept where no cheaper row in the same
region is as fast. Cost per site = fleet cost / sites + transfer (upstream metered, downstream egress).
Latency: edge compute; or RTT + upload transfer + cloud latency (TTFT p99 for LLMs; for speech, the time
from the end of an audio window to its transcript, the audio having been sent as it was spoken).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from planner.candidates import enumerate_candidates
from planner.catalog.loader import Catalog
from planner.catalog.schema import LLMShape
from planner.errors import Problem, SpecError, did_you_mean
from planner.evaluate import resolve_workload
from planner.perf.edge import (
    EdgeTarget,
    edge_llm,
    edge_targets,
    measured_power,
    measurement_index,
    overhead_s,
    transformer_unfit,
)
from planner.perf.edge_vision import edge_vision
from planner.perf.roofline import achievable_bandwidth, achievable_flops, peak_flops
from planner.perf.serving import latencies_at
from planner.perf.speech import speech_window
from planner.perf.shapes import llm_footprint
from planner.spec import WorkloadSpec
from planner.tier.graph import Route, routes
from planner.tier.host import host_load
from planner.tier.spec import HOURS_PER_MONTH, LLMTierWorkload, SpeechTierWorkload, TierSpec, VisionTierWorkload
from planner.units import BYTES_PER_ELEMENT, ceil_div

REPLICA_LADDER = (1.0, 1.25, 1.5, 2.0, 3.0)


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
    latency_ms: float  # vision: one frame end to end; llm: TTFT p99 end to end; speech: window to transcript
    tpot_ms: float | None
    accuracy: float  # this row's contribution to the workload's accuracy retention
    leaves: str  # none | crops | raw
    basis: str  # "model" or the id of the published measurement used
    region: str | None = None
    host_load: float | None = None  # vision at the edge: the host's decoder or CPU, share of one unit's
    detail: dict = field(default_factory=dict)

    @property
    def tier(self) -> str:
        return self.role.split("-")[0]

    def label(self) -> str:
        if self.role == "pool":
            return f"{self.units} x {self.device} @{self.mode}, shared"
        if self.role == "edge-shared":
            return f"on the shared {self.device} @{self.mode} {self.precision}"
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
        want = w.kind
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
        if not catalog.devices_named(d):
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
    regions = {o.region for o in catalog.offerings}
    for i, p in enumerate(spec.cloud.providers):
        if p not in providers:
            unknown("provider", p, providers, f"cloud.providers[{i}]", "use a provider of the price catalog")
    for i, r in enumerate(spec.cloud.regions):
        if r not in regions:
            unknown("region", r, regions, f"cloud.regions[{i}]", "see `planner catalog list prices`")
    for p in spec.network.egress_usd_per_gb:
        if p not in providers:
            unknown("provider", p, providers, f"network.egress_usd_per_gb.{p}", "use a provider of the price catalog")
    if problems:
        raise SpecError(problems)


def enumerate_options(spec: TierSpec, catalog: Catalog, file: str | None = None,
                      cache: dict | None = None) -> TierTable:
    """All options of every workload. `cache` keeps the data-centre candidate tables and the edge rows
    between calls that change only the number of sites or prices (neither depends on the load)."""
    check_references(spec, catalog, file)
    table = TierTable(routes=routes(spec.network))
    cache = {} if cache is None else cache
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
    if _sharing(spec):
        _pools(spec, catalog, table)
    if spec.objective == "energy":
        for o in table.options:
            if o.energy_kwh_per_month is None:
                table.exclude(o.workload, f"{o.device}: no TDP or PUE in the catalog, so no energy to minimise",
                              o.role)
        kept = [o for o in table.options if o.energy_kwh_per_month is not None]
        table.options = [replace(o, index=i) for i, o in enumerate(kept)]
    return table


# ---------------------------------------------------------------------------------------------- edge


def _targets(spec: TierSpec, catalog: Catalog) -> list[EdgeTarget]:
    ids = spec.edge_devices or sorted(catalog.edge_devices)
    return [t for d in ids for t in edge_targets(catalog.edge_devices, catalog.edge_families, d)]


def edge_price(spec: TierSpec, target: EdgeTarget) -> float | None:
    """The device and its host (the Pi under a HAT), each at the spec's quote or else the catalog's price."""
    def price_of(device) -> float | None:
        quote = spec.edge_prices.get(device.id)
        if quote is not None:
            return quote
        return device.unit_price_usd.value if device.unit_price_usd else None

    parts = [price_of(target.device)] + ([price_of(target.host)] if target.host else [])
    return None if None in parts else sum(parts)


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
            rows = _edge_kind_rows(spec, w, target, shape, fp, model_id, precision, measured, catalog)
            if isinstance(rows, str):
                table.exclude(w.name, f"{target.device.id}: {rows} for {model_id} at", precision)
                continue
            # Pay for what a published run drew where one did; provision (site.power) for the larger of that
            # and the mode's budget.
            power = measured_power(target, catalog.edge_measurements, model_id, precision)
            busy_w = max(power[0], target.idle_power_w) if power else target.power_w
            for r in rows:
                units, utilization = r.units, r.utilization
                energy = units * target.idle_power_w + utilization * units * (busy_w - target.idle_power_w)
                kwh = energy * HOURS_PER_MONTH / 1000
                capex = units * price / spec.amortization_months
                electricity = kwh * spec.site.electricity_usd_per_kwh
                table.options.append(TierOption(
                    index=len(table.options), workload=w.name, role=role, model=model_id, device=target.device.id,
                    mode=target.mode.name, precision=precision, units=units, usd_per_month=capex + electricity,
                    cost_parts={"capex": capex, "energy": electricity}, energy_kwh_per_month=kwh,
                    site_power_w=units * max(target.power_w, busy_w), slots=units, uplink_mbps=0.0, hops=(),
                    latency_ms=r.latency_ms, tpot_ms=r.tpot_ms, accuracy=acc_share * retention, leaves="none",
                    basis=r.basis, host_load=r.host_load,
                    detail={"utilization": utilization, "price_usd": price, "batch": r.batch, "busy_w": busy_w}
                    | ({"decoder": r.decoder} if r.decoder else {}) | ({"power_basis": power[1]} if power else {})))
                if units == 1 and role == "edge" and _sharing(spec) and target.device.memory_gb:
                    table.options.append(_shared_twin(spec, target, table.options[-1], r, len(table.options)))


def _sharing(spec: TierSpec) -> bool:
    return spec.share_edge_devices and len(spec.workloads) > 1


def _shared_twin(spec: TierSpec, target: EdgeTarget, alone: TierOption, r: EdgeRow, index: int) -> TierOption:
    """The same run on one unit of a device the site shares between workloads (see `_pools`): the row pays
    only the energy its own load adds; the pool pays the units and their idle power."""
    kwh = r.utilization * (alone.detail["busy_w"] - target.idle_power_w) * HOURS_PER_MONTH / 1000
    electricity = kwh * spec.site.electricity_usd_per_kwh
    return replace(alone, index=index, role="edge-shared", usd_per_month=electricity,
                   cost_parts={"energy": electricity}, energy_kwh_per_month=kwh, site_power_w=0.0, slots=0,
                   detail=alone.detail | {"pool": target.label, "share": r.utilization,
                                          "block_ms": r.block_s * 1000, "memory_gb": r.memory_gb})


def _pools(spec: TierSpec, catalog: Catalog, table: TierTable) -> None:
    """1 to edge_max_units units of each device (in its mode) that workloads may share: capex and idle power.
    What runs on them is the workloads' `edge-shared` rows; a device only one workload can run is not
    shared, so its rows are dropped (the plain `edge` rows already cover it)."""
    sharers: dict[str, set[str]] = {}
    for o in table.options:
        if o.role == "edge-shared":
            sharers.setdefault(o.detail["pool"], set()).add(o.workload)
    labels = {label for label, names in sharers.items() if len(names) > 1}
    if len(labels) < len(sharers):
        kept = [o for o in table.options if o.role != "edge-shared" or o.detail["pool"] in labels]
        table.options = [replace(o, index=i) for i, o in enumerate(kept)]
    for target in _targets(spec, catalog):
        if target.label not in labels:
            continue
        price = edge_price(spec, target)
        for units in range(1, spec.edge_max_units + 1):
            kwh = units * target.idle_power_w * HOURS_PER_MONTH / 1000
            capex = units * price / spec.amortization_months
            electricity = kwh * spec.site.electricity_usd_per_kwh
            table.options.append(TierOption(
                index=len(table.options), workload="", role="pool", model="", device=target.device.id,
                mode=target.mode.name, precision="", units=units, usd_per_month=capex + electricity,
                cost_parts={"capex": capex, "energy": electricity}, energy_kwh_per_month=kwh,
                site_power_w=units * target.power_w, slots=units, uplink_mbps=0.0, hops=(), latency_ms=0.0,
                tpot_ms=None, accuracy=0.0, leaves="none", basis="model",
                detail={"pool": target.label, "price_usd": price,
                        "usable_memory_gb": target.device.memory_gb - target.family.memory_reserve_gb}))


@dataclass(frozen=True)
class EdgeRow:
    """One way to run a workload on one kind of edge device, before it is priced."""

    units: int
    latency_ms: float
    tpot_ms: float | None
    utilization: float  # of the units' capacity
    basis: str  # "model" or the published measurement used
    batch: int = 1  # frames (or audio windows, sequences) per call
    host_load: float | None = None  # vision: the busier of the host's video decoder and CPU (tier.host)
    decoder: str | None = None
    # For sharing a device: the longest the workload holds it before another's work can run (one vision call;
    # one layer of a prefill or of an audio window: a GPU switches between work at kernel boundaries), and
    # the memory it keeps there.
    block_s: float = 0.0
    memory_gb: float = 0.0


def _edge_kind_rows(spec: TierSpec, w, target: EdgeTarget, shape, fp, model_id: str, precision: str,
                    measured, catalog: Catalog) -> list[EdgeRow] | str:
    """The rows of this workload's kind on one target, or why none."""
    too_many = f"the load needs more than edge_max_units = {spec.edge_max_units} devices"
    if isinstance(w, VisionTierWorkload):
        return _edge_vision_rows(spec, w, target, shape, model_id, precision, measured, catalog) or too_many
    if isinstance(w, SpeechTierWorkload):
        why = _speech_unfit(target, shape, precision)
        return why or _edge_speech_rows(spec, w, target, shape, precision) or too_many
    perf = edge_llm(target, fp, model_id, precision, w.input_tokens, w.output_tokens, measured)
    return perf if isinstance(perf, str) else _edge_llm_rows(spec, w, perf)


# Frames per call tried where the runtime batches across streams (TensorRT, HailoRT).
VISION_BATCHES = (1, 2, 4, 8, 16, 32)


def _edge_vision_rows(spec: TierSpec, w: VisionTierWorkload, target: EdgeTarget, shape, model_id: str,
                      precision: str, measured, catalog: Catalog):
    """Per batch, the fewest devices that carry the load, and the fewest whose hosts also decode the streams.
    Frames arrive evenly, so a device below full utilisation adds no queueing; a batch of b first waits for
    its b frames: latency = (b - 1) / rate + call. Rows another row matches on devices, latency and host load
    are dropped."""
    demand = w.streams * w.fps
    graph = catalog.operator_graphs.get(shape.graph)
    support = catalog.operator_support.get(target.family.id)
    headroom = spec.edge_max_utilization
    weights_gb = shape.params_m * 1e6 * BYTES_PER_ELEMENT[precision] / 1e9
    rows: list[EdgeRow] = []
    for batch in VISION_BATCHES:
        if batch > target.family.max_batch:
            break
        perf = edge_vision(target, shape, model_id, precision, w.input_resolution, measured, w.runtime, batch,
                           graph, support)
        if perf is None:
            return "no peak or measurement" if batch == 1 else rows
        need = max(1, math.ceil(demand / (perf.fps_capacity * headroom) - 1e-9))
        for units in range(need, spec.edge_max_units + 1):
            calls_per_s = demand / units / batch
            host = host_load(w, target, units, perf.host_cpu_s * calls_per_s)
            if isinstance(host, str):
                return host
            latency_ms = ((batch - 1) / (demand / units) + perf.latency_s) * 1000
            if not any(r.units <= units and r.latency_ms <= latency_ms and r.host_load <= host.load for r in rows):
                rows.append(EdgeRow(units, latency_ms, None, demand / (units * perf.fps_capacity), perf.basis, batch,
                                    host.load, host.decoder, perf.latency_s, weights_gb))
            if host.load <= headroom:
                break  # more units would only cost more
    return rows


def _edge_llm_rows(spec: TierSpec, w: LLMTierWorkload, perf):
    lam = w.requests_per_hour / 3600.0
    rows = []
    for units in range(1, spec.edge_max_units + 1):
        lat = latencies_at(perf.profile, lam / units)
        if math.isinf(lat.ttft_p99_s):
            continue
        prof = perf.profile
        memory_gb = (prof.memory.weights + prof.batch * (w.input_tokens + w.output_tokens)
                     * prof.cost.kv_bytes_per_token) / 1e9
        rows.append(EdgeRow(units, lat.ttft_p99_s * 1000, lat.tpot_s * 1000, lat.utilization, perf.basis,
                            prof.batch, block_s=prof.prefill_s / prof.cost.layers, memory_gb=memory_gb))
        if lat.queueing_p99_s < 0.01 * lat.ttft_p99_s:
            break  # more units would not shorten anything
    return rows


def _speech_unfit(target: EdgeTarget, shape, precision: str) -> str | None:
    why = transformer_unfit(target, precision)
    usable = (target.device.memory_gb or 0.0) - target.family.memory_reserve_gb
    if why is None and shape.params_m * 1e6 * BYTES_PER_ELEMENT[precision] > usable * 1e9:
        why = "weights exceed the usable memory"
    return why


def _edge_speech_rows(spec: TierSpec, w: SpeechTierWorkload, target: EdgeTarget, shape, precision: str):
    """Windows of all streams a unit carries end together: it transcribes them as one batch, within the
    window length (with headroom) to keep up, and the batch's time is every stream's latency."""
    fam = target.family
    tokens = w.transcript_tokens_per_minute * shape.window_s / 60
    rows = []
    for units in range(1, min(spec.edge_max_units, w.streams) + 1):
        batch = math.ceil(w.streams / units)
        window = speech_window(shape, precision, compute_flops=target.peak_flops(precision) * fam.compute_efficiency.value,
                               bandwidth_bytes=target.memory_bw_gb_per_s * 1e9 * fam.memory_bw_efficiency.value,
                               overhead_s=overhead_s(fam, "framework"), tokens=tokens, batch=batch)
        utilization = window.latency_s / shape.window_s
        if utilization <= spec.edge_max_utilization:
            rows.append(EdgeRow(units, window.latency_s * 1000, None, utilization, "model", batch,
                                block_s=window.latency_s / (shape.encoder_layers + shape.decoder_layers),
                                memory_gb=shape.params_m * 1e6 * BYTES_PER_ELEMENT[precision] / 1e9))
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
    # A cloud option is one kind of replica at a count (the tier model's ladder): whole-request replicas only.
    search = {k: v for k, v in {"providers": providers, "regions": regions, "pricing": list(spec.cloud.pricing),
                                "precisions": precisions, "devices": list(spec.cloud.devices)}.items() if v}
    if workload["kind"] == "serving":
        search["disaggregated"] = "never"
    return WorkloadSpec.model_validate({
        "name": f"{spec.name}/{w.name}", "workload": workload, "search": search,
        "limits": {"max_utilization": spec.cloud.max_utilization}})


@dataclass(frozen=True)
class _CloudContext:
    """What every cloud option of one workload part shares: where it can go and what it sends."""

    w: object
    role: str
    model_id: str
    acc_share: float
    retention: dict[str, float]
    demand: float  # events (requests, frames, audio windows) per second over all sites
    up_kb: float
    down_kb: float
    leaves: str
    # What is still in flight when the event ends: all of a request or frame; the last second of a stream of
    # audio, which is sent as it is spoken.
    tail_kb: float


def _reachable(spec: TierSpec, table: TierTable) -> dict[str, Route]:
    return {name: r for name, r in table.routes.items()
            if (not spec.cloud.providers or name.split("/")[0] in spec.cloud.providers)
            and (not spec.cloud.regions or name.split("/", 1)[1] in spec.cloud.regions)}


def _egress(spec: TierSpec, catalog: Catalog, table: TierTable, w, provider: str) -> float | None:
    egress = spec.network.egress_usd_per_gb.get(provider, catalog.egress_usd_per_gb.get(provider))
    if egress is None:
        table.exclude(w.name, f"{provider}: no egress price (add network.egress_usd_per_gb.{provider})")
    return egress


def _cloud_option(spec: TierSpec, ctx: _CloudContext, route: Route, offering, egress: float, *, device: str,
                  precision: str, replicas: int, devices_per_replica: int, batch: int, cloud_ms: float,
                  tpot_ms: float | None, fleet_watts: float | None, pue: float | None) -> TierOption:
    """One cloud configuration priced per site: its share of the fleet, plus transfer both ways."""
    seconds = HOURS_PER_MONTH * 3600
    billed = ceil_div(replicas * devices_per_replica, offering.devices)
    fleet_usd_h = billed * offering.usd_per_hour
    cloud_usd = fleet_usd_h * HOURS_PER_MONTH / spec.site.count
    per_site_events = ctx.demand / spec.site.count
    gb_up = per_site_events * ctx.up_kb * seconds / 1e6
    gb_down = per_site_events * ctx.down_kb * seconds / 1e6
    transfer = gb_up * route.usd_per_gb + gb_down * egress
    kwh = None
    if fleet_watts is not None and pue is not None:
        kwh = fleet_watts * pue * HOURS_PER_MONTH / 1000 / spec.site.count
    return TierOption(
        index=-1, workload=ctx.w.name, role=ctx.role, model=ctx.model_id, device=device, mode=None,
        precision=precision, units=replicas, usd_per_month=cloud_usd + transfer,
        cost_parts={"cloud": cloud_usd, "transfer": transfer}, energy_kwh_per_month=kwh, site_power_w=0.0,
        slots=0, uplink_mbps=per_site_events * ctx.up_kb * 8 / 1000, hops=route.hops,
        latency_ms=route.rtt_ms + route.transfer_ms(ctx.tail_kb) + cloud_ms, tpot_ms=tpot_ms,
        accuracy=ctx.acc_share * ctx.retention.get(precision, 1.0), leaves=ctx.leaves, basis="model",
        region=route.region,
        detail={"pricing": offering.pricing, "instance": offering.instance, "devices_per_replica": devices_per_replica,
                "batch": batch, "fleet_usd_per_hour": fleet_usd_h, "billed_units": billed,
                "cloud_latency_ms": cloud_ms, "rtt_ms": route.rtt_ms, "transfer_ms": route.transfer_ms(ctx.tail_kb),
                "gb_up": gb_up, "gb_down": gb_down})


def _replica_ladder(demand: float, rate_cap: float) -> list[int]:
    """The fewest replicas that carry the load, and more (less queueing, lower latency)."""
    n_min = max(1, math.ceil(demand / rate_cap - 1e-9))
    return sorted({max(n_min, math.ceil(n_min * k)) for k in REPLICA_LADDER})


def _keep_pareto(table: TierTable, best: dict[tuple, list[TierOption]], w, role: str) -> None:
    if not best:
        table.exclude(w.name, f"{role}: no cloud offering can carry the load in the reachable regions")
    for group in best.values():
        for option in _pareto(group):
            table.options.append(replace(option, index=len(table.options)))


def _cloud_rows(spec: TierSpec, catalog: Catalog, w, model_id: str, role: str, acc_share: float, table: TierTable,
                retention: dict[str, float], cache: dict) -> None:
    reachable = _reachable(spec, table)
    if not reachable:
        table.exclude(w.name, f"{role}: no network path from the site to a cloud region (add network.links)")
        return
    if isinstance(w, SpeechTierWorkload):
        _cloud_speech_rows(spec, catalog, w, model_id, role, acc_share, table, retention, reachable)
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
    ctx = _CloudContext(w, role, model_id, acc_share, retention, demand, up_kb, down_kb, leaves, up_kb)
    best: dict[tuple, list[TierOption]] = {}
    for row in cloud_table.replica_rows:
        o = row.candidate.offering
        route = reachable.get(f"{o.provider}/{o.region}") if o else None
        if route is None or row.usd_per_unit_hour is None:
            continue
        egress = _egress(spec, catalog, table, w, o.provider)
        rate_cap = row.rate_limits.get("throughput.max_utilization", 0.0)
        if egress is None or rate_cap <= 0:
            continue
        for n in _replica_ladder(demand, rate_cap):
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
            watts = None
            if row.power_static_w is not None:
                watts = n * row.power_static_w + (row.power_per_rate_w or 0.0) * demand
            option = _cloud_option(spec, ctx, route, o, egress, device=row.candidate.device,
                                   precision=row.candidate.precision, replicas=n,
                                   devices_per_replica=row.devices_per_replica,
                                   batch=row.candidate.parallel.micro_batch, cloud_ms=cloud_ms, tpot_ms=tpot_ms,
                                   fleet_watts=watts, pue=row.site.pue)
            best.setdefault((route.region, row.candidate.precision), []).append(option)
    _keep_pareto(table, best, w, role)


SPEECH_BATCHES = (1, 4, 16, 64)


def _cloud_speech_rows(spec: TierSpec, catalog: Catalog, w, model_id: str, role: str, acc_share: float,
                       table: TierTable, retention: dict[str, float], reachable: dict[str, Route]) -> None:
    """Speech on one data-centre accelerator per replica, batching windows of many sites' streams."""
    shape = catalog.models[model_id].shape
    fraction = w.split.fallback_fraction if role == "split-cloud" else 1.0
    demand = spec.site.count * w.streams / shape.window_s * fraction
    up_kb, down_kb, leaves = _payload(w, role, shape.window_s)
    tail_kb = up_kb if role == "split-cloud" else w.audio_kb_per_s
    ctx = _CloudContext(w, role, model_id, acc_share, retention, demand, up_kb, down_kb, leaves, tail_kb)
    tokens = w.transcript_tokens_per_minute * shape.window_s / 60
    best: dict[tuple, list[TierOption]] = {}
    for o in catalog.offerings:
        route = reachable.get(f"{o.provider}/{o.region}")
        system = catalog.systems[o.system]
        if route is None or o.pricing not in spec.cloud.pricing or (
                spec.cloud.devices and not any(system.accelerator in catalog.devices_named(d) for d in spec.cloud.devices)):
            continue
        egress = _egress(spec, catalog, table, w, o.provider)
        device = catalog.accelerators[system.accelerator]
        family = catalog.family_of(device)
        if egress is None or device.memory_bw_gb_per_s is None:
            continue
        region = catalog.region(o.provider, o.region)
        for precision in w.precisions:
            if peak_flops(device, precision) is None:
                continue
            compute = achievable_flops(device, family, precision)
            for batch in SPEECH_BATCHES:
                window = speech_window(shape, precision, compute_flops=compute,
                                       bandwidth_bytes=achievable_bandwidth(device, family), overhead_s=0.0,
                                       tokens=tokens, batch=batch)
                for n in _replica_ladder(demand, window.windows_per_s * spec.cloud.max_utilization):
                    wait = (batch - 1) / (demand / n)
                    utilization = demand / (n * window.windows_per_s)
                    watts = None
                    if device.tdp_w is not None:
                        idle, full = family.power_at_idle.value, family.power_at_full_load.value
                        watts = n * device.tdp_w * (idle + (full - idle) * utilization)
                    option = _cloud_option(spec, ctx, route, o, egress, device=device.id, precision=precision,
                                           replicas=n, devices_per_replica=1, batch=batch,
                                           cloud_ms=(wait + window.latency_s) * 1000, tpot_ms=None,
                                           fleet_watts=watts, pue=region.pue.value if region and region.pue else None)
                    best.setdefault((route.region, precision), []).append(option)
    _keep_pareto(table, best, w, role)


def _payload(w, role: str, window_s: float = 0.0) -> tuple[float, float, str]:
    """Kilobytes up and down per event (request, frame, audio window), and what leaves the site."""
    if isinstance(w, SpeechTierWorkload):
        if role == "split-cloud":
            return w.split.fallback_kb, w.result_kb_per_min * window_s / 60, "raw"
        return w.audio_kb_per_s * window_s, w.result_kb_per_min * window_s / 60, "raw"
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
