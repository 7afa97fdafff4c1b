"""What the explanation adds to `planner solve`, on every example.

    python benchmarks/explain_bench.py [--runs 3] [--examples examples/*.yaml]

For each example: the median whole-process wall time of `planner solve --no-explain` and of `planner solve`
(explained), and their ratio.
"""

from __future__ import annotations

import argparse
import glob
import statistics
import sys
from pathlib import Path

from common import ROOT, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--examples", nargs="*", default=sorted(glob.glob(str(ROOT / "examples" / "*.yaml"))))
    args = parser.parse_args()
    print(f"{'example':32} {'solve s':>8} {'solve+explain s':>16} {'ratio':>6}")
    ratios = []
    for spec in args.examples:
        bare = statistics.median(wall("solve", [spec, "--no-explain"]) for _ in range(args.runs))
        full = statistics.median(wall("solve", [spec]) for _ in range(args.runs))
        ratios.append(full / bare)
        print(f"{Path(spec).stem:32} {bare:8.2f} {full:16.2f} {full / bare:6.2f}")
    print(f"\nmedian ratio {statistics.median(ratios):.2f}, worst {max(ratios):.2f} ({args.runs} runs each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
