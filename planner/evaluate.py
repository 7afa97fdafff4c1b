"""Evaluate one fully specified configuration: spec + catalogs + candidate -> metrics with units.

This is the seam between the performance model (pure formulas) and everything that ranks or checks
configurations (`planner estimate`, the candidate table for the solver, the solver-free checker). The
`metrics` dict uses the same names as the constraint units and the JSON report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

from planner.catalog.loader import Catalog
from planner.catalog.schema import LLMShape, Offering, System, VisionShape
from planner.catalog.topology import scaleup_domain
from planner.constraints import serving_slo_limits
from planner.errors import EstimateError, Problem, SpecError, did_you_mean
from planner.perf.disaggregated import (
    PrefillProfile,
    decode_profile,
    pool_vendor_problem,
    pools_apart_problem,
    prefill_prediction,
    prefill_profile,
)
from planner.perf.power import (
    Economics,
    SiteFacts,
    economics,
    it_power_w,
    usd_per_million_tokens,
)
from planner.perf.serving import (
    NO_FEATURES,
    EngineParams,
    ReplicaProfile,
    ServingFeatures,
    predict_serving,
    replica_profile,
    serving_prediction,
    serving_structural_problems,
)
from planner.perf.shapes import LLMFootprint, llm_footprint
from planner.perf.speculative import Speculation, acceptance_for_length, speculation
from planner.perf.training import predict_training, structural_problems
from planner.perf.types import COMPUTE_PEAK_KEY, Parallel, Prediction
from planner.perf.vision import predict_vision
from planner.provenance import provenance
from planner.spec import (
    DEFAULT_SPOT_POLICY,
    ServingWorkload,
    SpeculativeSpec,
    TrainingWorkload,
    VisionWorkload,
    WorkloadSpec,
)
from planner.units import DAY_S, GIB, HOUR_S, ceil_div


@dataclass(frozen=True)
class ResolvedWorkload:
    """The spec with its model resolved to a shape (catalog name or inline)."""

    spec: WorkloadSpec
    model_id: str
    shape: LLMShape | VisionShape
    footprint: LLMFootprint | None

    @property
    def kind(self) -> str:
        return self.spec.workload.kind


@dataclass(frozen=True)
class Candidate:
    device: str
    system: str
    precision: str
    parallel: Parallel
    offering: Offering | None = None
    # Serving: `both` runs whole requests; `prefill` and `decode` are the two pools of a disaggregated plan.
    role: str = "both"

    @property
    def devices(self) -> int:
        return self.parallel.devices

    def label(self) -> str:
        p = self.parallel
        where = f" {self.offering.provider}/{self.offering.region}/{self.offering.pricing}" if self.offering else " on-prem"
        attention = " dp-attention" if p.attention_dp else ""
        role = "" if self.role == "both" else f" {self.role}"
        return (f"{self.device} x{self.devices}{role} tp{p.tp} pp{p.pp} dp{p.dp} ep{p.ep}{attention} {self.precision} "
                f"mb{p.micro_batch}{where}")


@dataclass
class Evaluation:
    candidate: Candidate
    prediction: Prediction
    economics: Economics
    metrics: dict[str, float | None] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)  # how obtained and the expected error (planner.provenance)


def resolve_workload(spec: WorkloadSpec, catalog: Catalog, spec_file: str | None = None) -> ResolvedWorkload:
    """Resolve the model and check every catalog reference in the spec, reporting all problems at once."""
    problems: list[Problem] = []
    model = spec.workload.model
    if isinstance(model, str):
        entry = catalog.models.get(model)
        if entry is None:
            problems.append(Problem(f"unknown model `{model}`.{did_you_mean(model, catalog.models)}", file=spec_file,
                                    path="workload.model",
                                    fix="use an id from `planner catalog list models` or give an inline shape"))
            shape = None
        else:
            shape = entry.shape
        model_id = model
    else:
        shape, model_id = model, "inline"
    if shape is not None:
        wants = "vision" if spec.workload.kind == "vision" else "llm"
        if shape.kind != wants:
            problems.append(Problem(f"model `{model_id}` is a {shape.kind} model but the workload is {spec.workload.kind}",
                                    file=spec_file, path="workload.model", fix=f"pick a {wants} model"))
    for field, kind, table in (("engine", "serving engine", catalog.engines),
                               ("framework", "training framework", catalog.frameworks)):
        name = getattr(spec.workload, field, None)
        if name is not None and name not in table:
            problems.append(Problem(f"unknown {kind} `{name}`.{did_you_mean(name, table)}", file=spec_file,
                                    path=f"workload.{field}", fix=f"use one of: {', '.join(sorted(table))}"))
    devices: list[str] = []
    for i, dev in enumerate(spec.search.devices):
        if dev in catalog.accelerators:
            devices.append(dev)
            continue
        variants = catalog.devices_named(dev)
        if variants:
            devices += [v for v in variants if v not in devices]
            continue
        problems.append(Problem(f"unknown device `{dev}`.{did_you_mean(dev, catalog.accelerators)}", file=spec_file,
                                path=f"search.devices[{i}]", fix="see `planner catalog list devices`"))
    if devices != list(spec.search.devices):
        spec = spec.model_copy(update={"search": spec.search.model_copy(update={"devices": devices})})
    providers = {o.provider for o in catalog.offerings} | {"onprem"}
    for i, prov in enumerate(spec.search.providers):
        if prov == "onprem" and (spec.onprem is None or not spec.limits.inventory):
            problems.append(Problem("provider `onprem` needs the site (`onprem:` with pue) and the owned devices "
                                    "(`limits.inventory`)", file=spec_file, path=f"search.providers[{i}]",
                                    fix="add an `onprem:` section and `limits.inventory`, or remove `onprem`"))
        if prov not in providers:
            problems.append(Problem(f"unknown provider `{prov}`.{did_you_mean(prov, providers)}", file=spec_file,
                                    path=f"search.providers[{i}]", fix=f"known providers: {', '.join(sorted(providers))}"))
    regions = {o.region for o in catalog.offerings}
    for i, reg in enumerate(spec.search.regions):
        if reg not in regions:
            problems.append(Problem(f"unknown region `{reg}`.{did_you_mean(reg, regions)}", file=spec_file,
                                    path=f"search.regions[{i}]", fix="see `planner catalog list prices`"))
    for dev in spec.limits.inventory:
        if dev not in catalog.accelerators:
            problems.append(Problem(f"unknown device `{dev}`.{did_you_mean(dev, catalog.accelerators)}", file=spec_file,
                                    path=f"limits.inventory.{dev}", fix="see `planner catalog list devices`"))
    if isinstance(spec.workload, TrainingWorkload) and isinstance(shape, LLMShape):
        if spec.workload.seq_len > shape.max_seq_len:
            problems.append(Problem(f"seq_len {spec.workload.seq_len} exceeds the model's context of {shape.max_seq_len}",
                                    file=spec_file, path="workload.seq_len", fix=f"use at most {shape.max_seq_len}"))
    if isinstance(spec.workload, ServingWorkload) and isinstance(shape, LLMShape):
        context = spec.workload.traffic.input_tokens + spec.workload.traffic.output_tokens
        if context > shape.max_seq_len:
            problems.append(Problem(f"input + output = {context} tokens exceeds the model's context of {shape.max_seq_len}",
                                    file=spec_file, path="workload.traffic", fix="shorten the request"))
    if isinstance(spec.workload, ServingWorkload) and isinstance(shape, LLMShape):
        problems += _serving_feature_problems(spec.workload, shape, catalog, spec_file)
        w = spec.workload
        engine = catalog.engine(w.engine) if w.engine is None or w.engine in catalog.engines else None
        if engine is not None and spec.search.disaggregated == "always" and not engine.disaggregated:
            problems.append(Problem(f"{engine.name} {engine.version} runs no disaggregated prefill/decode: "
                                    f"{engine.disaggregated_reason}", file=spec_file, path="search.disaggregated",
                                    fix="use auto or never, or an engine that runs it (vllm, sglang, trtllm)"))
    elif spec.search.disaggregated == "always":
        problems.append(Problem(f"disaggregated prefill/decode is a way to serve an LLM; this workload is "
                                f"{spec.workload.kind}", file=spec_file, path="search.disaggregated",
                                fix="remove search.disaggregated"))
    if problems:
        raise SpecError(problems)
    footprint = llm_footprint(shape) if isinstance(shape, LLMShape) else None
    return ResolvedWorkload(spec=spec, model_id=model_id, shape=shape, footprint=footprint)


def _serving_feature_problems(w: ServingWorkload, shape: LLMShape, catalog: Catalog,
                              spec_file: str | None) -> list[Problem]:
    """What the engine or the model cannot do of the prefix cache and speculative decoding the spec asks for."""
    problems = []
    engine = catalog.engine(w.engine) if w.engine is None or w.engine in catalog.engines else None
    if engine is not None and w.traffic.cached_tokens and not engine.prefix_caching:
        field = "prefix_hit_rate" if w.traffic.prefix_hit_rate is not None else "shared_prefix_tokens"
        problems.append(Problem(f"{engine.name} {engine.version} does not reuse cached prefixes as launched: "
                                f"{engine.prefix_caching_reason}", file=spec_file, path=f"workload.traffic.{field}",
                                fix="use workload.engine trtllm, vllm or sglang, or leave the prefix cache out"))
    spec = w.speculative
    if spec is None:
        return problems
    path = "workload.speculative"
    if engine is not None and spec.method not in engine.speculative_methods:
        runs = ", ".join(engine.speculative_methods) or "none"
        problems.append(Problem(f"{engine.name} {engine.version} does not run `{spec.method}` speculative decoding "
                                f"(it runs: {runs})", file=spec_file, path=f"{path}.method",
                                fix="pick a method the engine runs, or another workload.engine"))
    if engine is not None and spec.tree is not None and not engine.speculative_tree:
        why = f": {engine.speculative_tree_reason}" if engine.speculative_tree_reason else ""
        trees = ", ".join(sorted(e.id for e in catalog.engines.values() if e.speculative_tree)) or "none"
        problems.append(Problem(f"{engine.name} {engine.version} is planned with a chain of drafts, not a tree{why}",
                                file=spec_file, path=f"{path}.tree",
                                fix=f"leave `tree` out (a chain of `tokens` drafts), or use workload.engine {trees}"))
    if spec.method == "mtp" and shape.mtp_layers < 1:
        problems.append(Problem("the model ships no multi-token-prediction layers (`mtp_layers` in its shape)",
                                file=spec_file, path=f"{path}.method",
                                fix="use eagle or a draft model, or a model with MTP layers (deepseek-v3)"))
    if spec.method == "draft":
        draft = catalog.models.get(spec.draft_model)
        if draft is None or draft.shape.kind != "llm":
            problems.append(Problem(f"unknown draft model `{spec.draft_model}`."
                                    f"{did_you_mean(spec.draft_model, catalog.models)}", file=spec_file,
                                    path=f"{path}.draft_model", fix="use an LLM id from `planner catalog list models`"))
        elif draft.shape.vocab != shape.vocab:
            problems.append(Problem(f"draft model `{spec.draft_model}` has a {draft.shape.vocab:,}-token vocabulary, the "
                                    f"target {shape.vocab:,}: drafts must use the target's tokenizer", file=spec_file,
                                    path=f"{path}.draft_model", fix="pick a draft model of the target's family"))
        elif draft.shape.layers >= shape.layers and draft.shape.hidden >= shape.hidden:
            problems.append(Problem(f"draft model `{spec.draft_model}` is no smaller than the target", file=spec_file,
                                    path=f"{path}.draft_model", fix="pick a smaller model of the same tokenizer"))
    return problems


def serving_features(work: ResolvedWorkload, catalog: Catalog) -> ServingFeatures:
    """Prefix caching and speculative decoding as the serving model reads them."""
    w = work.spec.workload
    if not isinstance(w, ServingWorkload):
        return NO_FEATURES
    return features_of(work.shape, w.speculative, w.traffic.cached_tokens, w.traffic.shared_prefix_tokens, catalog)


def features_of(shape: LLMShape, spec: SpeculativeSpec | None, cached_tokens: int, shared_prefix_tokens: int,
                catalog: Catalog) -> ServingFeatures:
    """The same from their parts (a launch rebuilds them from a solve result)."""
    speculation = None
    if spec is not None:
        rate = spec.acceptance_rate
        if rate is None:
            rate = acceptance_for_length(spec.tokens, spec.acceptance_length)
        draft = catalog.models[spec.draft_model].shape if spec.method == "draft" else None
        tree = spec.tree
        speculation = _speculation(shape.model_dump_json(), spec.method, spec.tokens, rate,
                                   draft.model_dump_json() if draft is not None else None,
                                   tree.topk if tree else 1, tree.verified_tokens if tree else 0)
    return ServingFeatures(cached_tokens=cached_tokens, shared_prefix_tokens=shared_prefix_tokens,
                           speculation=speculation)


@lru_cache(maxsize=64)
def _speculation(target_json: str, method: str, tokens: int, rate: float, draft_json: str | None, topk: int,
                 tree_tokens: int) -> Speculation:
    target = LLMShape.model_validate_json(target_json)
    draft = LLMShape.model_validate_json(draft_json) if draft_json is not None else None
    return speculation(target, method, tokens, rate, draft, target.mtp_layers, topk, tree_tokens)


def structural_issues(work: ResolvedWorkload, catalog: Catalog, cand: Candidate) -> list[str]:
    """Reasons this candidate cannot run at all; empty when it is a valid layout."""
    device = catalog.accelerators[cand.device]
    system = catalog.systems[cand.system]
    issues = []
    if COMPUTE_PEAK_KEY[cand.precision] not in device.peak_dense_tflops:
        issues.append(f"{cand.device} has no {cand.precision} peak in the catalog")
    domain = scaleup_domain(system)
    communicating = cand.devices if work.kind == "training" else cand.parallel.tp * cand.parallel.pp
    if communicating > 1 and system.scaleup.link_gb_per_s is None:
        issues.append(f"{system.id}: scale-up bandwidth is not in the catalog, so its devices cannot work together")
    # Replicas of a serving/vision fleet need no fabric; a training job spanning nodes does.
    if work.kind == "training" and system.scaleout is None and cand.devices > max(domain, system.devices_per_node):
        issues.append(f"{system.id}: no scale-out network in the catalog, so one node ({system.devices_per_node}) at most")
    if work.kind == "training" and not device.trains:
        issues.append(f"{device.id} is an inference accelerator: its vendor's stack does not train models")
    if work.kind == "training" and work.spec.workload.seq_len % (2 * cand.parallel.cp) and cand.parallel.cp > 1:
        issues.append(f"cp={cand.parallel.cp} needs the sequence length to divide into 2 x cp chunks (ring "
                      f"attention's load balance)")
    if work.kind == "training":
        w = work.spec.workload
        batch = w.batch_for(cand.parallel.dp * cand.parallel.micro_batch)
        issues += structural_problems(work.footprint, batch, cand.parallel, system, domain)
        if cand.precision not in ("bf16", "fp16", "fp8", "fp32"):
            issues.append(f"training at {cand.precision} is not supported (use bf16, fp16 or fp8)")
    elif work.kind == "serving":
        issues += serving_structural_problems(work.footprint, cand.parallel, system, domain)
        if cand.parallel.tp * cand.parallel.pp > domain and system.scaleout is None:
            issues.append(f"{system.id}: a replica larger than the scale-up domain needs a scale-out network")
        apart = None
        if cand.role != "both":
            apart = pools_apart_problem(system) or pool_vendor_problem(catalog.engine(work.spec.workload.engine), device)
        if apart is not None:
            issues.append(f"a {cand.role} pool: {apart}")
    else:
        if cand.parallel.tp != 1 or cand.parallel.pp != 1:
            issues.append("vision models run one replica per device (tp = pp = 1)")
    if device.memory_bw_gb_per_s is None and work.kind != "training":
        issues.append(f"{cand.device} has no memory bandwidth in the catalog")
    return issues


def with_traffic(work: ResolvedWorkload, traffic) -> ResolvedWorkload:
    """The same serving workload with other traffic (a rate, or lengths)."""
    w = work.spec.workload.model_copy(update={"traffic": traffic})
    return ResolvedWorkload(spec=work.spec.model_copy(update={"workload": w}), model_id=work.model_id,
                            shape=work.shape, footprint=work.footprint)


def with_demand(work: ResolvedWorkload, demand: float) -> ResolvedWorkload:
    """The same workload offered `demand` requests/s (serving) or frames/s (vision): one part of a mix."""
    w = work.spec.workload
    if isinstance(w, ServingWorkload):
        return with_traffic(work, w.traffic.model_copy(update={"requests_per_s": demand}))
    if isinstance(w, VisionWorkload):
        w = w.model_copy(update={"fps_per_stream": demand / w.streams})
    else:
        return work
    return ResolvedWorkload(spec=work.spec.model_copy(update={"workload": w}), model_id=work.model_id,
                            shape=work.shape, footprint=work.footprint)


def evaluate(work: ResolvedWorkload, catalog: Catalog, cand: Candidate) -> Evaluation:
    issues = structural_issues(work, catalog, cand)
    if issues:
        raise EstimateError([Problem(i, fix="change the layout (see `planner estimate --help`)") for i in issues])
    device = catalog.accelerators[cand.device]
    family = catalog.family_of(device)
    system = catalog.systems[cand.system]
    w = work.spec.workload
    par = cand.parallel
    if isinstance(w, TrainingWorkload):
        batch = w.batch_for(par.dp * par.micro_batch)
        pred = predict_training(work.footprint, tokens=w.tokens, seq_len=w.seq_len, global_batch_seqs=batch,
                                par=par, precision=cand.precision, device=device, family=family, system=system,
                                framework=catalog.framework(w.framework, device),
                                adapter=w.adapter.to_perf() if w.adapter else None)
        utilization = 1.0
    elif isinstance(w, ServingWorkload):
        if cand.role == "both":
            engine = serving_engine(w, catalog, device, par.tp * par.pp)
            pred = predict_serving(work.footprint, requests_per_s=w.traffic.requests_per_s,
                                   input_tokens=w.traffic.input_tokens, output_tokens=w.traffic.output_tokens, par=par,
                                   precision=cand.precision, device=device, family=family, system=system,
                                   engine=engine, slo_limits=serving_slo_limits(work.spec),
                                   features=serving_features(work, catalog))
        else:
            pred = _pool_prediction(work, catalog, cand)
        utilization = min(1.0, pred.utilization or 0.0)
    else:
        assert isinstance(w, VisionWorkload)
        pred = predict_vision(work.shape, streams=w.streams, fps_per_stream=w.fps_per_stream, par=par,
                              precision=cand.precision, device=device, family=family)
        utilization = min(1.0, pred.utilization or 0.0)
    pred = _with_spot_overhead(work, cand, pred)
    pred.power_w = it_power_w(device, family, system, cand.devices, utilization)
    pred.peak_power_w = it_power_w(device, family, system, cand.devices, 1.0)
    econ = economics(cand.devices, pred.power_w, cand.offering, site_facts(work.spec, catalog, cand.offering))
    engine_id = catalog.engine(w.engine).id if isinstance(w, ServingWorkload) else None
    return Evaluation(candidate=cand, prediction=pred, economics=econ, metrics=_metrics(work, cand, system, pred, econ),
                      provenance=provenance(catalog, work.kind, family.id, engine_id))


def serving_engine(w: ServingWorkload, catalog: Catalog, device, ranks: int) -> EngineParams:
    """The workload's engine as it runs on `ranks` devices of `device`, with the launch's KV cache dtype."""
    return EngineParams.of(catalog.engine(w.engine), device, ranks, kv_cache_dtype=w.kv_cache_dtype)


def serving_profile(work: ResolvedWorkload, catalog: Catalog, cand: Candidate) -> ReplicaProfile | PrefillProfile:
    """One replica of a serving candidate as the engine runs it (what the simulator replays); a pool's replica
    for a disaggregated candidate."""
    w = work.spec.workload
    device = catalog.accelerators[cand.device]
    par = cand.parallel
    shape = {"par": par, "precision": cand.precision, "device": device, "family": catalog.family_of(device),
             "system": catalog.systems[cand.system], "engine": serving_engine(w, catalog, device, par.tp * par.pp),
             "features": serving_features(work, catalog)}
    traffic = w.traffic
    if cand.role == "prefill":
        profile = prefill_profile(work.footprint, input_tokens=traffic.input_tokens, **shape)
        if profile is None:
            raise EstimateError(Problem(f"{cand.label()}: the weights leave no room for a prefill pool's prompts",
                                        fix="pick a wider layout or a lower precision"))
        return profile
    build = decode_profile if cand.role == "decode" else replica_profile
    return build(work.footprint, input_tokens=traffic.input_tokens, output_tokens=traffic.output_tokens, **shape)


def _pool_prediction(work: ResolvedWorkload, catalog: Catalog, cand: Candidate) -> Prediction:
    """A disaggregated pool at the workload's rate: the prefill side's TTFT, or the decode side's TPOT and its
    share of TTFT (the wait for a slot and the first step)."""
    profile = serving_profile(work, catalog, cand)
    rate = work.spec.workload.traffic.requests_per_s
    limits = serving_slo_limits(work.spec)
    if cand.role == "prefill":
        return prefill_prediction(profile, rate, cand.parallel, limits)
    return serving_prediction(profile, rate, cand.parallel,
                              {m: v for m, v in limits.items() if m.startswith("tpot") or m == "utilization"})


def site_facts(spec: WorkloadSpec, catalog: Catalog, offering: Offering | None) -> SiteFacts:
    if offering is not None:
        return SiteFacts.of_region(catalog.region(offering.provider, offering.region))
    if spec.onprem is not None:
        return SiteFacts(spec.onprem.pue, spec.onprem.grid_gco2_per_kwh, spec.onprem.electricity_usd_per_kwh)
    return SiteFacts(None, None, None)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _metrics(work: ResolvedWorkload, cand: Candidate, system: System, pred: Prediction, econ: Economics) -> dict:
    hours = pred.time_to_train_s / HOUR_S if pred.time_to_train_s is not None else None
    job = econ.per_job(hours)
    m = {
        "devices": cand.devices,
        "nodes": ceil_div(cand.devices, system.devices_per_node),
        "memory_gib_per_device": pred.memory.total / GIB,
        "memory_capacity_gib": pred.memory_capacity_bytes / GIB,
        # A site power cap must hold the fleet at full load, so the limit reads peak power; energy and carbon
        # use the average power at the predicted utilisation.
        "power_kw": None if pred.peak_power_w is None else pred.peak_power_w / 1000.0,
        "power_avg_kw": None if pred.power_w is None else pred.power_w / 1000.0,
        "usd_per_hour": econ.usd_per_hour,
        "energy_kwh_per_hour": econ.energy_kwh_per_hour,
        "carbon_kg_per_hour": econ.carbon_kg_per_hour,
        "tokens_per_s": pred.tokens_per_s,
        "utilization": pred.utilization,
    }
    if pred.kind == "training":
        w = work.spec.workload
        m.update({
            "global_batch_sequences": w.batch_for(cand.parallel.dp * cand.parallel.micro_batch),
            "step_time_s": pred.step_time_s,
            "mfu": pred.mfu,
            "hfu": pred.hfu,
            "time_to_train_days": pred.time_to_train_s / DAY_S,
            "usd_per_job": job["usd"],
            "energy_kwh_per_job": job["energy_kwh"],
            "carbon_kg_per_job": job["carbon_kg"],
            "usd_per_million_tokens": usd_per_million_tokens(econ.usd_per_hour, pred.tokens_per_s),
        })
        if cand.offering is not None and cand.offering.pricing == "spot":
            spot = spot_policy(work.spec)
            m["spot_overhead_factor"] = spot.slowdown if spot is not None else 1.0
    elif pred.kind == "serving":
        w = work.spec.workload
        total_tokens_per_s = w.traffic.requests_per_s * (w.traffic.input_tokens + w.traffic.output_tokens)
        m.update({
            "engine": pred.engine,
            "ttft_mean_ms": _ms(pred.ttft_mean_s),
            "ttft_p50_ms": _ms(pred.ttft_p50_s),
            "ttft_p90_ms": _ms(pred.ttft_p90_s),
            "ttft_p99_ms": _ms(pred.ttft_p99_s),
            "tpot_ms": _ms(pred.tpot_s),
            "tpot_mean_ms": _ms(pred.tpot_s),
            "tpot_p99_ms": _ms(pred.tpot_p99_s),
            "e2e_mean_ms": _ms(pred.e2e_mean_s),
            "e2e_p99_ms": _ms(pred.e2e_p99_s),
            "prefill_ms": _ms(pred.prefill_s),
            "running_batch": pred.running_batch,
            "max_num_seqs": cand.parallel.micro_batch,
            "max_batch_fit": pred.max_batch_fit,
            "max_requests_per_s": pred.max_requests_per_s,
            "usd_per_million_tokens": usd_per_million_tokens(econ.usd_per_hour, total_tokens_per_s),
            "usd_per_million_output_tokens": usd_per_million_tokens(econ.usd_per_hour, pred.tokens_per_s),
        })
        if pred.cached_prompt_tokens:
            m["cached_prompt_tokens"] = pred.cached_prompt_tokens
        if "kv_transfer" in pred.breakdown:
            m["kv_transfer_ms"] = _ms(pred.breakdown["kv_transfer"])
        if pred.tokens_per_step is not None:
            m["tokens_per_step"] = pred.tokens_per_step  # speculative decoding's mean accept length
    else:
        m.update({"latency_ms": _ms(pred.latency_s), "fps_capacity": pred.fps_capacity})
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in m.items()}


# ---------------------------------------------------------------------------------------------- choices


def matching_offerings(catalog: Catalog, system_id: str, spec: WorkloadSpec, provider: str | None = None,
                       region: str | None = None, pricing: str | None = None) -> list[Offering]:
    """Cloud offerings of a system that the spec's search space (and any extra filter) admits."""
    s = spec.search
    providers = [p for p in s.providers if p != "onprem"]
    if s.providers and not providers:
        return []  # the spec asks for owned hardware only
    out = []
    for o in catalog.offerings_for(system_id):
        if providers and o.provider not in providers:
            continue
        if s.regions and o.region not in s.regions:
            continue
        if s.pricing and o.pricing not in s.pricing or not s.pricing and o.commitment_hours and pricing != o.pricing:
            continue  # a reservation commits to a year or more: only when the spec (or --pricing) names it
        if not confident_enough(o, spec):
            continue
        if provider and o.provider != provider or region and o.region != region or pricing and o.pricing != pricing:
            continue
        out.append(o)
    return sorted(out, key=lambda o: (o.usd_per_device_hour, o.provider, o.region, o.pricing, o.instance))


CONFIDENCE_RANK = {"low": 0, "medium": 1, "high": 2}


def confident_enough(o: Offering, spec: WorkloadSpec) -> bool:
    return CONFIDENCE_RANK[o.confidence] >= CONFIDENCE_RANK[spec.search.min_price_confidence]


def cheaper_unconfident_offers(catalog: Catalog, spec: WorkloadSpec, device_id: str,
                               usd_per_device_hour: float) -> list[Offering]:
    """Offerings of a device left out by the price-confidence floor that would have been cheaper."""
    systems = {s.id for s in catalog.systems.values() if s.accelerator == device_id}
    return sorted((o for o in catalog.offerings if o.system in systems and not confident_enough(o, spec)
                   and o.usd_per_device_hour < usd_per_device_hour), key=lambda o: o.usd_per_device_hour)


def owned_hardware_allowed(spec: WorkloadSpec, device_id: str) -> bool:
    """Owned devices are candidates when the spec describes its site and lists them in its inventory."""
    providers = spec.search.providers
    return (spec.onprem is not None and device_id in spec.limits.inventory
            and (not providers or "onprem" in providers))


def _with_spot_overhead(work: ResolvedWorkload, cand: Candidate, pred: Prediction) -> Prediction:
    """A training job on spot capacity, stretched by checkpoints and interruptions (search.spot, else the
    stated default unless search.spot_overhead is false)."""
    spot = spot_policy(work.spec)
    if pred.kind != "training" or spot is None or cand.offering is None or cand.offering.pricing != "spot":
        return pred
    factor = spot.slowdown
    return replace(pred, time_to_train_s=pred.time_to_train_s * factor, tokens_per_s=pred.tokens_per_s / factor,
                   breakdown={**pred.breakdown, "spot_overhead": pred.step_time_s * (factor - 1.0)},
                   notes=[*pred.notes, f"spot: {100 * (factor - 1):.1f}% longer for checkpoints and interruptions"])


def spot_policy(spec: WorkloadSpec):
    if spec.search.spot is not None:
        return spec.search.spot
    return DEFAULT_SPOT_POLICY if spec.search.spot_overhead else None


def with_offering(work: ResolvedWorkload, catalog: Catalog, ev: Evaluation, offering: Offering | None) -> Evaluation:
    """The same prediction priced on another offering (or owned): only economics and metrics change
    (and a spot training job's length, see `_with_spot_overhead`)."""
    cand = Candidate(ev.candidate.device, ev.candidate.system, ev.candidate.precision, ev.candidate.parallel, offering)
    # `ev` is an evaluation without an offering (as the candidate table makes them), so spot overhead is
    # applied once, here.
    pred = _with_spot_overhead(work, cand, ev.prediction)
    econ = economics(cand.devices, pred.power_w, offering, site_facts(work.spec, catalog, offering))
    system = catalog.systems[cand.system]
    return Evaluation(candidate=cand, prediction=pred, economics=econ, metrics=_metrics(work, cand, system, pred, econ),
                      provenance=ev.provenance)


def _owned_system(systems: list[System], devices: int) -> System:
    """The smallest node type that holds the layout's scale-up group."""
    return sorted(systems, key=lambda s: (s.devices_per_node < min(devices, scaleup_domain(s)), s.devices_per_node))[0]


def choose_system_and_offering(catalog: Catalog, spec: WorkloadSpec, device_id: str, devices: int, tp: int,
                               system_id: str | None = None, provider: str | None = None, region: str | None = None,
                               pricing: str | None = None, can_run=None) -> tuple[System, Offering | None]:
    """The cheapest way to rent `devices` of `device_id` on a system that can run the layout; else owned.

    `can_run(system)` says whether the layout is valid there (scale-up domain, scale-out network).
    """
    catalog.accelerator(device_id)
    if system_id and system_id not in catalog.systems:
        raise EstimateError(Problem(f"unknown system `{system_id}`.{did_you_mean(system_id, catalog.systems)}",
                                    fix="see `planner catalog list systems`"))
    if system_id and catalog.systems[system_id].accelerator != device_id:
        carriers = sorted(s.id for s in catalog.systems_for(device_id))
        raise EstimateError(Problem(f"system `{system_id}` carries {catalog.systems[system_id].accelerator}, not "
                                    f"{device_id}", fix=f"use one of: {', '.join(carriers) or 'none in the catalog'}"))
    systems = [catalog.systems[system_id]] if system_id else catalog.systems_for(device_id)
    systems = [s for s in systems if scaleup_domain(s) >= tp] or systems
    if can_run is not None and not system_id:
        systems = [s for s in systems if can_run(s)] or systems
    if not systems:
        raise EstimateError(Problem(f"no system in the catalog carries {device_id}", fix="add one to systems.yaml"))
    if pricing == "owned":
        # Owned hardware: no offering, so costs come from the spec's site (onprem) or are omitted.
        return _owned_system(systems, devices), None
    best: tuple[float, System, Offering] | None = None
    for system in sorted(systems, key=lambda s: s.id):
        for o in matching_offerings(catalog, system.id, spec, provider, region, pricing):
            cost = ceil_div(devices, o.devices) * o.usd_per_hour
            if best is None or cost < best[0]:
                best = (cost, system, o)
    if best is not None:
        return best[1], best[2]
    if provider or region or pricing:
        raise EstimateError(Problem(f"no offering of {device_id} matches provider={provider} region={region} "
                                    f"pricing={pricing}", fix="see `planner catalog list prices`"))
    return _owned_system(systems, devices), None
