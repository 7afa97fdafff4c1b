"""Unit conventions in one place.

Catalog figures are stored as vendors quote them (decimal GB, GB/s, Gb/s, TFLOP/s, W) and converted here;
the performance model works in SI base units (bytes, seconds, FLOP, watts). The CP-SAT model is
integer-only, so `scale_*` helpers turn model quantities into fixed-point integers in one place.
"""

from __future__ import annotations

import math

GB = 1e9
GIB = 2**30
MIB = 2**20
TERA = 1e12
GIGA = 1e9
US = 1e-6
MS = 1e-3
HOUR_S = 3600.0
DAY_S = 86400.0

# Bytes per element for the storage precisions the planner knows.
BYTES_PER_ELEMENT = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    # NVFP4: 4-bit values plus one FP8 scale per 16 of them.
    "fp4": 0.5 + 1.0 / 16.0,
    # MXFP4 (OCP microscaling; gpt-oss's MoE weights): 4-bit values plus one 8-bit exponent per 32.
    "mxfp4": 0.5 + 1.0 / 32.0,
}


def gbit_to_bytes_per_s(gbit_per_s: float) -> float:
    return gbit_per_s * 1e9 / 8.0


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# CP-SAT is integer-only and keeps every constant and partial sum inside 64 bits. Realistic figures in
# the fixed-point units the models use (micro-USD, micro-kWh, watts) stay far below this.
MAX_SOLVER_INT = 2**50


def to_fixed(value: float, scale: float) -> int:
    """A row's figure in integers, rounded *up* so a limit check never admits what the float check rejects."""
    fixed = math.ceil(value * scale - 1e-9)
    if abs(fixed) > MAX_SOLVER_INT:
        from planner.errors import Problem, SolveError

        raise SolveError(Problem(f"a candidate's figure ({value:.3g}) is too large to plan with",
                                 fix="check the input's units and sizes: a rate, count, price or size in it is "
                                     "far beyond any real deployment"))
    return int(fixed)


def to_bound(limit: float, scale: float) -> int:
    """A limit in integers, rounded down; one above any reachable sum binds nothing and is held below 2**50."""
    return min(MAX_SOLVER_INT, int(math.floor(limit * scale + 1e-9)))
