"""Render evaluations and catalog entries for people (rich tables) and scripts (JSON)."""

from __future__ import annotations

import json
import math
from typing import Any

from planner.constraints import ConstraintCheck
from planner.evaluate import Evaluation
from planner.units import GIB


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        if math.isinf(x) or math.isnan(x):
            return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
        return round(x, 6)
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def offering_dict(c) -> dict:
    """Where a candidate runs: the cloud offering with its price and snapshot date, or owned hardware."""
    if c.offering is None:
        return {"provider": "onprem", "region": None, "pricing": "owned", "instance": c.system}
    o = c.offering
    return {"provider": o.provider, "region": o.region, "pricing": o.pricing, "instance": o.instance,
            "usd_per_hour_per_instance": o.usd_per_hour, "devices_per_instance": o.devices,
            "confidence": o.confidence, "source": list(o.source), "as_of": o.as_of.isoformat()}


def evaluation_dict(ev: Evaluation, checks: list[ConstraintCheck]) -> dict:
    c = ev.candidate
    p = c.parallel
    pred = ev.prediction
    offering = offering_dict(c) if c.offering else None
    out = {
        "device": c.device,
        "system": c.system,
        "offering": offering,
        "devices": c.devices,
        "nodes": ev.metrics["nodes"],
        "parallel": {"dp": p.dp, "tp": p.tp, "pp": p.pp, "ep": p.ep},
        "precision": c.precision,
        "batch": {"micro": p.micro_batch},
        "kind": pred.kind,
        "fits": pred.fits,
        "metrics": ev.metrics,
        "provenance": ev.provenance,
        "memory_gib": pred.memory.gib(),
        "breakdown_s": pred.breakdown,
        "constraints": [ch.as_dict() for ch in checks],
        "notes": pred.notes,
    }
    if c.role != "both":
        out["role"] = c.role
    if pred.kind == "training":
        out["parallel"]["cp"] = p.cp
        out["batch"]["global"] = ev.metrics.get("global_batch_sequences")
        out["zero_stage"] = p.zero_stage
        out["shard_group"] = p.shard_size
        out["recompute"] = p.recompute
    return _clean(out)


def to_json(data: Any) -> str:
    return json.dumps(_clean(data), indent=2, sort_keys=False)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


METRIC_LABELS = {
    "devices": "devices",
    "nodes": "nodes",
    "global_batch_sequences": "global batch (sequences)",
    "step_time_s": "step time (s)",
    "tokens_per_s": "tokens/s",
    "mfu": "MFU",
    "hfu": "HFU",
    "time_to_train_days": "time to train (days)",
    "engine": "serving engine",
    "ttft_mean_ms": "TTFT mean (ms)",
    "ttft_p50_ms": "TTFT p50 (ms)",
    "ttft_p90_ms": "TTFT p90 (ms)",
    "ttft_p99_ms": "TTFT p99 (ms)",
    "tpot_ms": "TPOT mean (ms)",
    "tpot_p99_ms": "TPOT p99 (ms)",
    "e2e_mean_ms": "end-to-end mean (ms)",
    "e2e_p99_ms": "end-to-end p99 (ms)",
    "prefill_ms": "prefill alone (ms)",
    "utilization": "utilisation",
    "running_batch": "running sequences per replica",
    "max_num_seqs": "batch cap per replica (max_num_seqs)",
    "max_batch_fit": "sequences whose KV cache fits",
    "max_requests_per_s": "max requests/s per replica within the SLOs",
    "cached_prompt_tokens": "prompt tokens from the prefix cache",
    "tokens_per_step": "tokens per decode step (speculative)",
    "latency_ms": "frame latency (ms)",
    "fps_capacity": "capacity (frames/s)",
    "memory_gib_per_device": "memory per device (GiB)",
    "memory_capacity_gib": "device memory (GiB)",
    "power_kw": "IT power (kW)",
    "usd_per_hour": "cost (USD/h)",
    "usd_per_job": "cost per job (USD)",
    "usd_per_million_tokens": "cost per 1M tokens (USD)",
    "usd_per_million_output_tokens": "cost per 1M output tokens (USD)",
    "energy_kwh_per_hour": "energy (kWh/h, with PUE)",
    "energy_kwh_per_job": "energy per job (kWh)",
    "carbon_kg_per_hour": "carbon (kg CO2e/h)",
    "carbon_kg_per_job": "carbon per job (kg CO2e)",
}


def commitment_line(offering, metrics: dict) -> str:
    """What a reservation commits to: its term and what the term costs at this plan's hourly price."""
    term = offering.commitment_hours * (metrics.get("usd_per_hour") or 0.0)
    return (f"{offering.pricing}: commits to {offering.commitment_hours / 8760:g} year(s), ${term:,.0f} over the "
            "term whether used or not")


def render_evaluation(ev: Evaluation, checks: list[ConstraintCheck]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    c = ev.candidate
    where = (f"{c.offering.provider} {c.offering.region} {c.offering.pricing} ({c.offering.instance})"
             if c.offering else ("owned hardware: electricity at the spec's onprem site"
                                 if ev.metrics.get("usd_per_hour") is not None else
                                 "no matching cloud offering and no onprem site: costs omitted"))
    p = c.parallel
    console.print(f"[bold]{c.device}[/bold] on {c.system}, {where}")
    if c.offering is not None and c.offering.commitment_hours:
        console.print(commitment_line(c.offering, ev.metrics))
    role = "" if c.role == "both" else f"{c.role} pool: "
    console.print(f"{role}dp={p.dp} tp={p.tp} pp={p.pp} ep={p.ep}  precision={c.precision}  micro-batch={p.micro_batch}"
                  + (f"  cp={p.cp} zero={p.zero_stage}" + (f" shard-group={p.shard_size}" if p.shard_size < p.dp * p.cp else "")
                     + f" recompute={p.recompute}" if ev.prediction.kind == "training" else ""))
    table = Table(title="Prediction", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label in METRIC_LABELS.items():
        if key in ev.metrics:
            table.add_row(label, _fmt(ev.metrics[key]))
    console.print(table)

    mem = Table(title="Memory per device (GiB)")
    for key in ("weights", "gradients", "optimizer", "activations", "kv_cache", "framework", "total"):
        mem.add_column(key, justify="right")
    g = ev.prediction.memory.gib()
    mem.add_row(*[_fmt(g[k]) for k in ("weights", "gradients", "optimizer", "activations", "kv_cache", "framework", "total")])
    console.print(mem)

    br = Table(title="Where the time goes (s)")
    br.add_column("component")
    br.add_column("seconds", justify="right")
    br.add_column("share", justify="right")
    total = sum(v for v in ev.prediction.breakdown.values() if not math.isinf(v)) or 1.0
    for k, v in ev.prediction.breakdown.items():
        br.add_row(k, _fmt(v, 4), "—" if math.isinf(v) else f"{100 * v / total:.1f}%")
    console.print(br)

    if checks:
        ct = Table(title="Limits")
        for col in ("constraint", "spec field", "value", "limit", "slack", "ok"):
            ct.add_column(col)
        for ch in checks:
            ct.add_row(ch.id, ch.spec_path or "(device)", _fmt(ch.value), _fmt(ch.limit), _fmt(ch.slack),
                       "[green]yes[/green]" if ch.satisfied else "[red]NO[/red]")
        console.print(ct)
    for note in ev.prediction.notes:
        console.print(f"[yellow]note:[/yellow] {note}")


def catalog_rows(catalog, what: str) -> tuple[list[str], list[list[Any]]]:
    if what == "devices":
        cols = ["id", "name", "family", "bf16 TFLOP/s", "fp8 TFLOP/s", "memory GB", "bandwidth GB/s", "TDP W", "source"]
        rows = [[a.id, a.name, a.family, a.peak_dense_tflops.get("bf16"), a.peak_dense_tflops.get("fp8"), a.memory_gb,
                 a.memory_bw_gb_per_s, a.tdp_w, ",".join(a.source)] for a in catalog.accelerators.values()]
    elif what == "systems":
        cols = ["id", "accelerator", "per node", "scale-up", "domain", "link GB/s/dir", "scale-out", "NICs x Gb/s"]
        rows = [[s.id, s.accelerator, s.devices_per_node, s.scaleup.topology, s.scaleup.domain_devices,
                 s.scaleup.link_gb_per_s, s.scaleout.fabric if s.scaleout else None,
                 f"{s.scaleout.nics_per_node}x{s.scaleout.nic_gbit_per_s:g}" if s.scaleout else None]
                for s in catalog.systems.values()]
    elif what == "models":
        cols = ["id", "name", "kind", "params (B)", "layers", "hidden", "context"]
        rows = []
        for m in catalog.models.values():
            sh = m.shape
            if sh.kind == "llm":
                rows.append([m.id, m.name, "llm" + (" moe" if sh.moe else ""), sh.params_b, sh.layers, sh.hidden, sh.max_seq_len])
            elif sh.kind == "speech":
                rows.append([m.id, m.name, "speech", sh.params_m / 1000, sh.encoder_layers + sh.decoder_layers,
                             sh.d_model, None])
            else:
                rows.append([m.id, m.name, "vision", sh.params_m / 1000, None, None, None])
    elif what == "edge":
        cols = ["id", "family", "mode", "W", "int8 TOPS", "fp16 TFLOP/s", "memory GB", "bandwidth GB/s", "USD",
                "host", "source"]
        rows = [[d.id, d.family, m.name, m.power_w, m.peak_dense_tflops.get("int8"), m.peak_dense_tflops.get("fp16"),
                 d.memory_gb, m.memory_bw_gb_per_s or d.memory_bw_gb_per_s,
                 d.unit_price_usd.value if d.unit_price_usd else None, d.host, ",".join(d.source)]
                for d in catalog.edge_devices.values() for m in d.modes]
    elif what == "engines":
        cols = ["id", "name", "version", "max running seqs", "step tokens", "chunked prefill", "prefill shares step",
                "KV admission", "FP8 KV with FP8 weights", "default"]
        rows = [[e.id, e.name, e.version, e.max_num_seqs.value, e.max_step_tokens.value, e.chunked_prefill,
                 e.mixed_prefill, e.kv_admission, e.fp8_kv_with_fp8_weights, e.id == catalog.default_engine]
                for e in catalog.engines.values()]
    elif what == "frameworks":
        cols = ["id", "name", "version", "TP comm overlap", "grad reduce bytes", "default ZeRO", "default"]
        rows = [[f.id, f.name, f.version, f.tp_comm_overlap, f.grad_reduce_bytes, f.zero_stage,
                 f.id == catalog.default_framework] for f in catalog.frameworks.values()]
    elif what == "prices":
        cols = ["provider", "region", "instance", "system", "devices", "pricing", "USD/h", "USD/device-h", "as of"]
        rows = [[o.provider, o.region, o.instance, o.system, o.devices, o.pricing, o.usd_per_hour,
                 round(o.usd_per_device_hour, 4), o.as_of.isoformat()] for o in catalog.offerings]
    else:
        raise ValueError(what)
    return cols, rows


def filter_catalog_rows(catalog, what: str, cols: list[str], rows: list[list[Any]], *, device: str | None = None,
                        provider: str | None = None, region: str | None = None) -> tuple[list[str], list[list[Any]]]:
    """Keep the rows of one device (id or prefix), provider and region; a filter the listing has no column
    for is refused rather than ignored."""
    from planner.errors import CatalogError, Problem

    wanted: dict[str, set[str] | str] = {}
    if device:
        ids = set(catalog.devices_named(device))
        if not ids:
            from planner.errors import did_you_mean

            raise CatalogError(Problem(f"unknown device `{device}`.{did_you_mean(device, catalog.accelerators)}",
                                       fix="see `planner catalog list devices`"))
        systems = {s.id for s in catalog.systems.values() if s.accelerator in ids}
        wanted["device"] = ids | systems
    if provider:
        wanted["provider"] = provider.lower()
    if region:
        wanted["region"] = region.lower()
    column_for = {"device": ("id", "accelerator", "system"), "provider": ("provider",), "region": ("region",)}
    for key in wanted:
        if what == "devices" and key == "device":
            continue
        if not any(c in cols for c in column_for[key]):
            raise CatalogError(Problem(f"`catalog list {what}` has no {key} column to filter by",
                                       fix=f"drop --{key}, or list prices"))

    def keep(row: list[Any]) -> bool:
        cells = dict(zip(cols, row))
        if "device" in wanted:
            keys = [k for k in ("id", "accelerator", "system") if k in cells]
            if not any(str(cells[k]) in wanted["device"] for k in keys):
                return False
        for key in ("provider", "region"):
            if key in wanted and str(cells.get(key, "")).lower() != wanted[key]:
                return False
        return True

    return cols, [r for r in rows if keep(r)]


def render_rows(title: str, cols: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    cells = [[_fmt(v) for v in r] for r in rows]
    for i, c in enumerate(cols):
        # Ids are what people copy into specs: printed whole on one line. Other cells fold onto a second
        # line when the terminal is narrow, never cut with an ellipsis.
        is_id = i == 0 or c in ("instance", "system")
        widest = max((len(r[i]) for r in cells), default=0)
        table.add_column(c, min_width=widest if is_id else None, no_wrap=is_id, overflow="fold")
    for r in cells:
        table.add_row(*r)
    Console().print(table)


__all__ = ["evaluation_dict", "render_evaluation", "to_json", "catalog_rows", "render_rows", "GIB"]


# ---------------------------------------------------------------------------------------------- solve

PREDICTED_KEYS = ("engine", "ttft_mean_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms", "tpot_ms", "tpot_mean_ms",
                  "tpot_p99_ms", "e2e_mean_ms", "e2e_p99_ms", "running_batch", "max_num_seqs", "max_requests_per_s", "tokens_per_s", "utilization", "memory_gib_per_device",
                  "power_kw", "step_time_s", "mfu", "time_to_train_days", "latency_ms", "fps_capacity",
                  "pool_ttft_mean_ms", "pool_ttft_p99_ms", "pool_e2e_p99_ms", "kv_transfer_ms")
COST_KEYS = ("usd_per_hour", "usd_per_job", "spot_overhead_factor", "usd_per_million_tokens", "usd_per_million_output_tokens",
             "energy_kwh_per_hour", "energy_kwh_per_job", "carbon_kg_per_hour", "carbon_kg_per_job")


def spot_exposure(work, c, metrics: dict) -> str:
    """What running on spot risks, in the plan's own numbers."""
    from planner.evaluate import spot_policy

    spot = spot_policy(work.spec)
    rate = spot.interruptions_per_hour if spot else 0.0
    instances = -(-c.devices // c.offering.devices)
    origin = "search.spot" if work.spec.search.spot is not None else "an assumed default; set search.spot"
    if work.kind == "training":
        factor = metrics.get("spot_overhead_factor", 1.0)
        return (f"spot: {rate:g} interruptions per instance-hour ({origin}) stretch the job by "
                f"{100 * (factor - 1):.1f}% for checkpoints and lost work")
    return (f"spot: {rate:g} interruptions per instance-hour ({origin}): about {24 * rate * instances:.1f} "
            f"evictions a day across {instances} instance(s), each taking its replicas away until replaced")


def devices_paid(c) -> int:
    """Devices the bill covers: whole instances of the offering (owned hardware: the devices used)."""
    if c.offering is None:
        return c.devices
    return -(-c.devices // c.offering.devices) * c.offering.devices


def part_dict(part) -> dict:
    ev = part.evaluation
    c = ev.candidate
    p = c.parallel
    m = ev.metrics
    offering = offering_dict(c)
    out = {
        "device": c.device,
        "system": c.system,
        "offering": offering,
        "devices": c.devices,
        "devices_paid": devices_paid(c),
        "nodes": m.get("nodes"),
        "replicas": part.replicas if part.replicas is not None else 1,
        "parallel": {"dp": p.dp, "tp": p.tp, "pp": p.pp, "ep": p.ep},
        "precision": c.precision,
        "batch": {"micro": p.micro_batch, "global": m.get("global_batch_sequences", p.micro_batch * p.dp)},
        "load_share": part.load_share,
        "predicted": {k: m[k] for k in PREDICTED_KEYS if m.get(k) is not None} | ev.provenance,
        "cost": {k: m[k] for k in COST_KEYS if m.get(k) is not None},
    }
    if p.attention_dp:
        out["parallel"]["attention_dp"] = True
    if c.role != "both":
        out["role"] = c.role
    if ev.prediction.kind == "training":
        out["parallel"]["cp"] = p.cp
        out["training"] = {"zero_stage": p.zero_stage, "shard_group": p.shard_size, "recompute": p.recompute,
                           "virtual_stages": p.virtual_stages}
    return out


def plan_dict(plan) -> dict:
    main = part_dict(plan.main)
    if len(plan.parts) > 1:
        main["parts"] = [part_dict(p) for p in plan.parts]
        main["devices"] = plan.totals["devices"]
        main["predicted"]["power_kw"] = plan.totals["power_kw"]
        main["cost"]["usd_per_hour"] = plan.totals["usd_per_hour"]
    if plan.disaggregated:
        # A request crosses both pools: each role is what one launch runs, the totals are the plan's.
        main["mode"] = "disaggregated"
        main["roles"] = {role: [part_dict(p) for p in plan.parts if p.evaluation.candidate.role == role]
                         for role in ("prefill", "decode")}
        main["predicted"]["tokens_per_s"] = plan.totals["tokens_per_s"]
        for key in ("usd_per_million_tokens", "usd_per_million_output_tokens"):
            main["cost"][key] = disaggregated_cost_per_token(plan, key)
    return main


def disaggregated_cost_per_token(plan, key: str) -> float | None:
    """Both pools' cost over the tokens the plan serves (each part's figure is its own cost over all of them)."""
    values = [p.evaluation.metrics.get(key) for p in plan.parts]
    return None if any(v is None for v in values) else sum(values)


def pool_lines(role: str, metrics: dict) -> list[str]:
    """What one pool of a disaggregated plan adds to a request (the latencies below are the request's)."""
    if role == "prefill":
        return [(f"prefill pool: {_fmt(metrics.get('pool_ttft_mean_ms'))} ms mean to prefill a prompt and send its KV "
                 f"cache (the transfer {_fmt(metrics.get('kv_transfer_ms'))} ms), p99 "
                 f"{_fmt(metrics.get('pool_ttft_p99_ms'))} ms")]
    if role == "decode":
        return [(f"decode pool: {_fmt(metrics.get('pool_ttft_mean_ms'))} ms mean from the KV cache's arrival to the "
                 "first token (the wait for a slot and one step); every step carries decode tokens only")]
    return []


def serving_feature_lines(work, metrics: dict) -> list[str]:
    """What the plan assumes of the prefix cache and speculative decoding, in words."""
    w = work.spec.workload
    lines = []
    cached = metrics.get("cached_prompt_tokens")
    if cached:
        shared = w.traffic.shared_prefix_tokens
        held = f", the {shared:,} every request shares held once per replica" if shared else ""
        lines.append(f"prefix cache: {cached:,} of {w.traffic.input_tokens:,} prompt tokens a request found cached "
                     f"(whole KV blocks) and not prefilled{held}")
    per_step = metrics.get("tokens_per_step")
    if per_step is not None:
        s = w.speculative
        drafted = (f"a top-{s.tree.topk} tree over {s.tokens} draft passes, {s.tree.verified_tokens} nodes verified"
                   if s.tree else f"{s.tokens} drafted")
        lines.append(f"speculative decoding: {s.method}, {drafted} per step, {per_step:.2f} tokens a step "
                     "at the spec's acceptance; a lower acceptance on real traffic raises TPOT")
    return lines


def workload_dict(work, catalog, device=None) -> dict:
    """What was asked, as far as a launch configuration needs it (`planner emit` reads it back): the model
    with its shape and checkpoint, and the engine or framework with its pinned version."""
    w = work.spec.workload
    entry = catalog.models.get(work.model_id)
    out = {"kind": w.kind, "model": work.model_id, "hf_repo": entry.hf_repo if entry else None,
           "shape": work.shape.model_dump(mode="json")}
    if w.kind == "serving":
        engine = catalog.engine(w.engine)
        out |= {"engine": engine.id, "engine_version": engine.version, "kv_cache_dtype": w.kv_cache_dtype,
                "input_tokens": w.traffic.input_tokens, "output_tokens": w.traffic.output_tokens,
                "requests_per_s": w.traffic.requests_per_s}
        if w.traffic.cached_tokens:
            out["prefix_cache"] = {"cached_tokens": w.traffic.cached_tokens,
                                   "shared_prefix_tokens": w.traffic.shared_prefix_tokens}
        if w.speculative is not None:
            out["speculative"] = w.speculative.model_dump(mode="json")
    elif w.kind == "training":
        framework = catalog.framework(w.framework, device)  # the plan's device picks the default
        out |= {"framework": framework.id, "framework_version": framework.version, "seq_len": w.seq_len,
                "tokens": w.tokens, "adapter": w.adapter.model_dump(mode="json") if w.adapter else None}
    return out


def result_dict(result, checks, explanation=None, workload: dict | None = None) -> dict:
    constraints = [c.as_dict() for c in checks]
    if explanation is not None:
        priced = {p.item.id: p for p in explanation.limits}
        for c in constraints:
            p = priced.get(c["id"])
            c["tight"] = p.tight if p else None
            c["binding"] = p.binding if p else False
            if p:
                c["drop_saving"] = p.drop_saving
                c["relax"] = {"to": p.relaxed_to, "saving": p.relax_saving, "change": p.relax_change}
        for p in explanation.limits:
            if p.item.id.startswith("inventory.per_device["):
                constraints.append({"id": p.item.id, "spec_path": p.item.spec_path, "limit": p.item.bound,
                                    "value": p.value, "unit": p.item.unit, "slack": p.slack, "satisfied": True,
                                    "tight": p.tight, "binding": p.binding, "drop_saving": p.drop_saving})
    else:
        for c in constraints:
            c["binding"] = None  # not analysed (--no-explain)
    out = {
        "status": result.status,
        "workload": workload,
        "objective": {"name": result.objective_name, "value": result.objective_value, "unit": result.objective_unit},
        "bound": result.bound,
        "gap": result.gap,
        "plan": plan_dict(result.plan) if result.plan else None,
        "constraints": constraints,
        "price_notes": result.price_notes,
        "skipped": result.skipped,
    }
    if len(result.plans) > 1:
        out["alternatives_top"] = [plan_dict(p) | {"objective_value": v}
                                   for p, v in zip(result.plans[1:], result.stats.get("top_values", [])[1:])]
    excluded = {k: {"count": v.count, "example": v.example} for k, v in result.table.excluded.items()}
    out["search"] = {
        "candidates": result.stats.get("candidates"),
        "evaluated": result.stats.get("evaluated"),
        "variables": result.stats.get("variables"),
        "constraints": result.stats.get("constraints"),
        "excluded": excluded,
        "unevaluable": dict(result.compiled.forced_out),
    }
    if result.stats.get("tie_break"):
        out["search"]["tie_break"] = result.stats["tie_break"]
    if explanation is not None:
        data = explanation.as_dict()
        out["alternatives"] = data["alternatives"]
        out["conflict"] = data["conflict"]
        out["break_even"] = data["break_even"]
        out["explanation"] = {"limits": data["limits"], "flips": data["flips"], "solves": data["explain_solves"],
                              "skipped": data["skipped"]}
    return _clean(out)


PLAN_FIELDS = {
    "training": [("time_to_train_days", "time to train (days)"), ("step_time_s", "step time (s)"),
                 ("tokens_per_s", "tokens/s"), ("mfu", "MFU"), ("memory_gib_per_device", "memory per device (GiB)"),
                 ("power_kw", "IT power (kW)"), ("usd_per_hour", "cost (USD/h)"), ("usd_per_job", "cost per job (USD)"),
                 ("energy_kwh_per_job", "energy per job (kWh)"), ("carbon_kg_per_job", "carbon per job (kg CO2e)")],
    "serving": [("ttft_mean_ms", "TTFT mean (ms)"), ("ttft_p99_ms", "TTFT p99 (ms)"), ("tpot_ms", "TPOT mean (ms)"),
                ("tpot_p99_ms", "TPOT p99 (ms)"), ("e2e_p99_ms", "end-to-end p99 (ms)"),
                ("running_batch", "running sequences per replica"),
                ("tokens_per_s", "output tokens/s"), ("utilization", "utilisation per replica"),
                ("memory_gib_per_device", "memory per device (GiB)"), ("power_kw", "IT power (kW)"),
                ("usd_per_hour", "cost (USD/h)"), ("usd_per_million_tokens", "cost per 1M tokens (USD)"),
                ("energy_kwh_per_hour", "energy (kWh/h)"), ("carbon_kg_per_hour", "carbon (kg CO2e/h)")],
    "vision": [("latency_ms", "frame latency (ms)"), ("fps_capacity", "capacity (frames/s)"),
               ("utilization", "utilisation per device"), ("power_kw", "IT power (kW)"),
               ("usd_per_hour", "cost (USD/h)"), ("energy_kwh_per_hour", "energy (kWh/h)")],
}


def _where(c) -> str:
    if c.offering is None:
        return f"owned {c.system}"
    o = c.offering
    return f"{o.provider} {o.region} {o.pricing} ({o.instance})"


def _layout(c, kind: str) -> str:
    p = c.parallel
    parts = [f"tp{p.tp}", f"pp{p.pp}"]
    parts.append(f"dp{p.dp}" if kind == "training" else f"{p.dp} replicas")
    if p.ep > 1:
        parts.append(f"ep{p.ep}")
    if p.attention_dp:
        parts.append("attention data parallel")
    if kind == "training" and p.cp > 1:
        parts.append(f"cp{p.cp}")
    if kind == "training":
        parts += [f"zero{p.zero_stage}", f"recompute={p.recompute}"] + ([f"vp{p.virtual_stages}"] if p.virtual_stages > 1 else [])
    return " ".join(parts)


def provenance_line(provenance: dict) -> str:
    """`estimated (p90 error: tokens/s 30%, ...)`: how far a prediction of this kind has been off."""
    bands = ", ".join(f"{k.removesuffix('_ms').replace('_', ' ')} {v:.0f}%"
                      for k, v in provenance.get("expected_error_pct", {}).items() if v is not None)
    return f"{provenance.get('provenance', 'estimated')} prediction" + (f" (p90 error {bands})" if bands else "")


def render_result(result, checks, work) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    kind = work.kind
    status_style = {"optimal": "green", "feasible": "yellow"}.get(result.status, "red")
    console.print(f"[bold]{work.spec.name}[/bold]: [{status_style}]{result.status}[/{status_style}]"
                  + (f", {result.objective_name} = {_fmt(result.objective_value)} {result.objective_unit}"
                     if result.objective_value is not None else "")
                  + (f" (gap {100 * result.gap:.2f}%)" if result.gap else ""))
    if result.plan is None:
        console.print("No plan meets every limit.")
        return
    for part in result.plan.parts:
        c = part.evaluation.candidate
        m = part.evaluation.metrics
        share = f", {100 * part.load_share:.0f}% of the load" if len(result.plan.parts) > 1 else ""
        if c.role != "both":
            share = f", {c.role} pool"
        console.print(f"[bold]{c.devices} x {c.device}[/bold] on {_where(c)}{share}")
        if c.offering is not None:
            o = c.offering
            console.print(f"  price ${o.usd_per_hour:,.2f}/h per {o.devices}-device instance, "
                          f"{o.confidence} confidence, as of {o.as_of.isoformat()} ({', '.join(o.source)})")
            if o.pricing == "spot":
                console.print("  " + spot_exposure(work, c, m))
            if o.commitment_hours:
                console.print("  " + commitment_line(o, m))
            idle = devices_paid(c) - c.devices
            if idle:
                worse = "cost more" if work.spec.objective == "cost" else f"use more {work.spec.objective}"
                console.print(f"  [yellow]{idle} of the {devices_paid(c)} paid devices idle[/yellow]: a layout "
                              f"using them would not fit this instance size or would {worse}")
        batch = (f"{m.get('engine')} max_num_seqs {c.parallel.micro_batch}" if kind == "serving"
                 else f"batch {c.parallel.micro_batch}")
        console.print(f"  {_layout(c, kind)}, {c.precision}, {batch}, {m.get('nodes')} node(s)")
        if kind == "serving":
            for line in serving_feature_lines(work, m) + pool_lines(c.role, m):
                console.print("  " + line)
        t = Table(show_header=False, box=None, padding=(0, 2))
        t.add_column()
        t.add_column(justify="right")
        for key, label in PLAN_FIELDS[kind]:
            if m.get(key) is not None and not (c.role == "prefill" and key == "tokens_per_s"):
                t.add_row(label, _fmt(m[key]))
        console.print(t)
        console.print("  " + provenance_line(part.evaluation.provenance))
    if result.skipped:
        console.print(f"[yellow]Time limit reached; not done:[/yellow] {', '.join(result.skipped)}.")
    for note in result.price_notes:
        console.print(f"[yellow]Cheaper at lower confidence:[/yellow] {note}.")
    if len(result.plans) > 1:
        top = Table(title=f"Top {len(result.plans)} distinct plans")
        for col in ("#", "devices", "where", "layout", result.objective_unit):
            top.add_column(col)
        for i, (plan, value) in enumerate(zip(result.plans, result.stats.get("top_values", [])), 1):
            for part in plan.parts:
                c = part.evaluation.candidate
                top.add_row(str(i), f"{c.devices} x {c.device} {c.precision}", _where(c), _layout(c, kind), _fmt(value))
        console.print(top)
    limits = Table(title="Limits at the chosen plan")
    for col in ("constraint", "value", "limit", "slack", "ok"):
        limits.add_column(col, justify="left" if col == "constraint" else "right")
    for ch in checks:
        limits.add_row(ch.id, _fmt(ch.value), _fmt(ch.limit), _fmt(ch.slack),
                       "[green]yes[/green]" if ch.satisfied else "[red]NO[/red]")
    console.print(limits)
    s = result.stats
    console.print(f"[dim]{s.get('candidates')} candidates ({s.get('evaluated')} configurations evaluated), "
                  f"{s.get('variables')} CP-SAT variables; enumerate {s.get('enumerate_s', 0):.2f}s, "
                  f"solve {s.get('solve_s', 0):.2f}s[/dim]")


def render_markdown(result, checks, work) -> str:
    lines = [f"# {work.spec.name}", ""]
    if work.spec.description:
        lines += [work.spec.description, ""]
    value = "" if result.objective_value is None else f": {_fmt(result.objective_value)} {result.objective_unit}"
    lines += [f"**Status:** {result.status}. **Objective:** {result.objective_name}{value}.", ""]
    if result.plan is None:
        lines.append("No plan meets every limit.")
        return "\n".join(lines)
    lines += ["## Plan", "", "| # | device | where | devices | replicas | tp | pp | dp | precision | batch | "
              "USD/h | key metric |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    key = {"training": ("time_to_train_days", "days to train"), "serving": ("ttft_p99_ms", "ms TTFT p99"),
           "vision": ("latency_ms", "ms frame latency")}[work.kind]
    for i, plan in enumerate(result.plans, 1):
        for part in plan.parts:
            c = part.evaluation.candidate
            m = part.evaluation.metrics
            p = c.parallel
            where = f"{c.offering.provider} {c.offering.region} {c.offering.pricing}" if c.offering else "owned"
            pool = "" if c.role == "both" else f" ({c.role} pool)"
            lines.append(f"| {i} | {c.device}{pool} | {where} | {c.devices} | {part.replicas or 1} | {p.tp} | {p.pp} | "
                         f"{p.dp} | {c.precision} | {p.micro_batch} | {_fmt(m.get('usd_per_hour'))} | "
                         f"{_fmt(m.get(key[0]))} {key[1]} |")
    if work.kind == "serving":
        lines += [""] + [f"- {line}" for line in serving_feature_lines(work, result.plan.main.evaluation.metrics)]
    lines += ["", "## Limits", "", "| constraint | spec field | value | limit | slack | satisfied |",
              "|---|---|---|---|---|---|"]
    for ch in checks:
        lines.append(f"| `{ch.id}` | `{ch.spec_path or '-'}` | {_fmt(ch.value)} | {_fmt(ch.limit)} | {_fmt(ch.slack)} | "
                     f"{'yes' if ch.satisfied else 'NO'} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- compare


def compare_dicts(rows) -> list[dict]:
    """Side-by-side rows as `planner compare --format json` prints them."""
    from planner.compare import CompareRow

    return json.loads(to_json([dict(zip(CompareRow.COLUMNS, r.values())) for r in rows]))


def render_compare(rows, fmt: str) -> None:
    import click

    from planner.compare import CompareRow

    cols = list(CompareRow.COLUMNS)
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(cols)
        for r in rows:
            writer.writerow(["" if v is None else (round(v, 6) if isinstance(v, float) else v) for v in r.values()])
        click.echo(buf.getvalue().rstrip())
    elif fmt == "json":
        click.echo(to_json(compare_dicts(rows)))
    elif fmt == "markdown":
        click.echo("| " + " | ".join(cols) + " |")
        click.echo("|" + "---|" * len(cols))
        for r in rows:
            click.echo("| " + " | ".join(_fmt(v) if not isinstance(v, str) else v for v in r.values()) + " |")
    else:
        for workload in dict.fromkeys(r.workload for r in rows):
            mine = [r for r in rows if r.workload == workload]
            training = any(r.usd_per_job is not None for r in mine)
            money = ("USD/job", "usd_per_job") if training else ("USD/1M tok", "usd_per_million_tokens")
            render_rows(f"{workload}: each option at its own optimum",
                        ["option", "devices", "USD/h", money[0], "kWh" + ("" if training else "/h"), "decided by"],
                        [[f"{r.kind} {r.name}", r.devices if r.status == "ok" else "impossible", r.usd_per_hour,
                          getattr(r, money[1]), r.energy_kwh, ", ".join(r.deciding)] for r in mine])
            for note in dict.fromkeys(n for r in mine for n in r.notes):
                click.echo(f"note: {note}")


def pareto_dict(work, catalog, axes: str, settings) -> tuple[dict, list]:
    """(the front as `--format json` prints it, its points); `slo` is the spec's own bound on the second
    axis, if it sets one."""
    from planner.constraints import BY_ID
    from planner.explain.diff import describe
    from planner.pareto import AXES, axis_metric, off_the_front, pareto_front, parse_axes

    axis = parse_axes(axes, work.kind)
    skipped: list[str] = []
    points = pareto_front(work, catalog, axis, settings, skipped)
    notes = off_the_front(work, catalog, axis, points, settings)
    unit = "usd_per_job" if work.kind == "training" else "usd_per_hour"
    metric_name = axis_metric(axis, work.kind)
    data = []
    for p in points:
        main = p.plan.main.evaluation.candidate
        o = main.offering
        data.append({"objective_usd": p.objective, metric_name: p.metric, "epsilon": p.epsilon, "plan": describe(p.plan),
                     "label": f"{p.plan.totals.get('devices')}x {main.device}"
                              + (f" {o.provider} {o.pricing}" if o else " owned")})
    slo = None
    unit_id = AXES[axis][0]
    if unit_id is not None:
        try:
            slo = BY_ID[unit_id].limit_of(work.spec, None)  # SLO bounds are the spec's, not the plan's
        except (AttributeError, TypeError):
            slo = None
    return ({"axes": ["cost", axis], "unit": unit, "metric": metric_name, "slo": slo, "points": data,
             "off_front": notes, "skipped": skipped}, points)


def render_pareto(work, catalog, axes: str, settings, fmt: str, plot_path, output=None) -> None:
    import click

    from planner.pareto import plot

    front, points = pareto_dict(work, catalog, axes, settings)
    unit, metric_name, axis = front["unit"], front["metric"], front["axes"][1]
    data, notes, skipped = front["points"], front["off_front"], front["skipped"]
    if fmt == "json":
        click.echo(to_json({k: v for k, v in front.items() if k not in ("metric", "slo")}
                           | ({"slo": front["slo"]} if front["slo"] is not None else {})))
    elif fmt == "html":
        from planner.html.others import pareto_page

        text = pareto_page(_clean(front), work.spec.name)
        if output is None:
            click.echo(text)
        else:
            output.write_text(text)
            click.echo(f"report written to {output}", err=True)
    elif fmt == "csv":
        click.echo(f"objective_{unit},{metric_name},epsilon,plan")
        for d in data:
            click.echo(f"{d['objective_usd']:.6f},{d[metric_name]:.6f},{'' if d['epsilon'] is None else d['epsilon']},"
                       f"\"{d['plan']}\"")
    else:
        render_rows(f"Pareto front: cost against {axis} ({len(points)} points, each optimal for its limit)",
                    [unit, metric_name, "plan"], [[d["objective_usd"], d[metric_name], d["plan"]] for d in data])
    for note in notes:
        click.echo(f"Not on the front: {note}.", err=fmt != "table")
    for part in skipped:
        click.echo(f"Not traced: {part}.", err=fmt != "table")
    if plot_path and points:
        plot(points, axis, points[0], str(plot_path), f"{work.spec.name}: cost against {axis}", unit,
             slo=front["slo"], labels=[d["label"] for d in data])
        click.echo(f"plot written to {plot_path}", err=True)


# ---------------------------------------------------------------------------------------------- fleets


def fleet_dict(result, catalog) -> dict:
    from planner.explain.diff import describe

    buy, rent = result.buy, result.rent
    return _clean({
        "status": buy.status,
        "horizon_years": buy.spec.horizon_years,
        "tco_usd": sum(buy.tco.values()) if buy.tco else None,
        "tco_breakdown_usd": buy.tco,
        "usd_per_hour": buy.usd_per_hour,
        "bought": buy.bought,
        "plans": {name: (describe(plan) if plan else None) for name, plan in buy.plans.items()},
        "rent_only": {"status": rent.status, "tco_usd": sum(rent.tco.values()) if rent.tco else None,
                      "usd_per_hour": rent.usd_per_hour,
                      "plans": {name: (describe(plan) if plan else None) for name, plan in rent.plans.items()}},
        "saving_vs_rent_only_usd": None if result.saving is None else result.saving * buy.spec.horizon_years * 8760,
        "break_even_purchase_usd_per_device": result.break_even_price(catalog),
        "explanation": result.explanation.as_dict() if result.explanation is not None else None,
        "search": buy.stats,
    })


def render_fleet(result, catalog, fmt: str) -> None:
    import click

    data = fleet_dict(result, catalog)
    if fmt == "json":
        click.echo(to_json(data))
        return
    lines = [f"# {result.buy.spec.name}: {data['status']}, TCO over {data['horizon_years']:g} years "
             f"${_fmt(data['tco_usd'])} (${_fmt(data['usd_per_hour'])}/h)"]
    for name, plan in data["plans"].items():
        lines.append(f"- {name}: {plan}")
    if data["bought"]:
        lines.append("- buy: " + ", ".join(f"{n} x {d}" for d, n in data["bought"].items() if n) or "- buy: nothing")
    b = data["tco_breakdown_usd"] or {}
    lines.append("- TCO: " + ", ".join(f"{k} ${_fmt(v)}" for k, v in b.items()))
    rent = data["rent_only"]
    if rent["tco_usd"] is not None:
        lines.append(f"- renting everything instead: ${_fmt(rent['tco_usd'])} (${_fmt(rent['usd_per_hour'])}/h); "
                     f"buying saves ${_fmt(data['saving_vs_rent_only_usd'])} over the horizon")
    for device, price in data["break_even_purchase_usd_per_device"].items():
        lines.append(f"- buying {device} pays while it costs at most ${_fmt(price)} per device "
                     f"(catalog: ${_fmt(catalog.purchases[device].usd_per_device)})")
    if result.explanation is not None:
        from planner.explain.render import markdown

        lines.append("\n" + markdown(result.explanation))
    click.echo("\n".join(lines))


def render_simulation(name: str, sims) -> None:
    """Closed form beside simulation, per plan part, with each SLO judged on both."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for sim in sims:
        m, r = sim.evaluation.metrics, sim.result
        console.print(f"[bold]{name}[/bold]: {sim.evaluation.candidate.label()} at {sim.rate_per_s:g} req/s "
                      f"({r.requests} requests, {r.measured} measured, {r.wall_s:.2f} s)")
        table = Table(show_header=True)
        for col in ("", "closed form", "simulated"):
            table.add_column(col, justify="right" if col else "left")
        rows = [("TTFT mean (ms)", m.get("ttft_mean_ms"), r.ttft_ms.mean), ("TTFT p50 (ms)", m.get("ttft_p50_ms"), r.ttft_ms.p50),
                ("TTFT p90 (ms)", m.get("ttft_p90_ms"), r.ttft_ms.p90), ("TTFT p99 (ms)", m.get("ttft_p99_ms"), r.ttft_ms.p99),
                ("TPOT mean (ms)", m.get("tpot_ms"), r.tpot_ms.mean), ("TPOT p99 (ms)", m.get("tpot_p99_ms"), r.tpot_ms.p99),
                ("end-to-end mean (ms)", m.get("e2e_mean_ms"), r.e2e_ms.mean),
                ("end-to-end p99 (ms)", m.get("e2e_p99_ms"), r.e2e_ms.p99),
                ("output tokens/s", m.get("tokens_per_s"), r.tokens_per_s),
                ("running sequences per replica", m.get("running_batch"), r.mean_running_batch)]
        for label, closed, simulated in rows:
            table.add_row(label, _fmt(closed), _fmt(simulated))
        console.print(table)
        for v in sim.slo:
            verdict = "holds" if v["simulated_ok"] else "[red]broken[/red]"
            console.print(f"  {v['id']} <= {v['limit_ms']:g} ms: simulated {v['simulated_ms']:.1f} ms {verdict}; "
                          f"closed form {v['closed_form_ms']:.1f} ms")
