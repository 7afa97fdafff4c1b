"""A user's own measurements: each run is a configuration (a spec and the layout `planner estimate` takes)
and what was measured on it. Read with the same strict rules and one-line errors as a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from planner.errors import CalibrationError, Problem
from planner.strict import Strict

# What a run may report, and the metric of `planner estimate` each one is compared with.
MEASURES = {"step_time_s": "step_time_s", "tokens_per_s": "tokens_per_s", "ttft_mean_ms": "ttft_mean_ms",
            "tpot_mean_ms": "tpot_mean_ms"}


class Layout(Strict):
    device: str
    tp: PositiveInt = 1
    pp: PositiveInt = 1
    dp: PositiveInt | None = None
    ep: PositiveInt = 1
    cp: PositiveInt = 1
    precision: Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4", "fp4", "mxfp4"] | None = None
    micro_batch: PositiveInt | None = Field(default=None, description="training micro-batch; serving: the "
                                            "engine's cap on running sequences (max_num_seqs)")
    zero_stage: int | None = Field(default=None, ge=0, le=3)
    shard_group: PositiveInt | None = None
    recompute: Literal["none", "selective", "full"] = "selective"
    virtual_stages: PositiveInt = 1
    system: str | None = None


class Measured(Strict):
    step_time_s: PositiveFloat | None = None
    tokens_per_s: PositiveFloat | None = Field(default=None, description="the whole job's or replica set's")
    ttft_mean_ms: PositiveFloat | None = None
    tpot_mean_ms: PositiveFloat | None = None

    @model_validator(mode="after")
    def _something(self) -> Measured:
        if not self.figures():
            raise ValueError(f"give at least one of {', '.join(MEASURES)}")
        return self

    def figures(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in MEASURES if getattr(self, k) is not None}


class Run(Strict):
    name: str | None = None
    spec: str = Field(description="the workload spec the run served or trained (path relative to this file)")
    layout: Layout
    measured: Measured


class RunsFile(Strict):
    runs: list[Run] = Field(min_length=1)


def load_runs(path: Path) -> RunsFile:
    from planner.yamlio import is_file, load_yaml, parse_document

    runs = parse_document(load_yaml(path, CalibrationError), RunsFile, CalibrationError)
    problems = []
    for i, run in enumerate(runs.runs):
        if not is_file(path.parent / run.spec):
            problems.append(Problem(f"spec `{run.spec}` not found next to the runs file", file=str(path),
                                    path=f"runs[{i}].spec", fix="give the spec's path relative to this file"))
    if problems:
        raise CalibrationError(problems)
    return runs
