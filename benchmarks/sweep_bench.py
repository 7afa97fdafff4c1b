"""Sweep throughput: 1,000 scenarios of the 70B chat example on the local process pool and as Ray tasks on a
local Ray head with the same number of workers; wall time, per-scenario cost, and a projection to a cluster.

    python benchmarks/sweep_bench.py [--scenarios 1000] [--workers 2]

The projection assumes scenarios are independent (they are) and that Ray's per-task scheduling cost, measured
here as the Ray run's wall time beyond the pool's, stays per task on a cluster.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def sweep_file(folder: Path, scenarios: int) -> Path:
    shutil.copy(ROOT / "examples" / "llama3-70b-chat.yaml", folder / "chat.yaml")
    rates = [2 * (i + 1) for i in range(10)]
    tpots = [25 + 5 * i for i in range(10)]
    inputs = [256 * (i + 1) for i in range(max(1, scenarios // 100))]
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": "chat.yaml", "time_limit_s": 20, "axes": [
        {"path": "workload.traffic.requests_per_s", "values": rates},
        {"path": "workload.slo.tpot_ms", "values": tpots},
        {"path": "workload.traffic.input_tokens", "values": inputs}]}))
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from planner.sweep.run import run_sweep
    from planner.sweep.spec import load_sweep
    from planner.sweep.summary import read_results

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sweep = load_sweep(sweep_file(folder, args.scenarios))
        n = len(sweep.scenarios)
        t0 = time.perf_counter()
        run_sweep(sweep, folder / "local", workers=args.workers)
        local_s = time.perf_counter() - t0
        import ray

        ray.init(num_cpus=args.workers, include_dashboard=False)
        t0 = time.perf_counter()
        run_sweep(sweep, folder / "ray", backend="ray")
        ray_s = time.perf_counter() - t0
        ray.shutdown()
        rows = {b: [{k: v for k, v in r.items() if k != "solve_s"} for r in read_results(folder / b)]
                for b in ("local", "ray")}
        solve = [r["solve_s"] for r in read_results(folder / "local")]
    per_task = sum(solve) / n
    ray_overhead = max(0.0, (ray_s - local_s) * args.workers / n)
    cores_100 = 100 * 8  # 100 nodes of 8 cores each
    out = {"scenarios": n, "workers": args.workers, "local_wall_s": round(local_s, 1), "ray_wall_s": round(ray_s, 1),
           "identical": rows["local"] == rows["ray"], "median_solve_s": round(sorted(solve)[n // 2], 3),
           "mean_task_s": round(per_task, 3), "ray_overhead_per_task_s": round(ray_overhead, 4),
           "projected_100_nodes_x8_cores_s": round(n * (per_task + ray_overhead) / cores_100, 1)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
