"""Small hand-made candidate tables for solver tests: the numbers are chosen, not predicted."""

from __future__ import annotations

import datetime as dt

from planner.candidates import CandidateTable, ReplicaRow, TrainingRow
from planner.catalog.schema import Offering
from planner.evaluate import Candidate, Evaluation
from planner.perf.power import Economics, SiteFacts
from planner.perf.types import MemoryBreakdown, Parallel, Prediction
from planner.spec import WorkloadSpec

TODAY = dt.date(2026, 1, 1)


def offering(price: float, devices: int = 1, provider: str = "cloud") -> Offering:
    return Offering(provider=provider, region="r1", instance=f"i{devices}", system="sys", devices=devices,
                    pricing="on-demand", usd_per_hour=price, confidence="high", source=["T"], as_of=TODAY)


def replica_row(index: int, *, device: str = "gpu-a", dpr: int = 1, rates: dict[str, float], price: float,
                unit_devices: int = 1, static_w: float | None = 100.0, per_rate_w: float | None = 10.0,
                min_rate: float = 0.0, latency_s: float = 0.1, pue: float | None = 1.2,
                gco2: float | None = 400.0) -> ReplicaRow:
    cand = Candidate(device, "sys", "bf16", Parallel(tp=dpr, dp=1, micro_batch=8), offering(price, unit_devices))
    return ReplicaRow(index=index, candidate=cand, devices_per_replica=dpr, rate_limits=dict(rates),
                      min_rate=min_rate, power_static_w=static_w, power_per_rate_w=per_rate_w,
                      power_peak_w=None if static_w is None else static_w * 8,
                      site=SiteFacts(pue, gco2), unit_devices=unit_devices, usd_per_unit_hour=price,
                      latency_s=latency_s)


def replica_table(rows: list[ReplicaRow], demand: float, kind: str = "serving") -> CandidateTable:
    return CandidateTable(kind=kind, demand=demand, replica_rows=rows)


def training_row(index: int, *, device: str = "gpu-a", devices: int, metrics: dict[str, float | None],
                 step_time_s: float = 1.0) -> TrainingRow:
    cand = Candidate(device, "sys", "bf16", Parallel(tp=1, dp=devices), offering(1.0))
    pred = Prediction(kind="training", devices=devices, memory=MemoryBreakdown(), memory_capacity_bytes=1.0,
                      step_time_s=step_time_s)
    econ = Economics(usd_per_hour=metrics.get("usd_per_hour"), billed_units=devices, energy_kwh_per_hour=None,
                     carbon_kg_per_hour=None, pue=None)
    return TrainingRow(index, cand, Evaluation(cand, pred, econ, {"devices": devices, **metrics}))


def training_table(rows: list[TrainingRow]) -> CandidateTable:
    return CandidateTable(kind="training", demand=1.0, training_rows=rows)


def serving_spec(**limits) -> WorkloadSpec:
    slo = {k: limits.pop(k) for k in ("ttft_p99_ms", "ttft_mean_ms", "tpot_ms", "tpot_p99_ms", "e2e_p99_ms") if k in limits}
    return WorkloadSpec.model_validate({
        "name": "t",
        "workload": {"kind": "serving", "model": "m", "traffic": {"requests_per_s": 10, "input_tokens": 100,
                                                                  "output_tokens": 10}, "slo": slo},
        "limits": limits,
        "objective": limits.pop("objective", "cost") if "objective" in limits else "cost",
    })


def training_spec(objective: str = "cost", **limits) -> WorkloadSpec:
    return WorkloadSpec.model_validate({
        "name": "t",
        "workload": {"kind": "training", "model": "m", "tokens": 1e9, "seq_len": 1024, "global_batch_sequences": 8},
        "limits": limits,
        "objective": objective,
    })
