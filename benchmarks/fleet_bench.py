"""Procurement benchmarks.

    python benchmarks/fleet_bench.py [fleet] [scaling] [mix] [pareto]

1. A fleet of 10 workloads over the full catalog (rent or buy H100, MI300X, B200): median wall time of the
   joint solve (in process, and `planner compare` whole process), and its status.
2. Solve time against catalog size: the 70B chat example with the catalog's offerings multiplied into
   synthetic regions (prices jittered deterministically) from 10 to 10,000 offerings, with peak memory.
3. A heterogeneous serving mix solved by CP-SAT against brute force over every pair of configurations.
4. The cost/latency Pareto front of three serving examples, whole process.
"""

from __future__ import annotations

import math
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import wall  # noqa: E402

from planner.candidates import enumerate_candidates  # noqa: E402
from planner.catalog.loader import load_catalogs  # noqa: E402
from planner.compile import DEMAND_UNITS, MICRO, _rate_units  # noqa: E402
from planner.units import to_fixed  # noqa: E402
from planner.evaluate import resolve_workload  # noqa: E402
from planner.fleet import solve_fleet  # noqa: E402
from planner.solve import solve  # noqa: E402
from planner.spec import load_spec  # noqa: E402

FLEET = ["llama3-70b-chat", "small-model-serving", "long-context-serving", "mixtral-moe-serving",
         "deepseek-v3-serving", "qwen3-32b-h200-peer", "yolov8-video", "llama3-8b-pretrain", "energy-min-finetune",
         "spot-vs-ondemand-training"]


def fleet_benchmark(catalog, runs: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fleet10.yaml"
        members = "\n".join(f"  - {ROOT / 'examples' / f'{n}.yaml'}" for n in FLEET)
        path.write_text(f"name: fleet10\nfleet:\n{members}\nhorizon_years: 3\n"
                        "site: {pue: 1.3, electricity_usd_per_kwh: 0.0895, grid_gco2_per_kwh: 323}\n"
                        "buy: {devices: [h100-sxm, mi300x, b200], residual_fraction: 0.2, ops_fraction_per_year: 0.1}\n"
                        "limits: {power_kw: 200}\n")
        walls, result = [], None
        for _ in range(runs):
            start = time.perf_counter()
            result = solve_fleet(path, catalog)
            walls.append(time.perf_counter() - start)
        # What a user waits for: `planner compare FLEET`, imports and catalog included, with and without the
        # explanation.
        whole = statistics.median(wall("compare", [str(path), "--no-explain"]) for _ in range(runs))
        explained = statistics.median(wall("compare", [str(path)]) for _ in range(runs))
    print(f"1. fleet of {len(FLEET)} workloads: median {statistics.median(walls):.2f} s over {runs} runs "
          f"(in process), {whole:.2f} s whole process ({explained:.2f} s explained), "
          f"{result.stats['candidates']} candidates, "
          f"{result.stats['variables']} variables, status {result.status}, bought {result.bought}")


def scaled_catalog(catalog, n: int):
    base = list(catalog.offerings)
    out = []
    k = 0
    while len(out) < n:
        for o in base:
            if len(out) >= n:
                break
            jitter = 1.0 + ((k * 7919) % 200 - 100) / 1000.0  # deterministic +-10%
            # A synthetic provider per copy: the per-provider dominance pruning keeps each one's best offering,
            # so the table (and the model) grow with the catalog instead of being pruned back.
            out.append(o.model_copy(update={"provider": f"{o.provider}-syn{k}", "region": f"{o.region}-syn{k}",
                                            "usd_per_hour": o.usd_per_hour * jitter}))
        k += 1
    regions = dict(catalog.regions)
    return replace(catalog, offerings=tuple(out), regions=regions)


def scaling_benchmark(catalog) -> None:
    spec = load_spec(ROOT / "examples" / "llama3-70b-chat.yaml")
    spec = spec.model_copy(update={"search": spec.search.model_copy(update={"providers": []})})
    print("2. solve time against catalog size (70B chat, enumerate + compile + solve, in process)")
    print(f"   {'offerings':>9} {'candidates':>10} {'variables':>9} {'seconds':>8} {'peak MB':>8}  status")
    for n in (10, 30, 100, 300, 1000, 3000, 10000):
        cat = scaled_catalog(catalog, n)
        work = resolve_workload(spec, cat)
        start = time.perf_counter()
        result = solve(work, cat)
        wall = time.perf_counter() - start
        # The process's peak resident memory so far (sizes run smallest first, so it is this size's peak).
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"   {n:9d} {result.stats['candidates']:10d} {result.stats['variables']:9d} {wall:8.2f} {peak_mb:8.0f}"
              f"  {result.status}")


def mix_benchmark(catalog) -> None:
    spec = load_spec(ROOT / "examples" / "llama3-70b-chat.yaml")
    spec = spec.model_copy(update={"search": spec.search.model_copy(update={
        "allow_mix": True, "devices": ["h100-sxm", "mi300x", "l40s"], "providers": ["aws", "tensorwave", "runpod"],
        "pricing": ["on-demand"]}), "limits": spec.limits.model_copy(update={"power_kw": None, "budget_usd_per_hour": None})})
    work = resolve_workload(spec, catalog)
    table = enumerate_candidates(work, catalog)
    start = time.perf_counter()
    result = solve(work, catalog, table=table)
    cp_time = time.perf_counter() - start
    # Brute force over every pair of rows (and single rows): the fewest replicas of the second row that carry
    # what the first leaves, using the same integer data as the model (utilisation cap and SLO rates).
    rows = table.replica_rows
    limits = ("throughput.max_utilization", "latency.ttft_p99", "latency.tpot")

    def carry(r):  # demand units one replica carries within every limit
        return min(_rate_units(r.rate_limits[u], table.demand) for u in limits if u in r.rate_limits)

    def cost(r, n):
        if n == 0:
            return 0
        units = math.ceil(n * r.devices_per_replica / r.unit_devices)
        return units * to_fixed(r.usd_per_unit_hour, MICRO)

    start = time.perf_counter()
    best = math.inf
    cap_devices = spec.limits.max_devices
    for a in rows:
        ca = carry(a)
        if ca == 0:
            continue
        for na in range(0, math.ceil(DEMAND_UNITS / ca) + 1):
            left = max(0, DEMAND_UNITS - na * ca)
            if left == 0:
                if na * a.devices_per_replica <= cap_devices:
                    best = min(best, cost(a, na))
                continue
            for b in rows:
                cb = carry(b)
                if cb == 0 or b is a:
                    continue
                nb = math.ceil(left / cb)
                if na * a.devices_per_replica + nb * b.devices_per_replica <= cap_devices:
                    best = min(best, cost(a, na) + cost(b, nb))
    brute_time = time.perf_counter() - start
    cp_value = round(result.objective_value * MICRO) if result.objective_value is not None else None
    print(f"3. heterogeneous mix ({len(rows)} configurations): CP-SAT {cp_time:.2f} s (objective "
          f"${result.objective_value:.2f}/h, {len(result.plan.parts)} part(s)), brute force over pairs "
          f"{brute_time:.2f} s (${best / MICRO:.2f}/h); ratio {brute_time / cp_time:.1f}x; "
          f"{'equal' if abs(cp_value - best) <= len(result.plan.parts) * 2 else 'DIFFERENT'}")


def pareto_benchmark(runs: int = 3) -> None:
    print("4. cost/latency Pareto front, whole process (`planner compare SPEC --pareto cost,latency`)")
    for name in ("llama3-70b-chat", "long-context-serving", "small-model-serving"):
        spec = str(ROOT / "examples" / f"{name}.yaml")
        seconds = statistics.median(wall("compare", [spec, "--pareto", "cost,latency"]) for _ in range(runs))
        print(f"   {name:24} {seconds:6.2f} s")


def main() -> int:
    catalog = load_catalogs()
    parts = sys.argv[1:] or ["fleet", "scaling", "mix", "pareto"]
    if "fleet" in parts:
        fleet_benchmark(catalog)
    if "scaling" in parts:
        scaling_benchmark(catalog)
    if "mix" in parts:
        mix_benchmark(catalog)
    if "pareto" in parts:
        pareto_benchmark()
    return 0


if __name__ == "__main__":
    sys.exit(main())
