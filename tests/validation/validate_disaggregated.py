"""Score disaggregated prefill/decode serving against published runs (tests/validation/disaggregated.yaml).

Each row fixes a prefill pool and a decode pool (workers x TP) and a load: a request rate, or a closed-loop
concurrency, which is turned into the rate at which that many requests are in flight (Little's law over the
predicted mean end-to-end time, by bisection). The plan is rebuilt as the solver would report it
(`planner.check.rebuild`: each pool evaluated, a request's latencies the sum of the two sides') and its mean
TTFT and TPOT are compared with the measured ones. No parameter is fitted on these rows, so the
leave-one-source-out figures are the in-sample ones.

    python tests/validation/validate_disaggregated.py
"""

from __future__ import annotations

import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from planner.catalog.loader import load_catalogs
from planner.check import rebuild
from planner.evaluate import Candidate, resolve_workload
from planner.perf.types import Parallel
from planner.spec import WorkloadSpec

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Figure:
    row: str
    source: str
    quantity: str
    measured: float
    predicted: float

    @property
    def error(self) -> float:
        return self.predicted / self.measured - 1.0


def plan_at(row: dict, catalog, rate: float):
    spec = WorkloadSpec.model_validate({
        "name": row["id"],
        "workload": {"kind": "serving", "model": row["model_name"], "engine": row["engine"],
                     "traffic": {"requests_per_s": rate, "input_tokens": row["input_tokens"],
                                 "output_tokens": row["output_tokens"]}}})
    work = resolve_workload(spec, catalog)
    device = catalog.systems[row["system"]].accelerator
    pools = []
    for role in ("prefill", "decode"):
        p = row[role]
        cap = 1024 if role == "decode" else 1  # the decode pools' cap: what fits (the engines' default is larger)
        pools.append((Candidate(device, row["system"], row["precision"],
                                Parallel(tp=p["tp"], dp=p["workers"], micro_batch=cap), role=role), 1.0))
    return rebuild(work, catalog, pools)


def rate_of(row: dict, catalog) -> float:
    load = row["load"]
    if "requests_per_s" in load:
        return load["requests_per_s"]
    # Closed loop: the rate whose mean end-to-end time keeps `concurrency` requests in flight.
    target = load["concurrency"]
    lo, hi = 0.0, 1.0
    while in_flight(row, catalog, hi) < target:
        lo, hi = hi, hi * 2
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if in_flight(row, catalog, mid) < target else (lo, mid)
    return lo


def in_flight(row: dict, catalog, rate: float) -> float:
    plan = plan_at(row, catalog, rate)
    e2e = plan.parts[0].evaluation.metrics["e2e_mean_ms"]
    return math.inf if e2e is None or math.isnan(e2e) else rate * e2e / 1000


def load_rows() -> list[dict]:
    return yaml.safe_load((HERE / "disaggregated.yaml").read_text())["measurements"]


def score(catalog, rows: list[dict], verbose: bool = False) -> list[Figure]:
    """Each row's measured mean TTFT and TPOT beside the prediction at the row's load."""
    figures: list[Figure] = []
    for row in rows:
        rate = rate_of(row, catalog)
        metrics = plan_at(row, catalog, rate).parts[0].evaluation.metrics
        line = [f"{row['id']}: {rate:.1f} req/s"]
        for quantity, key in (("ttft_mean_ms", "ttft_mean_ms"), ("tpot_mean_ms", "tpot_ms")):
            measured = row["measured"].get(quantity)
            if measured is None:
                continue
            fig = Figure(row["id"], row["source"], quantity, measured, metrics[key])
            figures.append(fig)
            line.append(f"{quantity} {fig.predicted:,.1f} vs {measured:,.1f} ({fig.error:+.0%})")
        if verbose:
            print("; ".join(line))
    return figures


def main() -> int:
    figures = score(load_catalogs(), load_rows(), verbose=True)
    print(f"\n{'slice':22} {'n':>3} {'median|e|':>9} {'max|e|':>7} {'bias':>7}")
    for name in ("ttft_mean_ms", "tpot_mean_ms", "all"):
        group = [f for f in figures if name in ("all", f.quantity)]
        errs = sorted(abs(f.error) for f in group)
        print(f"{name:22} {len(group):>3} {statistics.median(errs):>9.1%} {errs[-1]:>7.1%} "
              f"{statistics.median(f.error for f in group):>+7.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
