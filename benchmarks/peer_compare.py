"""Side by side with NVIDIA's aiconfigurator (shared/peers/aiconfigurator_run.sh): Qwen3-32B on 8 H200.

    python benchmarks/peer_compare.py

The peer answers "the highest throughput per GPU on 8 H200 within TTFT <= 1000 ms and TPOT <= 30 ms".
The planner answers "the cheapest plan for a given load within the limits"; to ask it the peer's question
this script bisects the request rate to the highest one that still has a plan on at most 8 H200, and
prints that plan, its predicted figures and the wall time of one `planner solve` of the example.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from planner.catalog.loader import load_catalogs
from planner.evaluate import resolve_workload
from planner.solve import solve
from planner.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "qwen3-32b-h200-peer.yaml"


def at_rate(spec, rate):
    w = spec.workload
    traffic = w.traffic.model_copy(update={"requests_per_s": rate})
    return spec.model_copy(update={"workload": w.model_copy(update={"traffic": traffic})})


def main() -> int:
    catalog = load_catalogs()
    spec = load_spec(SPEC)
    lo, hi = 0.1, 100.0
    best = None
    for _ in range(30):
        mid = (lo + hi) / 2
        work = resolve_workload(at_rate(spec, mid), catalog)
        result = solve(work, catalog)
        if result.plan is not None:
            lo, best = mid, (mid, result)
        else:
            hi = mid
    rate, result = best
    part = result.plan.main
    m = part.evaluation.metrics
    c = part.evaluation.candidate
    out_tokens = spec.workload.traffic.output_tokens
    print(f"planner: highest rate on <= 8 H200 within the SLOs: {rate:.2f} req/s "
          f"= {rate * out_tokens / c.devices:.0f} output tokens/s per GPU")
    print(f"  plan: {c.devices} x {c.device}, tp{c.parallel.tp} x {part.replicas} replicas, {c.precision}, "
          f"batch {c.parallel.micro_batch}")
    print(f"  predicted: TTFT p99 {m['ttft_p99_ms']:.0f} ms, TPOT {m['tpot_ms']:.1f} ms, "
          f"utilisation {m['utilization']:.2f}")
    walls = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "planner", "solve", str(SPEC), "--format", "json"], cwd=ROOT,
                       capture_output=True, check=False)
        walls.append(time.perf_counter() - start)
    walls.sort()
    print(f"  wall time of `planner solve {SPEC.relative_to(ROOT)}`: median {walls[2]:.2f} s of 5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
