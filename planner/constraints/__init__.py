"""Named constraint units: the public vocabulary of limits.

Each unit has a stable dotted id, a title for reports, the spec field that sets its bound, the metric it
reads from an `Evaluation`, and a solver-free `check`. User limits are explainable; the memory fit is a
physical limit of the device and is reported but never blamed on the user's spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from planner.spec import ServingWorkload, TrainingWorkload, VisionWorkload, WorkloadSpec


@dataclass(frozen=True)
class ConstraintUnit:
    id: str
    title: str
    spec_path: str | None
    metric: str
    unit: str
    limit_of: Callable[[WorkloadSpec, "object"], float | None]  # (spec, evaluation) -> bound or None
    user_limit: bool = True


@dataclass(frozen=True)
class ConstraintCheck:
    id: str
    title: str
    spec_path: str | None
    limit: float
    value: float | None
    unit: str
    slack: float | None
    satisfied: bool
    binding: bool = False

    def as_dict(self) -> dict:
        return {"id": self.id, "spec_path": self.spec_path, "limit": _round(self.limit), "value": _round(self.value),
                "unit": self.unit, "slack": _round(self.slack), "satisfied": self.satisfied, "binding": self.binding}


def _round(x: float | None) -> float | None:
    if x is None:
        return None
    if math.isinf(x):
        return x
    return round(x, 4)


def _slo(field: str):
    def limit(spec: WorkloadSpec, _ev) -> float | None:
        w = spec.workload
        return getattr(w.slo, field) if isinstance(w, ServingWorkload) else None
    return limit


def _limits(field: str):
    return lambda spec, _ev: getattr(spec.limits, field)


def _vision_budget(spec: WorkloadSpec, _ev) -> float | None:
    w = spec.workload
    return w.latency_budget_ms if isinstance(w, VisionWorkload) else None


def _budget_job(spec: WorkloadSpec, _ev) -> float | None:
    return spec.limits.budget_usd if isinstance(spec.workload, TrainingWorkload) else None


def _deadline(spec: WorkloadSpec, _ev) -> float | None:
    return spec.limits.deadline_days if isinstance(spec.workload, TrainingWorkload) else None


def _inventory(spec: WorkloadSpec, ev) -> float | None:
    return spec.limits.inventory.get(ev.candidate.device)


def _capacity(_spec: WorkloadSpec, ev) -> float | None:
    return ev.metrics["memory_capacity_gib"]


def _utilization(spec: WorkloadSpec, _ev) -> float | None:
    return spec.limits.max_utilization if not isinstance(spec.workload, TrainingWorkload) else None


UNITS: tuple[ConstraintUnit, ...] = (
    ConstraintUnit("memory.fits_device", "Weights, optimizer state, activations and KV cache fit in device memory",
                   None, "memory_gib_per_device", "GiB", _capacity, user_limit=False),
    ConstraintUnit("throughput.max_utilization", "Replicas keep up with the load with the planned headroom",
                   "limits.max_utilization", "utilization", "ratio", _utilization),
    ConstraintUnit("latency.ttft_p99", "p99 time to first token within the SLO", "workload.slo.ttft_p99_ms",
                   "ttft_p99_ms", "ms", _slo("ttft_p99_ms")),
    ConstraintUnit("latency.ttft_mean", "Mean time to first token within the SLO", "workload.slo.ttft_mean_ms",
                   "ttft_mean_ms", "ms", _slo("ttft_mean_ms")),
    ConstraintUnit("latency.tpot", "Mean time per output token within the SLO", "workload.slo.tpot_ms",
                   "tpot_ms", "ms", _slo("tpot_ms")),
    ConstraintUnit("latency.tpot_p99", "p99 time per output token within the SLO", "workload.slo.tpot_p99_ms",
                   "tpot_p99_ms", "ms", _slo("tpot_p99_ms")),
    ConstraintUnit("latency.e2e_p99", "p99 end-to-end request latency within the SLO", "workload.slo.e2e_p99_ms",
                   "e2e_p99_ms", "ms", _slo("e2e_p99_ms")),
    ConstraintUnit("latency.frame_budget", "Frame latency within the real-time budget", "workload.latency_budget_ms",
                   "latency_ms", "ms", _vision_budget),
    ConstraintUnit("power.site_cap", "IT power within the site cap", "limits.power_kw", "power_kw", "kW",
                   _limits("power_kw")),
    ConstraintUnit("budget.hourly", "Cost per hour within budget", "limits.budget_usd_per_hour", "usd_per_hour",
                   "USD/h", _limits("budget_usd_per_hour")),
    ConstraintUnit("budget.job", "Cost of the whole training job within budget", "limits.budget_usd", "usd_per_job",
                   "USD", _budget_job),
    ConstraintUnit("time.deadline", "Training finishes before the deadline", "limits.deadline_days",
                   "time_to_train_days", "days", _deadline),
    ConstraintUnit("devices.max_count", "Device count within the maximum", "limits.max_devices", "devices",
                   "devices", _limits("max_devices")),
    ConstraintUnit("inventory.per_device", "Devices of this type within the inventory", "limits.inventory",
                   "devices", "devices", _inventory),
)

BY_ID = {u.id: u for u in UNITS}

# Serving SLO units: the spec field that bounds each and the closed-form latency (seconds) it reads.
SLO_METRICS = {
    "latency.ttft_p99": ("ttft_p99_ms", "ttft_p99_s"),
    "latency.ttft_mean": ("ttft_mean_ms", "ttft_mean_s"),
    "latency.tpot": ("tpot_ms", "tpot_s"),
    "latency.tpot_p99": ("tpot_p99_ms", "tpot_p99_s"),
    "latency.e2e_p99": ("e2e_p99_ms", "e2e_p99_s"),
}


def serving_slo_limits(spec: WorkloadSpec) -> dict[str, float]:
    """The spec's serving SLOs as closed-form metric -> limit in seconds (utilisation as a share)."""
    w = spec.workload
    if not isinstance(w, ServingWorkload):
        return {}
    limits = {metric: getattr(w.slo, field) / 1000 for field, metric in SLO_METRICS.values()
              if getattr(w.slo, field) is not None}
    limits["utilization"] = spec.limits.max_utilization
    return limits


def check(spec: WorkloadSpec, evaluation) -> list[ConstraintCheck]:
    """Every applicable unit's verdict on one evaluated configuration (the solver-free checker)."""
    out = []
    for unit in UNITS:
        limit = unit.limit_of(spec, evaluation)
        if limit is None:
            continue
        value = evaluation.metrics.get(unit.metric)
        satisfied = value is not None and not math.isnan(value) and value <= limit + 1e-9
        slack = None if value is None else limit - value
        spec_path = unit.spec_path
        if unit.id == "inventory.per_device":
            spec_path = f"limits.inventory.{evaluation.candidate.device}"
        out.append(ConstraintCheck(unit.id, unit.title, spec_path, float(limit), value, unit.unit, slack, satisfied))
    return out
