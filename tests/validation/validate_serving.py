"""Predicted versus published: LLM serving throughput and first-token latency (tests/validation/serving.yaml).

    python tests/validation/validate_serving.py

Rows with a full configuration (device, tensor parallelism, precision, input and output lengths, and a batch
for throughput rows) are rebuilt as one replica. Offline throughput is the replica's saturation rate
(output_tokens / (prefill + output_tokens x TPOT(batch) / batch)); a batch-1 TTFT row is the prefill time.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from planner.catalog.loader import Catalog, load_catalogs
from planner.perf.serving import replica_profile
from planner.perf.shapes import llm_footprint
from planner.perf.types import Parallel

HERE = Path(__file__).resolve().parent
SYSTEM_FOR_DEVICE = {"h100-sxm": "hgx-h100-8", "h200-sxm": "hgx-h200-8", "a100-80gb": "hgx-a100-80gb-8",
                     "b200": "hgx-b200-8"}
PRECISION = {"fp16": "fp16", "fp8": "fp8", "bf16": "bf16"}
# Llama 3.3 70B has Llama 3.1 70B's architecture (same config.json shape); only the weights differ.
MODEL_ALIASES = {"llama-3.3-70b": "llama-3.1-70b"}


@dataclass
class ServingCase:
    id: str
    quantity: str
    published: float
    predicted: float

    @property
    def error(self) -> float:
        return self.predicted / self.published - 1.0


def run(catalog: Catalog) -> tuple[list[ServingCase], list[tuple[str, str]]]:
    rows = yaml.safe_load((HERE / "serving.yaml").read_text())["measurements"]
    cases, skipped = [], []
    for row in rows:
        rid = row["id"]
        model = MODEL_ALIASES.get(row.get("model_name"), row.get("model_name"))
        system_id = SYSTEM_FOR_DEVICE.get(row["device"])
        par_in = row.get("parallel") or {}
        precision = PRECISION.get(row.get("precision") or "")
        if model not in catalog.models or system_id is None or precision is None or "tp" not in par_in \
                or par_in.get("pp", 1) != 1 or not row.get("input_tokens") or not row.get("output_tokens"):
            skipped.append((rid, "configuration incomplete or outside the catalog (model, device, precision, layout)"))
            continue
        measured = row["measured"]
        batch = row.get("batch") or 1
        if "ttft_ms" in measured and batch == 1:
            quantity, published = "ttft_ms", measured["ttft_ms"]
        elif "output_tokens_per_s_per_device" in measured or "output_tokens_per_s" in measured:
            quantity = "tokens/s/device" if row.get("batch") else "max tokens/s/device"
            published = measured.get("output_tokens_per_s_per_device") or measured["output_tokens_per_s"] / row["devices"]
        else:
            skipped.append((rid, "no throughput or TTFT figure"))
            continue
        system = catalog.systems[system_id]
        device = catalog.accelerators[system.accelerator]
        fp = llm_footprint(catalog.models[model].shape)

        def profile(b: int):
            return replica_profile(fp, input_tokens=row["input_tokens"], output_tokens=row["output_tokens"],
                                   par=Parallel(tp=par_in["tp"], dp=1, micro_batch=b), precision=precision,
                                   device=device, family=catalog.family_of(device), system=system)

        if quantity == "ttft_ms":
            predicted = profile(1).prefill_s * 1000
        else:
            if row.get("batch"):
                prof = profile(batch)
            else:
                # A "max throughput" row: the largest batch whose KV cache fits, as the benchmark tunes it.
                prof = profile(max(1, profile(1).max_batch_fit))
            predicted = row["output_tokens"] / prof.service_s / par_in["tp"]
        cases.append(ServingCase(rid, quantity, published, predicted))
    return cases, skipped


def main() -> int:
    cases, skipped = run(load_catalogs())
    print(f"{'measurement':52} {'quantity':16} {'published':>10} {'predicted':>10} {'error':>7}")
    for c in cases:
        print(f"{c.id:52} {c.quantity:16} {c.published:10.0f} {c.predicted:10.0f} {100 * c.error:+6.1f}%")
    errors = [abs(c.error) for c in cases]
    print(f"\n{len(cases)} rows: median |error| {100 * statistics.median(errors):.1f}%, "
          f"max |error| {100 * max(errors):.1f}%")
    for rid, why in skipped:
        print(f"skipped {rid}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
