"""`planner tier` on every edge example: whole-process wall time with and without the explanation.

    python benchmarks/tier_bench.py [--runs 3]

Also prints, in process, the number of options, the plan and the explanation's re-solves.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from common import ROOT, wall

from planner.catalog.loader import load_catalogs
from planner.tier import plan_tier_file
from planner.tier.questions import tiers

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    catalog = load_catalogs()
    print(f"{'example':26} {'options':>7} {'plain s':>8} {'explained s':>11} {'solves':>6}  plan")
    for spec in sorted((ROOT / "examples" / "edge").glob("*.yaml")):
        bare = statistics.median(wall("tier", [str(spec), "--no-explain"]) for _ in range(args.runs))
        full = statistics.median(wall("tier", [str(spec)]) for _ in range(args.runs))
        result = plan_tier_file(spec, catalog)
        print(f"{spec.stem:26} {len(result.table.options):7} {bare:8.2f} {full:11.2f} "
              f"{result.explanation.solves:6}  {', '.join(f'{w} {t}' for w, t in tiers(result.plan).items()) or 'infeasible'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
