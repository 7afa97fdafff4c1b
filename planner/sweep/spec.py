"""A sweep: a base workload spec and axes to vary, expanded into scenarios.

An axis is a spec field by its YAML path (`workload.traffic.requests_per_s`) with a list of values or a
range, or the price scenario / calibration overlay files to plan under. Axes combine as a cartesian
product or zipped; `sample` draws N of the combinations with a seed. Every axis is tried on the base spec
when the sweep is read, so an unknown path or a value the spec refuses fails at once, in one line.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from planner.errors import Problem, SpecError, SweepError
from planner.strict import Strict
from planner.yamlio import YamlDocument, is_file, load_yaml, parse_document

MAX_SCENARIOS = 1_000_000
FILE_AXES = ("price_scenario", "calibration")


class Range(Strict):
    start: float
    stop: float
    step: float = Field(gt=0)

    def values(self) -> list[float]:
        count = int((self.stop - self.start) / self.step + 1e-9) + 1
        if count < 1:
            return []
        out = [self.start + i * self.step for i in range(count)]
        return [int(v) if float(v).is_integer() else round(v, 12) for v in out]


class Axis(Strict):
    path: str = Field(description="a spec field by its YAML path (workload.traffic.requests_per_s), or "
                                  "price_scenario / calibration for files to plan under")
    values: list[Any] | None = None
    range: Range | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Axis:
        if (self.values is None) == (self.range is None):
            raise ValueError("give exactly one of values or range")
        return self

    def points(self) -> list[Any]:
        return list(self.values) if self.values is not None else self.range.values()


class Sample(Strict):
    n: int = Field(ge=1, le=MAX_SCENARIOS)
    seed: int = 0


class SweepFile(Strict):
    base: str = Field(description="the workload spec every scenario starts from (path relative to this file)")
    axes: list[Axis] = Field(min_length=1)
    combine: Literal["cartesian", "zip"] = "cartesian"
    sample: Sample | None = None
    time_limit_s: float = Field(default=30.0, gt=0, le=3600, description="per scenario")


@dataclass(frozen=True)
class Scenario:
    index: int
    values: dict[str, Any]  # axis path -> value
    key: str  # a hash of the base spec and the values: what a resumed sweep skips

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values.items())


@dataclass(frozen=True)
class Sweep:
    file: Path
    base_path: Path
    base_text: str
    axes: list[Axis]
    scenarios: list[Scenario]
    time_limit_s: float


def set_path(data: dict, path: str, value: Any) -> None:
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise KeyError(part)
        node = child
    node[parts[-1]] = value


def scenario_document(base_path: Path, values: dict[str, Any]) -> YamlDocument:
    """The base spec with the scenario's field values set (file axes are applied to the catalog instead)."""
    base = load_yaml(base_path, SpecError)
    data = copy.deepcopy(base.data)
    for path, value in values.items():
        if path not in FILE_AXES:
            set_path(data, path, value)
    return YamlDocument(file=base.file, data=data, text=base.text)


def load_sweep(path: Path) -> Sweep:
    from planner.spec import spec_from_document

    doc = load_yaml(path, SweepError)
    sweep_file = parse_document(doc, SweepFile, SweepError)
    base_path = path.parent / sweep_file.base
    if not is_file(base_path):
        raise SweepError(Problem(f"base spec `{sweep_file.base}` not found", file=str(path), path="base",
                                 fix="give the spec's path relative to the sweep file"))
    problems = []
    axes = sweep_file.axes
    seen = set()
    for i, axis in enumerate(axes):
        where = f"axes[{i}]"
        if axis.path in seen:
            problems.append(Problem(f"axis `{axis.path}` is given twice", file=str(path), path=f"{where}.path",
                                    fix="merge the two axes' values"))
        seen.add(axis.path)
        points = axis.points()
        if not points:
            problems.append(Problem("the axis has no values (an empty list or a range whose stop is before its "
                                    "start)", file=str(path), path=where, fix="give at least one value"))
            continue
        if axis.path in FILE_AXES:
            for j, value in enumerate(points):
                if not isinstance(value, str) or not is_file(path.parent / value):
                    problems.append(Problem(f"{axis.path} file `{value}` not found", file=str(path),
                                            path=f"{where}.values[{j}]", fix="give paths relative to the sweep file"))
            continue
        # Try every value on the base spec now: a path the spec does not have, or a value it refuses, is
        # reported here rather than as a failed scenario hours into the sweep.
        for j, value in enumerate(points):
            try:
                spec_from_document(scenario_document(base_path, {axis.path: value}), base_path)
            except KeyError as exc:
                problems.append(Problem(f"`{axis.path}` runs through `{exc.args[0]}`, which is not a section",
                                        file=str(path), path=f"{where}.path", fix="name a field of the spec"))
                break
            except SpecError as exc:
                first = exc.problems[0]
                problems.append(Problem(f"{axis.path} = {value!r}: {first.path + ': ' if first.path else ''}"
                                        f"{first.message}", file=str(path), path=f"{where}.values[{j}]"
                                        if axis.values is not None else f"{where}.range", fix=first.fix))
                break
    if problems:
        raise SweepError(problems)
    base_text = base_path.read_text()
    names = [a.path for a in axes]
    grids = [a.points() for a in axes]
    if sweep_file.combine == "zip":
        lengths = {len(g) for g in grids}
        if len(lengths) > 1:
            raise SweepError(Problem(f"zipped axes need equal lengths, got {sorted(lengths)}", file=str(path),
                                     path="combine", fix="give every axis as many values, or combine: cartesian"))
        combos = list(zip(*grids))
    else:
        total = 1
        for g in grids:
            total *= len(g)
        if total > MAX_SCENARIOS:
            raise SweepError(Problem(f"too large: {total:,} scenarios (at most {MAX_SCENARIOS:,})", file=str(path),
                                     path="axes", fix="use fewer values or sample: {n: ..., seed: ...}"))
        combos = list(itertools.product(*grids))
    if sweep_file.sample is not None and sweep_file.sample.n < len(combos):
        picked = sorted(random.Random(sweep_file.sample.seed).sample(range(len(combos)), sweep_file.sample.n))
        combos = [combos[i] for i in picked]
    scenarios = []
    for i, combo in enumerate(combos):
        values = dict(zip(names, combo))
        digest = hashlib.sha1((base_text + json.dumps(values, sort_keys=True, default=str)).encode()).hexdigest()
        scenarios.append(Scenario(i, values, digest[:16]))
    return Sweep(path, base_path, base_text, axes, scenarios, sweep_file.time_limit_s)
