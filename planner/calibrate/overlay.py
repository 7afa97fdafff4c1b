"""A calibration overlay: fitted values of device-family and engine parameters, applied on top of the shipped
catalogs by `--calibration FILE` (solve, estimate, compare, tier, simulate).

Only the parameters `planner calibrate` fits may appear (KNOBS), each within its plausible range; every
overridden figure's reason names the overlay, so `planner catalog show` and the provenance of a prediction
say it was calibrated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from planner.catalog.loader import Catalog
from planner.catalog.schema import EfficiencyFactor, EngineValue
from planner.errors import CalibrationError, Problem, did_you_mean
from planner.strict import Strict


@dataclass(frozen=True)
class Knob:
    """A parameter calibration may fit: where it lives, its plausible range, and what it moves."""

    scope: Literal["family", "engine"]
    name: str
    low: float
    high: float
    kind: Literal["training", "serving"]
    measures: tuple[str, ...]
    precisions: tuple[str, ...] = ()  # only runs at these precisions inform it (empty: any)
    what: str = ""


KNOBS = (
    Knob("family", "matmul_efficiency", 0.1, 1.0, "training", ("step_time_s", "tokens_per_s"),
         ("bf16", "fp16", "fp32"), "share of the 16-bit peak training GEMMs reach"),
    Knob("family", "fp8_matmul_efficiency", 0.1, 1.0, "training", ("step_time_s", "tokens_per_s"), ("fp8",),
         "share of the FP8 peak training GEMMs reach"),
    Knob("family", "memory_bw_efficiency", 0.2, 1.0, "serving", ("tpot_mean_ms",), (),
         "share of HBM bandwidth a decode step streams weights at"),
    Knob("engine", "step_overhead_ms", 0.0, 50.0, "serving", ("tpot_mean_ms",), (),
         "host time per engine iteration"),
    Knob("engine", "request_overhead_ms", 0.0, 2000.0, "serving", ("ttft_mean_ms",), (),
         "time a request spends outside the model before its first token"),
)
KNOB_BY_NAME = {(k.scope, k.name): k for k in KNOBS}


class ErrorSummary(Strict):
    figures: int = Field(ge=0)  # measured figures compared (a run may report several)
    median_abs_pct: float
    p90_abs_pct: float
    bias_pct: float


class Calibration(Strict):
    schema_version: Literal[1]
    kind: Literal["planner-calibration"]
    fitted_from: str
    families: dict[str, dict[str, float]] = {}
    engines: dict[str, dict[str, float]] = {}
    before: ErrorSummary | None = None
    after: ErrorSummary | None = None
    leave_one_out: ErrorSummary | None = None


def params_of(calibration: Calibration) -> dict[tuple[str, str, str], float]:
    out = {("family", fid, name): v for fid, values in calibration.families.items() for name, v in values.items()}
    out |= {("engine", eid, name): v for eid, values in calibration.engines.items() for name, v in values.items()}
    return out


def with_params(catalog: Catalog, params: dict[tuple[str, str, str], float], origin: str) -> Catalog:
    """The catalog with these (scope, id, parameter) values overriding the shipped ones."""
    families = dict(catalog.families)
    engines = dict(catalog.engines)
    reason = f"calibrated from {origin} (planner calibrate)"
    for (scope, target, name), value in sorted(params.items()):
        if scope == "family":
            families[target] = families[target].model_copy(
                update={name: EfficiencyFactor(value=value, reason=reason)})
        else:
            engines[target] = engines[target].model_copy(update={name: EngineValue(value=value, reason=reason)})
    return dataclasses.replace(catalog, families=families, engines=engines)


def load_calibration(path: Path, catalog: Catalog) -> Calibration:
    from planner.yamlio import load_yaml, parse_document

    calibration = parse_document(load_yaml(path, CalibrationError), Calibration, CalibrationError)
    problems = []
    for scope, table, known in (("family", calibration.families, catalog.families),
                                ("engine", calibration.engines, catalog.engines)):
        section = "families" if scope == "family" else "engines"
        for target, values in table.items():
            if target not in known:
                problems.append(Problem(f"unknown {scope} `{target}`.{did_you_mean(target, known)}", file=str(path),
                                        path=f"{section}.{target}", fix=f"use a {scope} id of the catalogs"))
                continue
            for name, value in values.items():
                knob = KNOB_BY_NAME.get((scope, name))
                if knob is None:
                    names = [k.name for k in KNOBS if k.scope == scope]
                    problems.append(Problem(f"`{name}` is not a parameter calibration sets.{did_you_mean(name, names)}",
                                            file=str(path), path=f"{section}.{target}.{name}",
                                            fix=f"use one of: {', '.join(names)}"))
                elif not knob.low <= value <= knob.high:
                    problems.append(Problem(f"{value:g} is outside {name}'s plausible range [{knob.low:g}, {knob.high:g}]",
                                            file=str(path), path=f"{section}.{target}.{name}",
                                            fix="re-run planner calibrate, or give a value inside the range"))
    if problems:
        raise CalibrationError(problems)
    return calibration


def apply_calibration(catalog: Catalog, path: Path) -> Catalog:
    from planner.catalog.loader import CalibrationNote

    calibration = load_calibration(path, catalog)
    loo = calibration.leave_one_out
    note = CalibrationNote(file=path.name, families=frozenset(calibration.families),
                           engines=frozenset(calibration.engines), figures=loo.figures if loo else 0,
                           leave_one_out_p90_pct=loo.p90_abs_pct if loo else None)
    return dataclasses.replace(with_params(catalog, params_of(calibration), path.name), calibration=note)
