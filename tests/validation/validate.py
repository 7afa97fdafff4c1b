"""Predicted versus published: training throughput of real runs (tests/validation/training.yaml).

    python tests/validation/validate.py [--format table|json]

Each row's layout is rebuilt as a planner configuration and predicted with the catalog's efficiency
factors (set per device family, never per row). The quantity compared is training throughput:
tokens/s per device where the source gives it, else the step time, else the source's achieved TFLOP/s
converted to tokens/s with the source's own FLOP convention (6*N*tokens plus attention for model FLOPs,
x4/3 for recompute-counted hardware FLOPs). Rows without a complete layout are listed as skipped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from planner.catalog.loader import Catalog, load_catalogs
from planner.catalog.schema import LLMShape
from planner.perf.shapes import llm_footprint
from planner.perf.training import predict_training, structural_problems
from planner.perf.types import Parallel
from planner.catalog.topology import scaleup_domain

HERE = Path(__file__).resolve().parent

# The system each published run used (the hardware, not a cloud SKU).
# Published runs used InfiniBand clusters (Selene, DGX SuperPODs, Meta's RoCE 400G is the same per-GPU rate).
SYSTEM_FOR_DEVICE = {
    "a100-80gb": "hgx-a100-80gb-8-ib",
    "a100-40gb": "hgx-a100-40gb-8-ib",
    "h100-sxm": "hgx-h100-8-ib",
    "b200": "hgx-b200-8-ib",
    "gb200": "gb200-nvl72",
    "tpu-v4": "tpu-v4",
    "gaudi2": "gaudi2-8",
}


@dataclass
class Case:
    id: str
    device: str
    devices: int
    measured_tokens_per_s_per_device: float
    predicted_tokens_per_s_per_device: float
    basis: str
    source: str

    @property
    def error(self) -> float:
        return self.predicted_tokens_per_s_per_device / self.measured_tokens_per_s_per_device - 1.0


# Sources' model names that are catalog models under another id.
MODEL_ALIASES = {"gpt3-175b": "gpt-3-175b", "mt-nlg-530b": None}


def _shape(row: dict, catalog: Catalog) -> LLMShape | None:
    name = MODEL_ALIASES.get(row.get("model_name", ""), row.get("model_name", "")) or ""
    if name in catalog.models and catalog.models[name].shape.kind == "llm":
        base = catalog.models[name].shape
        return base.model_copy(update={"max_seq_len": max(base.max_seq_len, row["model"]["seq_len"])})
    m = row.get("model", {})
    needed = ("layers", "hidden", "heads", "vocab", "seq_len")
    if not all(k in m for k in needed):
        return None
    ffn = m.get("ffn") or (4 * m["hidden"] if m.get("ffn_is_4h") else None)
    if ffn is None:
        return None
    head_dim = m.get("head_dim")
    return LLMShape(params_b=m.get("params_b", 1.0), layers=m["layers"], hidden=m["hidden"], heads=m["heads"],
                    kv_heads=m.get("kv_heads", m["heads"]), head_dim=head_dim, ffn=ffn, vocab=m["vocab"],
                    max_seq_len=m["seq_len"], gated_mlp=bool(m.get("gated_mlp", False)),
                    tied_embeddings=bool(m.get("tied_embeddings", False)))


def _measured(row: dict, fp, seq_len: int, global_batch: int) -> tuple[float, str] | None:
    meas = row["measured"]
    if meas.get("tokens_per_s_per_device"):
        return meas["tokens_per_s_per_device"], "tokens/s/device"
    if meas.get("tokens_per_s_total"):
        return meas["tokens_per_s_total"] / row["devices"], "tokens/s total"
    if meas.get("step_time_s") and global_batch:
        return global_batch * seq_len / meas["step_time_s"] / row["devices"], "step time"
    if meas.get("tflops_per_device"):
        per_token = 6 * fp.active_params + 3 * fp.attention_flops_per_token(seq_len)
        if meas.get("tflops_counts_recompute"):
            per_token *= 4.0 / 3.0
        return meas["tflops_per_device"] * 1e12 / per_token, "TFLOP/s"
    return None


def _chunks(row: dict) -> int | None:
    """Interleaving depth stated in a row's notes as 'm=3' or '3 model chunks' (Korthikanti et al.)."""
    import re

    found = re.search(r"(?:m=(\d+)|(\d+) model chunks)", row.get("notes") or "")
    return int(found.group(1) or found.group(2)) if found else None


def run(catalog: Catalog) -> tuple[list[Case], list[tuple[str, str]]]:
    data = yaml.safe_load((HERE / "training.yaml").read_text())
    cases, skipped = [], []
    for row in data["measurements"]:
        rid = row["id"]
        system_id = SYSTEM_FOR_DEVICE.get(row["device"])
        if system_id is None or system_id not in catalog.systems:
            skipped.append((rid, f"no system for device {row['device']}"))
            continue
        if row.get("moe"):
            skipped.append((rid, "MoE row: routing imbalance and expert layout not in the published config"))
            continue
        par_in = row.get("parallel") or {}
        global_batch = row.get("global_batch_sequences")
        if not par_in or not global_batch:
            skipped.append((rid, "layout or global batch not published"))
            continue
        shape = _shape(row, catalog)
        if shape is None:
            skipped.append((rid, "model shape not published"))
            continue
        tp, pp, cp = par_in.get("tp", 1), par_in.get("pp", 1), par_in.get("cp", 1)
        dp = par_in.get("dp") or row["devices"] // (tp * pp * cp)
        micro = row.get("micro_batch") or 1
        par = Parallel(tp=tp, pp=pp, dp=dp, cp=cp, micro_batch=micro, zero_stage=row.get("zero_stage", 1),
                       recompute=row.get("recompute") or "selective",
                       virtual_stages=par_in.get("vp") or _chunks(row) or 1)
        fp = llm_footprint(shape)
        seq_len = row["model"]["seq_len"]
        system = catalog.systems[system_id]
        device = catalog.accelerators[system.accelerator]
        problems = structural_problems(fp, global_batch, par, system, scaleup_domain(system))
        if system.scaleup.link_gb_per_s is None:
            problems.append(f"{system.id}: scale-up bandwidth not in the catalog")
        if problems or par.devices != row["devices"]:
            skipped.append((rid, "; ".join(problems) or f"layout gives {par.devices} devices, not {row['devices']}"))
            continue
        measured = _measured(row, fp, seq_len, global_batch)
        if measured is None:
            skipped.append((rid, "no throughput figure"))
            continue
        precision = row.get("precision") or "bf16"
        family = catalog.family_of(device)
        depths = [par.virtual_stages]
        if par.pp > 1 and not (par_in.get("vp") or _chunks(row)):
            # The source does not publish its interleaving depth: predict at the fastest depth, the one a
            # tuned run uses (the run is known to have fit, so memory does not decide here). Same rule for
            # every such row.
            depths = [v for v in (1, 2, 3, 4, 6, 8) if par.pp * v <= fp.layers]
        pred = max((predict_training(fp, tokens=1e9, seq_len=seq_len, global_batch_seqs=global_batch,
                                     par=replace(par, virtual_stages=v), precision=precision, device=device,
                                     family=family, system=system) for v in depths),
                   key=lambda p: p.tokens_per_s)
        cases.append(Case(rid, row["device"], row["devices"], measured[0], pred.tokens_per_s / par.devices,
                          measured[1], row["source"]))
    return cases, skipped


def summary(cases: list[Case]) -> dict:
    errors = [abs(c.error) for c in cases]
    return {"rows": len(cases), "median_abs_error": statistics.median(errors), "max_abs_error": max(errors)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args(argv)
    cases, skipped = run(load_catalogs())
    stats = summary(cases)
    if args.format == "json":
        print(json.dumps({"summary": stats, "cases": [c.__dict__ | {"error": c.error} for c in cases],
                          "skipped": skipped}, indent=2))
        return 0
    print(f"{'measurement':48} {'device':10} {'n':>6} {'published':>10} {'predicted':>10} {'error':>7}  basis")
    for c in cases:
        print(f"{c.id:48} {c.device:10} {c.devices:6d} {c.measured_tokens_per_s_per_device:10.0f} "
              f"{c.predicted_tokens_per_s_per_device:10.0f} {100 * c.error:+6.1f}%  {c.basis}")
    print(f"\n{stats['rows']} rows: median |error| {100 * stats['median_abs_error']:.1f}%, "
          f"max |error| {100 * stats['max_abs_error']:.1f}%  (tokens/s per device)")
    for rid, why in skipped:
        print(f"skipped {rid}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
