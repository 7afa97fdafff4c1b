"""Enumerate the structurally valid configurations of a spec and precompute their numbers.

The solver chooses among rows of this table; nothing here knows about CP-SAT. A row is one way to run
the workload: device, system, offering (or owned hardware), precision and parallel layout.

- Training rows are complete configurations (the device count is part of the layout). Per (system,
  precision, device count) only the fastest layout whose memory fits is kept: the split into tp/pp/dp/ep,
  recomputation, ZeRO stage, interleaving depth and micro-batch change neither the device count nor the
  price per hour nor the power, so the fastest is also the cheapest, the least energy and the earliest
  (strict dominance).
- Serving and vision rows are replica configurations: the solver picks how many replicas. Each row carries,
  per latency limit, the highest request rate one replica sustains within it (`rate_limits`); power is
  affine in replicas and load. Batch sizes dominated on every limit and on power are dropped.

Nothing that breaks a *user* limit is dropped here: that stays in the model under its named constraint.
What is dropped for physical reasons (no memory fit, a precision the device lacks, a missing catalog
figure) is counted in `excluded` with the best example, so the explainer can still say why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from planner.catalog.loader import Catalog
from planner.catalog.schema import Accelerator, Offering, System
from planner.catalog.topology import scaleup_domain
from planner.constraints import SLO_METRICS
from planner.evaluate import (
    Candidate,
    Evaluation,
    ResolvedWorkload,
    evaluate,
    matching_offerings,
    owned_hardware_allowed,
    serving_engine,
    serving_features,
    site_facts,
    structural_issues,
    with_offering,
)
from planner.perf.disaggregated import (
    PrefillProfile,
    Split,
    decode_profile,
    pool_vendor_problem,
    pools_apart_problem,
    prefill_profile,
    split_options,
)
from planner.perf.power import SiteFacts
from planner.perf.roofline import achievable_bandwidth, achievable_flops
from planner.perf.serving import (
    ReplicaProfile,
    max_rate,
    replica_profile,
    serving_structural_problems,
)
from planner.perf.training import predict_training, training_memory
from planner.perf.types import COMPUTE_PEAK_KEY, Parallel
from planner.spec import ServingWorkload
from planner.units import BYTES_PER_ELEMENT

DEFAULT_PRECISIONS = {
    "training": ("bf16", "fp8"),
    "serving": ("bf16", "fp8", "int8", "int4"),
    "vision": ("fp16", "int8"),
}
SERVING_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
VISION_BATCHES = (1, 2, 4, 8, 16, 32)
TRAINING_RECOMPUTE = ("none", "selective", "full")
TRAINING_VIRTUAL_STAGES = (1, 2, 4)
MAX_DEVICES_WITHOUT_LIMIT = 16384


@dataclass
class TrainingRow:
    index: int
    candidate: Candidate
    evaluation: Evaluation


@dataclass
class ReplicaRow:
    """One replica configuration; the solver decides how many replicas."""

    index: int
    candidate: Candidate  # parallel.dp == 1
    devices_per_replica: int
    rate_limits: dict[str, float]  # unit id -> highest per-replica rate within that limit (req/s or frames/s)
    min_rate: float  # vision: per-replica rate needed to fill a batch within the frame budget (0 otherwise)
    power_static_w: float | None  # per replica, at zero load (devices at idle + host share)
    power_per_rate_w: float | None  # extra watts per unit of load (req/s or frames/s) carried by the replica
    site: SiteFacts
    unit_devices: int | None  # devices per billed unit (None: owned hardware)
    usd_per_unit_hour: float | None
    latency_s: float  # at light load, for tie-breaks and reports
    service_s: float = 0.0  # replica time one request (or frame) consumes
    power_peak_w: float | None = None  # per replica with every device at full load (site power cap)
    profile: ReplicaProfile | PrefillProfile | None = None  # serving: what the rates are recomputed from
    # Disaggregated serving: the pool the row's replicas belong to (`both`: whole requests) and the split of the
    # limits that span both pools its rates were found within (a prefill row pairs with decode rows of its split).
    role: str = "both"
    split: Split | None = None
    vendor: str = ""

    @property
    def pairing(self) -> tuple:
        """What a prefill pool and the decode pool its requests go to share: the split of the limits, and one
        vendor's stack and one checkpoint (the KV cache's layout and dtype must match on both sides)."""
        return self.split, self.vendor, self.candidate.precision


@dataclass
class Exclusion:
    count: int = 0
    example: str = ""


@dataclass
class CandidateTable:
    kind: str
    demand: float  # serving: requests/s; vision: frames/s; training: 1
    training_rows: list[TrainingRow] = field(default_factory=list)
    replica_rows: list[ReplicaRow] = field(default_factory=list)
    excluded: dict[str, Exclusion] = field(default_factory=dict)
    excluded_by_device: dict[str, dict[str, int]] = field(default_factory=dict)
    evaluated: int = 0
    # Disaggregated pools: the engine's KV connector pairs a decode instance only with prefill instances of no
    # wider tensor parallelism (vLLM's NixlConnector).
    decode_tp_at_least_prefill: bool = False
    # The evaluated replica shapes (training: fastest layouts), before offerings are attached. Another enumeration
    # of the same workload (other devices, prices or providers) may reuse them: see `enumerate_candidates`.
    shapes: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def rows(self) -> list:
        return self.training_rows if self.kind == "training" else self.replica_rows

    def exclude(self, reason: str, example: str, device: str) -> None:
        entry = self.excluded.setdefault(reason, Exclusion())
        entry.count += 1
        if not entry.example:
            entry.example = example
        per_device = self.excluded_by_device.setdefault(device, {})
        per_device[reason] = per_device.get(reason, 0) + 1


def _powers_of_two(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def _offerings(work: ResolvedWorkload, catalog: Catalog, system: System) -> list[Offering | None]:
    """The cloud offerings of a system the spec admits, plus owned hardware (None) when allowed.

    Within one provider, an offering no cheaper per device-hour, no finer in billing granularity and no
    better on the objective's site factor than another is dropped (every provider keeps its best, so
    the explainer can still compare providers).
    """
    offers = list(matching_offerings(catalog, system.id, work.spec))
    keys = {id(o): _offering_key(work, catalog, o) for o in offers}
    kept: list[Offering | None] = []
    for i, o in enumerate(offers):
        dominated = any(p.provider == o.provider and _dominates(keys[id(p)], keys[id(o)], j < i)
                        for j, p in enumerate(offers) if j != i)
        if not dominated:
            kept.append(o)
    if owned_hardware_allowed(work.spec, system.accelerator):
        kept.append(None)
    return kept


def _offering_key(work: ResolvedWorkload, catalog: Catalog, o: Offering) -> tuple[float, ...]:
    site = site_facts(work.spec, catalog, o)
    objective = work.spec.objective
    if objective == "cost":
        factor = 0.0
    elif site.pue is None or (objective == "carbon" and site.grid_gco2_per_kwh is None):
        factor = math.inf
    else:
        factor = site.pue * (site.grid_gco2_per_kwh if objective == "carbon" else 1.0)
    return (o.usd_per_device_hour, float(o.devices), factor)


def _dominates(a: tuple[float, ...], b: tuple[float, ...], a_first: bool) -> bool:
    return all(x <= y for x, y in zip(a, b)) and (a != b or a_first)


def _devices(work: ResolvedWorkload, catalog: Catalog) -> list[Accelerator]:
    ids = work.spec.search.devices or [a.id for a in catalog.accelerators.values() if a.kind == "datacenter"]
    return [catalog.accelerators[i] for i in sorted(ids)]


def _precisions(work: ResolvedWorkload, device: Accelerator) -> list[str]:
    wanted = work.spec.search.precisions or DEFAULT_PRECISIONS[work.kind]
    return [p for p in wanted if COMPUTE_PEAK_KEY[p] in device.peak_dense_tflops]


def enumerate_candidates(work: ResolvedWorkload, catalog: Catalog, shapes: dict | None = None) -> CandidateTable:
    """Every candidate of the workload. `shapes`: another table's evaluated replica shapes to reuse (a
    second look at other prices, a fleet's rent-only pass); the shapes it reuses are not re-counted in
    `excluded`, so pass it only where the plan, not the exclusion report, is read."""
    if work.kind == "training":
        return _training_table(work, catalog, shapes)
    return _replica_table(work, catalog, shapes)


# ------------------------------------------------------------------------------------------- training


# Ring attention pays for itself only when one sequence's activations crowd a device: from 16k tokens.
CP_FROM_SEQ_LEN = 16384
CP_DEGREES = (1, 2, 4, 8)


def _training_layouts(work: ResolvedWorkload, system: System, max_devices: int):
    fp = work.footprint
    deg = work.spec.search.degrees
    domain = scaleup_domain(system)
    tps = deg.tp or [t for t in _powers_of_two(domain) if fp.heads % t == 0]
    if system.scaleup.link_gb_per_s is None:
        tps = [t for t in tps if t == 1]
    pps = deg.pp or [p for p in _powers_of_two(min(64, fp.layers))]
    w = work.spec.workload
    cps = deg.cp or [c for c in CP_DEGREES if c == 1 or w.seq_len >= CP_FROM_SEQ_LEN]
    cps = [c for c in cps if w.seq_len % (2 * c) == 0 or c == 1]  # ring attention balances 2 x cp chunks
    for tp in tps:
        for cp in cps:
            for pp in pps:
                if tp * cp * pp > max_devices:
                    continue
                dps = deg.dp or _powers_of_two(max_devices // (tp * cp * pp))
                for dp in dps:
                    if tp * cp * pp * dp > max_devices or dp > w.global_batch_seqs:
                        continue
                    eps = deg.ep or ([e for e in _powers_of_two(dp * cp) if fp.experts % e == 0] if fp.is_moe else [1])
                    for ep in eps:
                        yield tp, pp, dp, ep, cp


def _training_table(work: ResolvedWorkload, catalog: Catalog, shapes: dict | None = None) -> CandidateTable:
    spec = work.spec
    cache: dict[tuple, list[Evaluation]] = shapes if shapes is not None else {}
    table = CandidateTable(kind="training", demand=1.0, shapes=cache)
    # What a system's fastest layouts depend on besides the system: prices and the device list do not count.
    search = spec.search
    context = (spec.workload.model_dump_json(), search.degrees.model_dump_json(), tuple(search.precisions),
               tuple(search.zero_stages), tuple(search.recompute), tuple(search.micro_batches),
               spec.limits.max_devices)
    # Layouts up to twice the device limit stay in the table (the limit is a named constraint in the model),
    # so the explainer can price relaxing it.
    max_devices = min(MAX_DEVICES_WITHOUT_LIMIT, 2 * spec.limits.max_devices) if spec.limits.max_devices \
        else MAX_DEVICES_WITHOUT_LIMIT
    zeros = spec.search.zero_stages or [1, 3]
    recomputes = spec.search.recompute or list(TRAINING_RECOMPUTE)
    micro_batches = spec.search.micro_batches or [1]
    for device in _devices(work, catalog):
        if not device.trains:
            table.exclude("structural", f"{device.id}: an inference accelerator, not offered for training", device.id)
            continue
        for system in sorted(catalog.systems_for(device.id), key=lambda s: s.id):
            offerings = _offerings(work, catalog, system)
            if not offerings:
                continue
            for precision in _precisions(work, device):
                if precision not in ("bf16", "fp16", "fp8", "fp32"):
                    continue
                key = (context, device.id, system.id, precision)
                if key not in cache:
                    cache[key] = _fastest_by_size(work, catalog, device, system, precision, max_devices, zeros,
                                                  recomputes, micro_batches, table)
                for chosen in cache[key]:
                    n = chosen.candidate.devices
                    for offering in offerings:
                        if not _fits_instance(n, system, offering):
                            table.exclude("structural", f"{chosen.candidate.label()}: {n} devices span "
                                          f"{offering.instance} instances of {offering.devices}, which share no "
                                          f"scale-up link or network in the catalog", device.id)
                            continue
                        ev = with_offering(work, catalog, chosen, offering)
                        table.training_rows.append(TrainingRow(len(table.training_rows), ev.candidate, ev))
    return table


def _fastest_by_size(work, catalog, device, system, precision, max_devices, zeros, recomputes, micro_batches,
                     table: CandidateTable) -> list[Evaluation]:
    """The evaluated fastest layout of each device count. Same device count on the same offering costs the
    same per hour and draws the same power, so only the fastest layout of each size can be optimal."""
    fastest: dict[int, tuple[float, Candidate]] = {}
    for tp, pp, dp, ep, cp in _training_layouts(work, system, max_devices):
        best = _fastest_fitting(work, catalog, device, system, precision, tp, pp, dp, ep, cp,
                                zeros, recomputes, micro_batches, table)
        if best is None:
            continue
        n = best[1].devices
        if n not in fastest or best[0] < fastest[n][0]:
            fastest[n] = best
    return [evaluate(work, catalog, fastest[n][1]) for n in sorted(fastest)]


def _fastest_fitting(work, catalog, device, system, precision, tp, pp, dp, ep, cp, zeros, recomputes, micro_batches,
                     table: CandidateTable) -> tuple[float, Candidate] | None:
    """The fastest variant (recompute, ZeRO, interleaving, micro-batch) of one layout whose memory fits.

    Cheaper recomputation and lower ZeRO stages are never slower, so variants are tried from the fastest
    down and the search stops at the first memory fit; only the interleaving depth is compared by time.
    """
    w = work.spec.workload
    adapter = w.adapter.to_perf() if w.adapter else None
    family = catalog.family_of(device)
    capacity = device.memory_gb * 1e9
    depths = TRAINING_VIRTUAL_STAGES if pp > 1 else (1,)
    last_reason = None
    for mb in sorted(micro_batches):
        checked = False  # the structure does not depend on ZeRO or recomputation: checked once per micro-batch
        for zero in sorted(zeros):
            for recompute in sorted(recomputes, key=TRAINING_RECOMPUTE.index):
                par = Parallel(tp=tp, pp=pp, dp=dp, ep=ep, cp=cp, micro_batch=mb, zero_stage=zero, recompute=recompute)
                cand = Candidate(device.id, system.id, precision, par)
                issues = [] if checked else structural_issues(work, catalog, cand)
                checked = True
                if issues:
                    table.exclude("structural", f"{cand.label()}: {issues[0]}", device.id)
                    return None
                batch = w.batch_for(dp * mb)
                micro_batches_per_step = batch // (dp * mb)
                memory = training_memory(work.footprint, w.seq_len, par, precision, micro_batches_per_step, family,
                                         adapter)
                if memory.total > capacity:
                    last_reason = (cand, memory.total)
                    continue
                best_par, best_time = par, math.inf
                for vp in depths:
                    trial = par if vp == 1 else replace(par, virtual_stages=vp)
                    if vp > 1 and trial.pp * vp > work.footprint.layers:
                        continue
                    pred = predict_training(work.footprint, tokens=w.tokens, seq_len=w.seq_len,
                                            global_batch_seqs=batch, par=trial, precision=precision,
                                            device=device, family=family, system=system,
                                            framework=catalog.framework(w.framework, device), adapter=adapter,
                                            memory=memory if trial is par else None)
                    table.evaluated += 1
                    if pred.step_time_s < best_time:
                        best_par, best_time = trial, pred.step_time_s
                    if pred.breakdown["bubble"] < 0.01 * pred.step_time_s:
                        break  # deeper interleaving only trades a negligible bubble for more sends
                return best_time, replace(cand, parallel=best_par)
    if last_reason is not None:
        cand, need = last_reason
        table.exclude("memory.fits_device", f"{cand.label()}: {need / 2**30:.0f} GiB needed of "
                                            f"{capacity / 2**30:.0f}", device.id)
    return None


# ------------------------------------------------------------------------------------------- replicas


def _replica_table(work: ResolvedWorkload, catalog: Catalog, shapes: dict | None = None) -> CandidateTable:
    spec = work.spec
    w = spec.workload
    demand = w.traffic.requests_per_s if isinstance(w, ServingWorkload) else w.streams * w.fps_per_stream
    cache: dict[tuple, list[ReplicaRow]] = shapes if shapes is not None else {}
    pools = disaggregation_searched(work, catalog)
    table = CandidateTable(kind=work.kind, demand=demand, shapes=cache, decode_tp_at_least_prefill=pools and catalog.engine(
        w.engine).disaggregated_tp == "decode_at_least_prefill")
    # What a shape's rows depend on besides the shape: reused across tables only when all of it is equal.
    context = (w.model_dump_json(), tuple(spec.search.precisions), tuple(spec.search.micro_batches),
               spec.limits.max_utilization, pools and spec.search.disaggregated)
    for device in _devices(work, catalog):
        family = catalog.family_of(device)
        if device.memory_bw_gb_per_s is None:
            table.exclude("catalog", f"{device.id}: memory bandwidth not in the catalog", device.id)
            continue
        for system in sorted(catalog.systems_for(device.id), key=lambda s: s.id):
            offerings = _offerings(work, catalog, system)
            if not offerings:
                continue
            for par in _replica_layouts(work, catalog, system, device):
                # A replica over several domains also talks over the scale-out fabric (PP stages, wide EP).
                spans = par.tp * par.pp > scaleup_domain(system) and system.scaleout is not None
                shape = (context, device.id, system.scaleup.model_dump_json(), system.host_power_w,
                         system.devices_per_node, par.tp, par.pp, par.ep, par.attention_dp,
                         system.scaleout.model_dump_json() if spans else None)
                whole = not (pools and spec.search.disaggregated == "always")
                variants = []
                if whole:
                    variants += _shape_rows(cache, ("whole", *shape), work, catalog, device, family, system, par,
                                            table, _replica_variants, report=True)
                if pools:
                    # The pools' KV transfer crosses the scale-out fabric; whole-request replicas never do.
                    fabric = system.scaleout.model_dump_json() if system.scaleout else None
                    variants += _shape_rows(cache, ("pools", fabric, *shape), work, catalog, device, family, system,
                                            par, table, _pool_variants, report=not whole)
                for base in variants:
                    for offering in offerings:
                        if not _fits_instance(par.tp * par.pp, system, offering):
                            table.exclude("structural", f"{base.candidate.label()}: a {par.tp * par.pp}-device "
                                          f"replica spans {offering.instance} instances of {offering.devices} "
                                          f"device(s), which share no scale-up link", device.id)
                            continue
                        site = site_facts(spec, catalog, offering)
                        row = replace(base, index=len(table.replica_rows),
                                      candidate=replace(base.candidate, system=system.id, offering=offering),
                                      site=site, unit_devices=offering.devices if offering else None,
                                      usd_per_unit_hour=offering.usd_per_hour if offering else None)
                        table.replica_rows.append(row)
    return table


def _shape_rows(cache: dict, key: tuple, work, catalog, device, family, system, par, table, build,
                report: bool) -> list[ReplicaRow]:
    """One replica shape's rows over the precisions (`build`: whole-request or pool rows), computed once per key;
    `report`: count the precisions the shape cannot run in (once, by whichever kind of rows is built)."""
    rows = cache.get(key)
    if rows is None:
        rows = []
        for precision in _precisions(work, device):
            cand = Candidate(device.id, system.id, precision, par)
            problems = _replica_structural(work, cand, system)
            if problems:
                if report:
                    table.exclude("structural", f"{cand.label()}: {problems[0]}", device.id)
                continue
            rows += build(work, catalog, device, family, system, precision, par, table)
        # Precision and batch change neither devices per replica nor price: keep the Pareto set.
        rows = cache[key] = _pareto(rows)
    return rows


def _fits_instance(talking: int, system: System, offering) -> bool:
    """Devices that talk over the scale-up link (a replica's TP/PP group, every device of a training job)
    must share one billed instance when the cloud bills instances smaller than a node: two 1-GPU VMs on
    the same host share no NVLink (nor, in this catalog, a network). TPU slices bill per chip but keep
    their ICI."""
    if offering is None or offering.devices >= system.devices_per_node or talking == 1:
        return True
    return system.scaleup.topology.startswith("torus") or talking <= offering.devices


def _replica_layouts(work: ResolvedWorkload, catalog: Catalog, system: System, device: Accelerator):
    """Replica shapes (tp, pp, ep, and for MoE models data-parallel attention where the engine runs it) with
    batch placeholders; batches are expanded per shape.

    Pipeline stages are only tried when the weights do not fit one scale-up domain: in decode every
    token passes every stage, so stages add latency without adding bandwidth a wider TP would not give.
    """
    deg = work.spec.search.degrees
    if work.kind == "vision":
        yield Parallel(tp=1, pp=1, dp=1, micro_batch=1)
        return
    fp = work.footprint
    domain = scaleup_domain(system)
    runs_it = work.kind == "serving" and catalog.engine(work.spec.workload.engine).attention_dp
    dp_attention = work.spec.search.attention_dp if fp.is_moe and runs_it else "never"
    tps = deg.tp or [t for t in _powers_of_two(domain) if fp.heads % t == 0]
    smallest_weights = fp.total_params * min(BYTES_PER_ELEMENT[p] for p in _precisions(work, device) or ["bf16"])
    fits_one_domain = smallest_weights < 0.9 * device.memory_gb * 1e9 * max(tps or [1])
    pps = deg.pp or ([1] if fits_one_domain else [1, 2, 4, 8])
    if system.scaleup.link_gb_per_s is None:
        tps, pps = [1], [1]
    for tp in tps:
        for pp in pps:
            if pp > 1 and (system.scaleout is None and tp * pp > domain):
                continue
            eps = deg.ep or ([1, tp] if fp.is_moe and tp > 1 and fp.experts % tp == 0 else [1])
            for ep in sorted(set(eps)):
                if ep == tp > 1 and dp_attention != "never":
                    yield Parallel(tp=tp, pp=pp, dp=1, ep=ep, micro_batch=1, attention_dp=True)
                    if dp_attention == "always":
                        continue
                yield Parallel(tp=tp, pp=pp, dp=1, ep=ep, micro_batch=1)
    if dp_attention != "never" and catalog.engine(work.spec.workload.engine).wide_ep and system.scaleout:
        for ep in _wide_ep_degrees(work, fp, domain):
            yield Parallel(tp=ep, pp=1, dp=1, ep=ep, micro_batch=1, attention_dp=True)


# Wide expert parallel is searched up to this many scale-up domains (nodes) per replica: the published runs
# span 2 to 9 nodes (LMSYS's DeepSeek prefill EP32 and decode EP72 on H100, llm-d's EP16 and EP32).
MAX_WIDE_EP_DOMAINS = 8


def _wide_ep_degrees(work: ResolvedWorkload, fp, domain: int) -> list[int]:
    """Attention-data-parallel widths over whole domains that divide the experts, within twice the device limit
    (as training layouts: the explainer prices relaxing it) and the spec's tp degrees when it names them."""
    limit = work.spec.limits.max_devices
    widths = [domain * n for n in _powers_of_two(MAX_WIDE_EP_DOMAINS) if n > 1]
    named = work.spec.search.degrees.tp
    return [w for w in widths if fp.experts % w == 0 and (not limit or w <= 2 * limit) and (not named or w in named)]


def _replica_structural(work: ResolvedWorkload, cand: Candidate, system: System) -> list[str]:
    if work.kind == "vision":
        return []
    # Batches are expanded later: check the shape with the smallest batch that feeds every stage.
    par = cand.parallel
    return serving_structural_problems(work.footprint, replace(par, micro_batch=max(par.pp, 1)), system,
                                       scaleup_domain(system))


def rate_limits(spec, profile: ReplicaProfile | PrefillProfile | None, latency_s: float, service_s: float,
                batch: int, only: str | None = None, role: str = "both",
                split: Split | None = None) -> tuple[dict[str, float], float]:
    """Per limit unit, the highest load one replica carries within it; and the least load (vision: enough
    frames to fill a batch within the frame budget). Recomputed by the explainer for relaxed limits;
    `only` restricts the work to one unit. A pool of a disaggregated plan (`role`) answers the limits on its
    side: TPOT on the decode side, and its share (`split`) of those that span both pools."""
    w = spec.workload
    if profile is not None:
        slo = w.slo
        wanted = [("throughput.max_utilization", "utilization", spec.limits.max_utilization)]
        for unit, (field, metric) in SLO_METRICS.items():
            value = getattr(slo, field)
            if value is None:
                continue
            value /= 1000
            if role != "both" and metric.startswith("tpot"):
                if role == "prefill":
                    continue
            elif role != "both":
                value *= split.share(role, metric)
                # The prefill side's part of a request's whole life is its time to the first token.
                metric = "ttft_p99_s" if role == "prefill" and metric.startswith("e2e") else metric
            wanted.append((unit, metric, value))
        rate = profile.max_rate if role == "prefill" else (lambda metric, value: max_rate(profile, metric, value))
        limits = {unit: rate(metric, value) for unit, metric, value in wanted if only is None or unit == only}
        if only is None:
            # Not a user limit: a replica past full utilisation never catches up, whatever the spec says.
            limits[STABLE] = rate("utilization", 1.0)
        return limits, 0.0
    limits = {"throughput.max_utilization": spec.limits.max_utilization / service_s, STABLE: 1.0 / service_s}
    min_rate = 0.0
    if w.latency_budget_ms is not None:
        slack = w.latency_budget_ms / 1000 - latency_s
        limits["latency.frame_budget"] = 0.0 if slack <= 0 else math.inf
        if slack > 0:
            min_rate = (batch - 1) / slack
    return limits, min_rate


STABLE = "throughput.stable"
RATE_UNITS = ("throughput.max_utilization", *SLO_METRICS, "latency.frame_budget")


def rerate(table: CandidateTable, spec, only: str | None = None) -> CandidateTable:
    """The same rows with their per-limit rates recomputed for `spec` (the explainer's relaxed limits).

    `only` names the one unit whose bound changed; other rates are kept as they are."""
    if table.kind == "training" or (only is not None and only not in RATE_UNITS):
        return table
    rows = []
    for r in table.replica_rows:
        limits, min_rate = rate_limits(spec, r.profile, r.latency_s, r.service_s, r.candidate.parallel.micro_batch,
                                       only if r.profile is not None else None, r.role, r.split)
        if only is not None and only != "latency.frame_budget":
            merged = dict(r.rate_limits)
            if only in limits:
                merged[only] = limits[only]
            else:
                merged.pop(only, None)
            limits, min_rate = merged, r.min_rate
        rows.append(replace(r, rate_limits=limits, min_rate=min_rate))
    return replace(table, replica_rows=rows)


def _replica_variants(work, catalog, device, family, system, precision, par, table) -> list[ReplicaRow]:
    spec = work.spec
    w = spec.workload
    batches = spec.search.micro_batches or (VISION_BATCHES if work.kind == "vision" else SERVING_BATCHES)
    rows: list[ReplicaRow] = []
    dpr = par.tp * par.pp
    engine = None
    if work.kind == "serving":
        engine = serving_engine(w, catalog, device, dpr)
        features = serving_features(work, catalog)
        states: dict = {}

        def profile(batch: int) -> ReplicaProfile:
            return replica_profile(work.footprint, input_tokens=w.traffic.input_tokens,
                                   output_tokens=w.traffic.output_tokens, par=replace(par, micro_batch=batch),
                                   precision=precision, device=device, family=family, system=system, engine=engine,
                                   shared_states=states, features=features)

        fit = profile(max(1, par.pp)).max_batch_fit  # what the KV cache holds does not depend on the cap
        if fit < max(1, par.pp):
            table.exclude("memory.fits_device", f"{Candidate(device.id, system.id, precision, par).label()}: the "
                                                "weights leave no room for one sequence's KV cache", device.id)
            return []
        # The engine cap (max_num_seqs) is what is searched; a cap past the sequences that fit runs what fits.
        batches = sorted({min(b, fit) for b in batches if b >= par.pp})
    for batch in batches:
        p = replace(par, micro_batch=batch)
        cand = Candidate(device.id, system.id, precision, p)
        table.evaluated += 1
        prof = None
        if work.kind == "serving":
            prof = profile(batch)
            service = prof.service_s
            latency = prof.prefill_s + (w.traffic.output_tokens - 1) * prof.tpot_s
        else:
            compute = achievable_flops(device, family, precision)
            flops = work.shape.gflops_per_inference * 1e9
            weights = work.shape.params_m * 1e6 * BYTES_PER_ELEMENT[precision]
            acts = (work.shape.activation_mb or 0.0) * 1e6 * batch
            latency = max(batch * flops / compute, (weights + acts) / achievable_bandwidth(device, family))
            if weights + acts + family.framework_overhead_gib * 2**30 > device.memory_gb * 1e9:
                table.exclude("memory.fits_device", f"{cand.label()}: model does not fit", device.id)
                continue
            service = latency / batch
        limits, min_rate = rate_limits(spec, prof, latency, service, batch)
        rows.append(_row(cand, device, family, system, limits, latency, service, prof, min_rate=min_rate))
    return _pareto(rows)


def _row(cand: Candidate, device: Accelerator, family, system: System, limits: dict[str, float], latency: float,
         service: float, profile, min_rate: float = 0.0, split: Split | None = None) -> ReplicaRow:
    """A replica row before its offering is attached; power is affine in the load it carries."""
    dpr = cand.parallel.tp * cand.parallel.pp
    host_share = (system.host_power_w or 0.0) * dpr / system.devices_per_node
    idle, full, tdp = family.power_at_idle.value, family.power_at_full_load.value, device.tdp_w
    static = None if tdp is None else dpr * tdp * idle + host_share
    per_rate = None if tdp is None else dpr * tdp * (full - idle) * service
    peak = None if tdp is None else dpr * tdp * full + host_share
    return ReplicaRow(index=-1, candidate=cand, devices_per_replica=dpr, rate_limits=limits, min_rate=min_rate,
                      power_static_w=static, power_per_rate_w=per_rate, power_peak_w=peak, site=SiteFacts(None, None),
                      unit_devices=None, usd_per_unit_hour=None, latency_s=latency, service_s=service, profile=profile,
                      role=cand.role, split=split, vendor=device.vendor)


def disaggregation_searched(work: ResolvedWorkload, catalog: Catalog) -> bool:
    return (work.kind == "serving" and work.spec.search.disaggregated != "never"
            and catalog.engine(work.spec.workload.engine).disaggregated)


def spec_splits(spec) -> list[Split]:
    """The split groups of the spec's limits that span both pools."""
    slo = spec.workload.slo
    return split_options(slo.ttft_mean_ms is not None or slo.ttft_p99_ms is not None, slo.e2e_p99_ms is not None)


def _split_rates(spec, profile, role: str, splits: list[Split]) -> list[tuple[Split, dict[str, float]]]:
    """A pool replica's rates in each split group: only the limits spanning both pools differ between groups."""
    first, _ = rate_limits(spec, profile, 0.0, 0.0, 0, role=role, split=splits[0])
    out = [(splits[0], first)]
    spanning = [u for u, (_, metric) in SLO_METRICS.items() if not metric.startswith("tpot") and u in first]
    for split in splits[1:]:
        limits = dict(first)
        for unit in spanning:
            limits[unit] = rate_limits(spec, profile, 0.0, 0.0, 0, only=unit, role=role, split=split)[0][unit]
        out.append((split, limits))
    return out


def _pool_variants(work, catalog, device, family, system, precision, par, table) -> list[ReplicaRow]:
    """The prefill-pool row and the decode-pool row of one replica shape, per split group."""
    spec = work.spec
    w = spec.workload
    label = Candidate(device.id, system.id, precision, par).label()
    apart = pools_apart_problem(system) or pool_vendor_problem(catalog.engine(w.engine), device)
    if apart is not None:
        # Whole-request replicas of the same system still run; a sibling system with a fabric carries the pools.
        if spec.search.disaggregated == "always":
            table.exclude("structural", f"{label}: {apart}", device.id)
        return []
    dpr = par.tp * par.pp
    engine = serving_engine(w, catalog, device, dpr)
    features = serving_features(work, catalog)
    shape = {"fp": work.footprint, "par": par, "precision": precision, "device": device, "family": family,
             "system": system, "engine": engine, "features": features}
    traffic = w.traffic
    prefill = prefill_profile(input_tokens=traffic.input_tokens, **shape)
    if prefill is None:
        table.exclude("memory.fits_device", f"{label}: the weights leave no room for a prefill pool's prompts",
                      device.id)
        return []
    states: dict = {}
    fit = decode_profile(input_tokens=traffic.input_tokens, output_tokens=traffic.output_tokens,
                         **(shape | {"par": replace(par, micro_batch=max(1, par.pp))}), shared_states=states).max_batch_fit
    # A decode pool's largest cap dominates the smaller ones: TPOT's rate does not depend on the cap, and more slots
    # only raise the utilisation rate and shorten the wait for one (no prompt shares its steps).
    batches = [min(max(spec.search.micro_batches or SERVING_BATCHES), fit)]
    prompts_per_step = max(1, math.ceil(prefill.budget / prefill.prefill_tokens))
    cand = Candidate(device.id, system.id, precision, replace(par, micro_batch=prompts_per_step), role="prefill")
    splits = spec_splits(spec)
    rows = [_row(cand, device, family, system, limits, prefill.prefill_s + prefill.transfer_s, prefill.service_s,
                 prefill, split=split) for split, limits in _split_rates(spec, prefill, "prefill", splits)]
    table.evaluated += 1
    for batch in batches if fit >= max(1, par.pp) else ():
        p = replace(par, micro_batch=batch)
        prof = decode_profile(input_tokens=traffic.input_tokens, output_tokens=traffic.output_tokens,
                              **(shape | {"par": p}), shared_states=states)
        table.evaluated += 1
        rows += [_row(replace(cand, parallel=p, role="decode"), device, family, system, limits,
                      (traffic.output_tokens - 1) * prof.tpot_s, prof.service_s, prof, split=split)
                 for split, limits in _split_rates(spec, prof, "decode", splits)]
    if fit < max(1, par.pp):
        table.exclude("memory.fits_device", f"{label}: the weights leave no room for one decoding sequence's KV "
                                            "cache", device.id)
    return _pareto(rows)


def _pareto(rows: list[ReplicaRow]) -> list[ReplicaRow]:
    """Drop batch sizes no better on any limit's rate nor on power than another batch of the same shape."""
    def better_or_equal(a: ReplicaRow, b: ReplicaRow) -> bool:
        for k, v in b.rate_limits.items():
            if a.rate_limits.get(k, 0.0) < v:
                return False
        if a.min_rate > b.min_rate:
            return False
        if (a.power_per_rate_w or 0.0) > (b.power_per_rate_w or 0.0):
            return False
        return a.latency_s <= b.latency_s

    # Rows of different pools or split groups answer different limits: each group is compared within itself.
    kept = []
    for i, r in enumerate(rows):
        dominated = any(better_or_equal(o, r) and (not better_or_equal(r, o) or j < i)
                        for j, o in enumerate(rows) if j != i and (o.role, o.split) == (r.role, r.split))
        if not dominated:
            kept.append(r)
    return kept
