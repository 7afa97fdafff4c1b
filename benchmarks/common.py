"""Shared by the benchmarks: the whole-process wall time of one `planner` command."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall(command: str, args: list[str]) -> float:
    """Seconds for `planner COMMAND ARGS --format json`; a plan or a proven infeasibility both count."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "planner", command, *args, "--format", "json"], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode not in (0, 3):
        raise SystemExit(proc.stderr)
    return time.perf_counter() - start
