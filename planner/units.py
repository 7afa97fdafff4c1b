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
}


def gbit_to_bytes_per_s(gbit_per_s: float) -> float:
    return gbit_per_s * 1e9 / 8.0


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# Fixed-point scales for CP-SAT (integers only). Chosen so realistic values stay far below 2**53.
SCALE_USD = 1000  # milli-dollars
SCALE_MS = 1000  # microseconds, when a quantity is given in ms
SCALE_KW = 1000  # watts, when a quantity is given in kW


def to_fixed(value: float, scale: int) -> int:
    """Round *up* so a limit check in integers never admits what the float check would reject."""
    return int(math.ceil(value * scale - 1e-9))
