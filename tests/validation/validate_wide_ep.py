"""Score wide expert parallel (attention data parallel over several nodes) against published runs
(tests/validation/wide_ep.yaml).

Each row is one phase of DeepSeek-V3 measured alone at a stated load per GPU: a prefill step of N prompt tokens
per device, or a decode step of B running sequences per device at a KV length; and, beneath them, DeepEP's own
timings of the low-latency dispatch and combine, against one MoE layer's exchanges as the step charges them. The engine's step is rebuilt with
`planner.perf.serving.step_cost` (the same cost the solver, the simulator and `planner estimate` use) and its
tokens per second per node compared with the measured ones. No parameter is fitted on these rows, so the
leave-one-source-out figures are the in-sample ones.

    python tests/validation/validate_wide_ep.py
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from planner.catalog.loader import Catalog, load_catalogs
from planner.perf.serving import EngineParams, step_cost
from planner.perf.shapes import llm_footprint
from planner.perf.types import Parallel

HERE = Path(__file__).resolve().parent
MODEL, PRECISION, ENGINE, SYSTEM = "deepseek-v3", "fp8", "sglang", "hgx-h100-8-ib"


@dataclass(frozen=True)
class Case:
    row: str
    phase: str
    measured: float
    predicted: float

    @property
    def error(self) -> float:
        return self.predicted / self.measured - 1.0


def load_rows() -> list[dict]:
    return yaml.safe_load((HERE / "wide_ep.yaml").read_text())["measurements"]


def wide_cost(catalog: Catalog, ep: int, per_device: int, engine: EngineParams | None = None, input_tokens: int = 1):
    """DeepSeek-V3's step on `ep` H100s of hgx-h100-8-ib under attention data parallel, `per_device` a rank."""
    system = catalog.systems[SYSTEM]
    device = catalog.accelerators[system.accelerator]
    return step_cost(llm_footprint(catalog.models[MODEL].shape),
                     par=Parallel(tp=ep, ep=ep, attention_dp=True, micro_batch=per_device * ep), precision=PRECISION,
                     device=device, family=catalog.family_of(device), system=system,
                     engine=engine or EngineParams.bare(), input_tokens=input_tokens)


def predict(catalog: Catalog, row: dict) -> float:
    """Tokens/s per node of the row's phase: prompt tokens in prefill, output tokens in decode."""
    system = catalog.systems[SYSTEM]
    ep = row["ep"]
    per_device = row["tokens_per_device"] if row["phase"] == "prefill" else row["sequences_per_device"]
    engine = EngineParams.of(catalog.engine(ENGINE), catalog.accelerators[system.accelerator], ep)
    cost = wide_cost(catalog, ep, per_device, engine, row.get("input_tokens", 1))
    tokens = per_device * ep
    if row["phase"] == "prefill":
        # Whole prompts of `input_tokens` fill the step: each attends its own causal triangle.
        step = cost.seconds(0.0, 0.0, tokens, tokens * row["input_tokens"] / 2.0)
    else:
        step = cost.seconds(tokens, tokens * row["kv_length"])
    return per_device / step * system.devices_per_node


def score(catalog: Catalog, rows: list[dict]) -> list[Case]:
    return [Case(r["id"], r["phase"], r["measured_tokens_per_s_per_node"], predict(catalog, r)) for r in rows]


def load_kernels() -> list[dict]:
    return yaml.safe_load((HERE / "wide_ep.yaml").read_text())["kernels"]


def kernel_seconds(catalog: Catalog, ep: int, tokens_per_rank: int) -> float:
    """One MoE layer's dispatch plus combine in a decode step of `tokens_per_rank` sequences a rank, as the step
    charges it (the decode step's exchanges over its MoE layers)."""
    cost = wide_cost(catalog, ep, tokens_per_rank)
    return (cost.stage_parts(tokens_per_rank * ep, 0.0, 0.0, 0.0)["comm"]
            / llm_footprint(catalog.models[MODEL].shape).moe_layers)


def score_kernels(catalog: Catalog, kernels: list[dict]) -> list[Case]:
    return [Case(f"deepep-ll-ep{k['ep']}", "kernel", (k["dispatch_us"] + k["combine_us"]) * 1e-6,
                 kernel_seconds(catalog, k["ep"], k["tokens_per_rank"])) for k in kernels]


def main() -> int:
    catalog = load_catalogs()
    cases = score(catalog, load_rows())
    print(f"{'row':28} {'measured':>10} {'predicted':>10} {'error':>7}")
    for c in cases:
        print(f"{c.row:28} {c.measured:10,.0f} {c.predicted:10,.0f} {c.error:+7.1%}")
    kernels = score_kernels(catalog, load_kernels())
    print(f"\n{'DeepEP kernel (us a layer)':28} {'measured':>10} {'predicted':>10} {'error':>7}")
    for c in kernels:
        print(f"{c.row:28} {c.measured * 1e6:10,.0f} {c.predicted * 1e6:10,.0f} {c.error:+7.1%}")
    cases += kernels
    for phase in ("prefill", "decode", "kernel", None):
        sel = [c.error for c in cases if phase in (None, c.phase)]
        print(f"{phase or 'all':8} n={len(sel)} median |error| {statistics.median(abs(e) for e in sel):.1%}, "
              f"bias {statistics.median(sel):+.1%}, max {max(abs(e) for e in sel):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
