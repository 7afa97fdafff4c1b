"""Predicted versus published: training throughput of real runs (tests/validation/training*.yaml).

    python tests/validation/validate.py [--format table|json]     # errors with the catalog's factors
    python tests/validation/validate.py --fit                     # refit the family factors on every row
    python tests/validation/validate.py --loso                    # + leave one source out

Each row's layout is rebuilt as a planner configuration and predicted with the catalog's efficiency
factors (set per device family, never per row). The quantity compared is training throughput:
tokens/s per device where the source gives it, else the step time, else the source's achieved TFLOP/s
converted to tokens/s with the source's own FLOP convention (6*N*tokens plus attention for model FLOPs,
x4/3 for recompute-counted hardware FLOPs). Rows without a complete layout are listed as skipped.

Fitted factors (`FITTED`) are per device family: the large-shape GEMM efficiency at 16-bit and FP8 and
the GEMM half dimension. Leave-one-source-out refits them without a source's rows and predicts it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from planner.catalog.loader import Catalog, load_catalogs
from planner.catalog.schema import GemmHalfDimension, LLMShape
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
    "tpu-v5p": "tpu-v5p-pod",
    "tpu-v5e": "tpu-v5e-pod",
    "gaudi2": "gaudi2-8",
    "gb300": "gb300-nvl72",
    "b300": "hgx-b300-8-eth",
    # 400 Gb/s per GPU, as the runs' CX-7 InfiniBand (the catalog's one H200 system with that rate).
    "h200-sxm": "hgx-h200-8-efa3",
    "h100-96gb-hbm2e": "hgx-h100-96gb-8-ib",
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
    family: str = ""
    params: float = 0.0
    zero_stage: int = 1
    precision: str = "bf16"

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

    found = re.search(r"(?:\bm=(\d+)|(\d+) model chunks)", row.get("notes") or "")  # not ..._parallelism=4
    return int(found.group(1) or found.group(2)) if found else None


# Sharding as the sources name it -> (ZeRO stage, shard group: 0 = every replica, else GPUs per group).
SHARDING = {"none": (0, 0), "zero1": (1, 0), "zero2": (2, 0), "zero3": (3, 0), "fsdp_full": (3, 0),
            "fsdp_hybrid": (3, 8)}
# Family factors a fit may move, each with the grid it is searched on.
FITTED = {
    "matmul_efficiency": [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9],  # TPU MXUs reach more of peak
    "fp8_matmul_efficiency": [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7],
    "gemm_half_dim": [0.0, 16.0, 32.0, 64.0, 96.0, 128.0, 192.0, 256.0],
    "attention_efficiency": [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6],
}


# The framework behind each publication (catalogs/frameworks.yaml), where a row does not name it.
FRAMEWORK_OF_SOURCE = {"Korthikanti et al. 2022": "megatron-lm", "BigScience tr11-176B-ml training README": "deepspeed",
                       "NVIDIA NeMo docs": "megatron-core", "NVIDIA-NeMo/Megatron-Bridge docs/performance-summary.md":
                       "megatron-core", "mosaicml/llm-foundry scripts/train/benchmarking/README.md": "llm-foundry"}


def framework_of(row: dict, catalog: Catalog):
    """The row's framework; None (no TP overlap, fp32 reduction) where neither it nor its source says."""
    named = (row.get("framework") or "").split(" ")[0]
    named = {"megatron-bridge": "megatron-core", "nemo": "megatron-core"}.get(named, named)
    named = named if named in catalog.frameworks else FRAMEWORK_OF_SOURCE.get(source_group(row))
    return catalog.frameworks.get(named) if named else None


def rows_of() -> list[dict]:
    files = [HERE / "training.yaml", *sorted((HERE / "training").glob("*.yaml"))]
    return [row for path in files for row in yaml.safe_load(path.read_text())["measurements"]]


def source_group(row: dict) -> str:
    """The publication a row comes from (the unit left out)."""
    return row["source"].split(",")[0].split(" Table")[0].split(" (")[0].strip()


def with_factors(catalog: Catalog, family, params: dict):
    """The family with fitted factors overridden (params: {(family id, factor): value})."""
    update = {}
    for (fid, name), value in params.items():
        if fid != family.id:
            continue
        current = getattr(family, name)
        if name == "gemm_half_dim":
            update[name] = GemmHalfDimension(value=value, reason="fit")
        else:
            update[name] = (current or family.matmul_efficiency).model_copy(update={"value": value})
    return family.model_copy(update=update) if update else family


def run(catalog: Catalog, params: dict | None = None, only=None) -> tuple[list[Case], list[tuple[str, str]]]:
    cases, skipped = [], []
    for row in rows_of():
        if only is not None and not only(row):
            continue
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
        framework = framework_of(row, catalog)
        micro = row.get("micro_batch") or 1
        if not row.get("micro_batch") and pp > 1 and framework and framework.pp_microbatches == "pipeline_degree":
            # Not published: the framework's default splits each replica's batch into pp micro-batches.
            micro = max(1, global_batch // (dp * pp))
        zero, shard_group = SHARDING.get(row.get("sharding") or "", (row.get("zero_stage", 1), 0))
        shard_group = row.get("shard_group", shard_group)
        par = Parallel(tp=tp, pp=pp, dp=dp, cp=cp, micro_batch=micro, zero_stage=zero, shard_group=shard_group,
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
        family = with_factors(catalog, catalog.family_of(device), params or {})
        depths = [par.virtual_stages]
        if par.pp > 1 and not (par_in.get("vp") or _chunks(row)):
            # The source does not publish its interleaving depth: predict at the fastest depth, the one a
            # tuned run uses (the run is known to have fit, so memory does not decide here). Same rule for
            # every such row.
            depths = [v for v in (1, 2, 3, 4, 6, 8) if par.pp * v <= fp.layers]
        try:
            pred = max((predict_training(fp, tokens=1e9, seq_len=seq_len, global_batch_seqs=global_batch,
                                         par=replace(par, virtual_stages=v), precision=precision, device=device,
                                         family=family, system=system, framework=framework)
                        for v in depths),
                       key=lambda p: p.tokens_per_s)
        except ValueError as exc:  # e.g. a layout that spans systems the catalog cannot join
            skipped.append((rid, str(exc)))
            continue
        cases.append(Case(rid, row["device"], row["devices"], measured[0], pred.tokens_per_s / par.devices,
                          measured[1], source_group(row), family.id, fp.total_params, zero, precision))
    return cases, skipped


def summary(cases: list[Case]) -> dict:
    errors = sorted(abs(c.error) for c in cases)
    return {"rows": len(cases), "median_abs_error": statistics.median(errors),
            "p90_abs_error": errors[min(len(errors) - 1, int(0.9 * len(errors)))], "max_abs_error": errors[-1],
            "bias": statistics.median(c.error for c in cases)}


def loss(cases: list[Case]) -> float:
    return statistics.fmean(min(abs(math.log(1 + c.error)), math.log(2.0)) for c in cases) if cases else 0.0


# Where a leave-one-source-out fit starts: the catalog's values were fitted on every row, the held-out
# source's included, so folds start from these instead.
PRIORS = {"matmul_efficiency": 0.55, "fp8_matmul_efficiency": 0.55, "gemm_half_dim": 0.0, "attention_efficiency": 0.55}


def fit(catalog: Catalog, only=None, sweeps: int = 3, from_catalog: bool = True) -> dict:
    """Coordinate descent over each family's factors, from the catalog's values or from PRIORS."""
    cases, _ = run(catalog, {}, only)
    keys = []
    for fam in sorted({c.family for c in cases}):
        has_fp8 = any(c.family == fam and c.precision == "fp8" for c in cases)
        keys += [(fam, n) for n in FITTED if n != "fp8_matmul_efficiency" or has_fp8]
    family = {f.id: f for f in catalog.families.values()}
    # A family none of the fitted rows runs on (its only source held out) gets the priors, not the
    # catalog's values, which that source helped fit.
    params = {} if from_catalog else {(f, n): PRIORS[n] for f in {c.family for c in run(catalog)[0]}
                                      for n in FITTED if (f, n) not in keys}
    for fam, name in keys:
        current = getattr(family[fam], name)
        fallback = family[fam].matmul_efficiency.value if name.endswith("efficiency") else 0.0
        params[(fam, name)] = (current.value if current is not None else fallback) if from_catalog else PRIORS[name]
    best = loss(run(catalog, params, only)[0])
    for _ in range(sweeps):
        improved = False
        for key in keys:
            for value in FITTED[key[1]]:
                trial = {**params, key: value}
                score = loss(run(catalog, trial, only)[0])
                if score < best - 1e-9:
                    best, params, improved = score, trial, True
        if not improved:
            break
    return params


def _slices(cases: list[Case]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {"all": cases}
    keyers = {
        "source": lambda c: c.source[:60],
        "device": lambda c: c.device,
        "size": lambda c: "<5B" if c.params < 5e9 else ("5-30B" if c.params < 30e9 else ("30-200B" if c.params < 200e9 else ">=200B")),
        "zero": lambda c: f"zero{c.zero_stage}",
        "precision": lambda c: c.precision,
    }
    for name, key in keyers.items():
        for c in cases:
            out.setdefault(f"{name}={key(c)}", []).append(c)
    return out


def print_table(cases: list[Case], title: str) -> None:
    print(f"\n== {title}: {len(cases)} rows")
    print(f"{'slice':66} {'n':>4} {'median':>7} {'p90':>7} {'max':>7} {'bias':>7}")
    for name, group in _slices(cases).items():
        st = summary(group)
        print(f"{name:66} {st['rows']:4d} {100 * st['median_abs_error']:6.1f}% {100 * st['p90_abs_error']:6.1f}% "
              f"{100 * st['max_abs_error']:6.1f}% {100 * st['bias']:+6.1f}%")


def leave_one_source_out(catalog: Catalog) -> list[Case]:
    cases, _ = run(catalog)
    held = []
    for group in sorted({c.source for c in cases}):
        params = fit(catalog, only=lambda row, g=group: source_group(row) != g, from_catalog=False)
        held += run(catalog, params, only=lambda row, g=group: source_group(row) == g)[0]
    return held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--fit", action="store_true", help="refit the family factors on every row")
    parser.add_argument("--loso", action="store_true", help="leave one source out: refit without each source")
    args = parser.parse_args(argv)
    catalog = load_catalogs()
    cases, skipped = run(catalog)
    stats = summary(cases)
    if args.fit or args.loso:
        print_table(cases, "catalog factors, in sample")
        if args.fit:
            params = fit(catalog)
            for (fam, name), value in sorted(params.items()):
                print(f"fitted {fam}.{name} = {value}")
            print_table(run(catalog, params)[0], "refitted on every row")
        if args.loso:
            print_table(leave_one_source_out(catalog), "leave one source out (refit without the source, predict it)")
        return 0
    if args.format == "json":
        print(json.dumps({"summary": stats, "cases": [c.__dict__ | {"error": c.error} for c in cases],
                          "skipped": skipped}, indent=2))
        return 0
    print(f"{'measurement':48} {'device':10} {'n':>6} {'published':>10} {'predicted':>10} {'error':>7}  basis")
    for c in cases:
        print(f"{c.id:48} {c.device:10} {c.devices:6d} {c.measured_tokens_per_s_per_device:10.0f} "
              f"{c.predicted_tokens_per_s_per_device:10.0f} {100 * c.error:+6.1f}%  {c.basis}")
    print(f"\n{stats['rows']} rows: median |error| {100 * stats['median_abs_error']:.1f}%, "
          f"p90 {100 * stats['p90_abs_error']:.1f}%, max {100 * stats['max_abs_error']:.1f}%, "
          f"bias {100 * stats['bias']:+.1f}%  (tokens/s per device)")
    for rid, why in skipped:
        print(f"skipped {rid}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
