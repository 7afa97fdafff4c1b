"""Side by side with NVIDIA's aiconfigurator 0.12.0 (shared/peers/aiconfigurator_run.sh) on two questions.

    python benchmarks/peer_compare.py

Each example asks "the highest load on at most N GPUs within the SLOs" (the peer ranks plans by tokens/s
per GPU under the SLOs). The planner answers "the cheapest plan for a given load", so this script bisects
the request rate to the highest one that still has a plan, per precision, and prints that plan, its
predicted figures, the simulated check of its SLOs, and the wall time of one `planner solve`.
The peer's figures below were measured with its CLI (`aiconfigurator cli default`, trtllm backend, perf
database 1.3.0rc20) on this 2-core machine; they are predictions, set beside ours, never fitted to.
"""

from __future__ import annotations

import sys
import time

from common import ROOT, run_planner

from planner.catalog.loader import load_catalogs
from planner.evaluate import resolve_workload
from planner.simulate.run import simulate_parts
from planner.solve import solve
from planner.spec import load_spec

CASES = {
    "qwen3-32b-h200-peer": "peer (bf16): TP4 x 2 replicas, batch 96, 6.87 req/s, 858 tok/s/GPU, TTFT 566 ms, "
                           "TPOT 27.6 ms; 13 s",
    "llama3-70b-h100-peer": "peer (bf16): TP4 x 4 replicas, batch 32, 6.73 req/s, 210 tok/s/GPU, TTFT 960 ms, "
                            "TPOT 36.6 ms; FP8 checkpoint: TP2 x 8, batch 32, 13.41 req/s, 418 tok/s/GPU; 11-12 s",
    "deepseek-v3-h200-peer": "peer (fp8): TP8 EP8 x 4 replicas, batch 112, 9.14 req/s, 286 tok/s/GPU, TTFT 662 ms; "
                             "disaggregated 2 x TP8 EP8 prefill + 1 x attention-DP16 EP16 decode, 10.15 req/s, "
                             "317 tok/s/GPU, TTFT 319 ms, TPOT 46.3 ms; 34 s (perf database 1.3.0rc20)",
}


def with_changes(spec, rate: float, precision: str):
    w = spec.workload
    traffic = w.traffic.model_copy(update={"requests_per_s": rate})
    search = spec.search.model_copy(update={"precisions": [precision]})
    return spec.model_copy(update={"workload": w.model_copy(update={"traffic": traffic}), "search": search})


def highest_rate(spec, catalog, precision: str):
    lo, hi, best = 0.05, 60.0, None
    for _ in range(16):
        mid = (lo + hi) / 2
        work = resolve_workload(with_changes(spec, mid, precision), catalog)
        result = solve(work, catalog)
        if result.plan is not None:
            lo, best = mid, (mid, work, result)
        else:
            hi = mid
    return best


def layout(plan) -> str:
    """Each part as `[role ]TPt [EPe ][attention-DP ]x replicas, max_num_seqs b`."""
    out = []
    for part in plan.parts:
        c = part.evaluation.candidate
        p = c.parallel
        role = "" if c.role == "both" else f"{c.role} "
        ep = f" EP{p.ep}" if p.ep > 1 else ""
        dp = " attention-DP" if p.attention_dp else ""
        out.append(f"{role}TP{p.tp}{ep}{dp} x {part.replicas}, max_num_seqs {p.micro_batch}")
    return " + ".join(out)


def main() -> int:
    catalog = load_catalogs()
    for name, peer in CASES.items():
        path = ROOT / "examples" / f"{name}.yaml"
        spec = load_spec(path)
        out_tokens = spec.workload.traffic.output_tokens
        print(f"== {name}: {spec.workload.model}, at most {spec.limits.max_devices} {spec.search.devices[0]}")
        print(f"  {peer}")
        for precision in spec.search.precisions:
            found = highest_rate(spec, catalog, precision)
            if found is None:
                print(f"  planner {precision}: no plan at any rate")
                continue
            rate, work, result = found
            plan = result.plan
            m = plan.main.evaluation.metrics
            devices = sum(p.evaluation.candidate.devices for p in plan.parts)
            demand = work.spec.workload.traffic.requests_per_s
            sims = simulate_parts(work, catalog, [(p.evaluation, demand * p.load_share) for p in plan.parts],
                                  requests=2000, seed=0)
            sim = sims[-1].result
            print(f"  planner {precision}: {rate:.2f} req/s = {rate * out_tokens / devices:.0f} tok/s/GPU on {devices} GPUs: "
                  f"{layout(plan)}; TTFT mean {m['ttft_mean_ms']:.0f} ms (simulated {sim.ttft_ms.mean:.0f}), "
                  f"TPOT {m['tpot_ms']:.1f} ms (simulated {sim.tpot_ms.mean:.1f})")
        walls = []
        for _ in range(5):
            start = time.perf_counter()
            run_planner(["solve", str(path), "--format", "json"])
            walls.append(time.perf_counter() - start)
        walls.sort()
        print(f"  wall time of `planner solve {path.relative_to(ROOT)}`: median {walls[2]:.2f} s of 5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
