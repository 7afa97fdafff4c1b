"""Whole-process `planner solve` on every example: median wall time of N runs, with the search size.

    python benchmarks/solve_bench.py [--runs 5] [--workers 8] [--examples examples/*.yaml]

Each run is a fresh `python -m planner solve SPEC --format json --no-explain` process (imports, catalog
loading, enumeration, compilation and both solves included), so the figure is what a user waits for to
get the plan; `benchmarks/explain_bench.py` measures what the explanation adds.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
import time
from pathlib import Path

from common import ROOT, run_planner


def run_once(spec: str, workers: int, extra: list[str]) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = run_planner(["solve", spec, "--format", "json", "--no-explain", "--workers", str(workers), *extra])
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{spec}: exit {proc.returncode}: {proc.stderr.strip()}")
    return wall, json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--examples", nargs="*", default=sorted(glob.glob(str(ROOT / "examples" / "*.yaml"))))
    parser.add_argument("--extra", nargs="*", default=[], help="extra arguments for planner solve")
    args = parser.parse_args()
    print(f"{'example':32} {'median s':>9} {'min s':>7} {'max s':>7} {'candidates':>10} {'variables':>9}  status")
    medians = []
    for spec in args.examples:
        walls, data = [], None
        for _ in range(args.runs):
            wall, data = run_once(spec, args.workers, args.extra)
            walls.append(wall)
        med = statistics.median(walls)
        medians.append(med)
        search = data["search"]
        print(f"{Path(spec).stem:32} {med:9.2f} {min(walls):7.2f} {max(walls):7.2f} {search['candidates']:>10} "
              f"{search['variables']:>9}  {data['status']}")
    print(f"\nmedian of medians {statistics.median(medians):.2f} s, worst {max(medians):.2f} s "
          f"({args.runs} runs each, {args.workers} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
