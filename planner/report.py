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


def evaluation_dict(ev: Evaluation, checks: list[ConstraintCheck]) -> dict:
    c = ev.candidate
    p = c.parallel
    pred = ev.prediction
    offering = None
    if c.offering:
        o = c.offering
        offering = {"provider": o.provider, "region": o.region, "pricing": o.pricing, "instance": o.instance,
                    "usd_per_hour": o.usd_per_hour, "devices_per_unit": o.devices, "source": list(o.source),
                    "as_of": o.as_of.isoformat()}
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
        "memory_gib": pred.memory.gib(),
        "breakdown_s": pred.breakdown,
        "constraints": [ch.as_dict() for ch in checks],
        "notes": pred.notes,
    }
    if pred.kind == "training":
        out["batch"]["global"] = ev.metrics.get("global_batch_sequences")
        out["zero_stage"] = p.zero_stage
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
    "ttft_p99_ms": "TTFT p99 (ms)",
    "tpot_ms": "TPOT (ms)",
    "e2e_p99_ms": "end-to-end p99 (ms)",
    "prefill_ms": "prefill (ms)",
    "utilization": "utilisation",
    "max_batch_fit": "max batch that fits",
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


def render_evaluation(ev: Evaluation, checks: list[ConstraintCheck]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    c = ev.candidate
    where = (f"{c.offering.provider} {c.offering.region} {c.offering.pricing} ({c.offering.instance})"
             if c.offering else "no matching cloud offering: costs omitted")
    p = c.parallel
    console.print(f"[bold]{c.device}[/bold] on {c.system}, {where}")
    console.print(f"dp={p.dp} tp={p.tp} pp={p.pp} ep={p.ep}  precision={c.precision}  micro-batch={p.micro_batch}"
                  + (f"  zero={p.zero_stage} recompute={p.recompute}" if ev.prediction.kind == "training" else ""))
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
            else:
                rows.append([m.id, m.name, "vision", sh.params_m / 1000, None, None, None])
    elif what == "prices":
        cols = ["provider", "region", "instance", "system", "devices", "pricing", "USD/h", "USD/device-h", "as of"]
        rows = [[o.provider, o.region, o.instance, o.system, o.devices, o.pricing, o.usd_per_hour,
                 round(o.usd_per_device_hour, 4), o.as_of.isoformat()] for o in catalog.offerings]
    else:
        raise ValueError(what)
    return cols, rows


def render_rows(title: str, cols: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*[_fmt(v) for v in r])
    Console().print(table)


__all__ = ["evaluation_dict", "render_evaluation", "to_json", "catalog_rows", "render_rows", "GIB"]
