"""Requests to simulate: Poisson arrivals with fixed or drawn lengths, or a trace file.

A trace is CSV with a header `arrival_s,input_tokens,output_tokens` (one request a row, arrival in
seconds from the start, non-decreasing). Bad rows are reported with file, row and the fix.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from pathlib import Path

from planner.errors import Problem, SpecError
from planner.yamlio import MAX_TABLE_BYTES, read_text

TRACE_COLUMNS = ("arrival_s", "input_tokens", "output_tokens")
MAX_TRACE_REQUESTS = 1_000_000


@dataclass(frozen=True)
class Request:
    arrival_s: float
    input_tokens: int
    output_tokens: int


def poisson_requests(rate_per_s: float, count: int, input_tokens: int, output_tokens: int, seed: int,
                     lengths: str = "fixed") -> list[Request]:
    """`count` Poisson arrivals at `rate_per_s`. lengths `fixed` keeps every request at the given lengths;
    `uniform` draws each length uniformly from [1, 2 x mean - 1] (same mean)."""
    rng = random.Random(seed)
    t = 0.0
    out = []
    for _ in range(count):
        t += rng.expovariate(rate_per_s)
        if lengths == "uniform":
            i = rng.randint(1, max(1, 2 * input_tokens - 1))
            o = rng.randint(1, max(1, 2 * output_tokens - 1))
        else:
            i, o = input_tokens, output_tokens
        out.append(Request(t, i, o))
    return out


def load_trace(path: Path) -> list[Request]:
    """Requests of a CSV trace; every problem found is reported at once."""
    text = read_text(path, SpecError, MAX_TABLE_BYTES)
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in TRACE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SpecError(Problem(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                                file=str(path), path="header",
                                fix=f"the header must be {','.join(TRACE_COLUMNS)}"))
    requests, problems = [], []
    last = -math.inf
    for n, row in enumerate(reader, start=2):
        if len(requests) >= MAX_TRACE_REQUESTS:
            problems.append(Problem(f"more than {MAX_TRACE_REQUESTS:,} requests", file=str(path), path=f"row {n}",
                                    fix="simulate a shorter trace"))
            break
        try:
            arrival = float(row["arrival_s"])
            i, o = int(row["input_tokens"]), int(row["output_tokens"])
        except (TypeError, ValueError):
            problems.append(Problem("a value is not a number", file=str(path), path=f"row {n}",
                                    fix="arrival_s is seconds, input_tokens and output_tokens whole numbers"))
            continue
        if not math.isfinite(arrival) or arrival < 0 or i < 1 or o < 1:
            problems.append(Problem("arrival must be finite and >= 0, token counts >= 1", file=str(path),
                                    path=f"row {n}", fix="correct the row"))
            continue
        if arrival < last:
            problems.append(Problem(f"arrival {arrival} is before the previous row's {last}", file=str(path),
                                    path=f"row {n}", fix="sort the trace by arrival_s"))
            continue
        last = arrival
        requests.append(Request(arrival, i, o))
    if not requests and not problems:
        problems.append(Problem("the trace has no requests", file=str(path), fix="add rows under the header"))
    if problems:
        raise SpecError(problems)
    return requests
