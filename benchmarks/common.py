"""Shared by the benchmarks: the whole-process wall time of one `planner` command."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@cache
def user_env() -> dict[str, str]:
    """The environment of a user's process: the planner's byte code compiled once, as `pip install` does for
    a wheel. Without it (PYTHONDONTWRITEBYTECODE=1, as some sandboxes set) every process recompiles the
    package's sources, about 80 ms that no installed copy pays. The byte code goes to a folder of its own, so
    the checkout stays clean."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "planner-bench-pycache")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "planner")], env=env, check=True)
    return env


def run_planner(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "planner", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False, env=user_env())


def wall(command: str, args: list[str]) -> float:
    """Seconds for `planner COMMAND ARGS --format json`; a plan or a proven infeasibility both count."""
    start = time.perf_counter()
    proc = run_planner([command, *args, "--format", "json"])
    if proc.returncode not in (0, 3):
        raise SystemExit(proc.stderr)
    return time.perf_counter() - start
