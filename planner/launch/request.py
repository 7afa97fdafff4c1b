"""What a launch configuration is made from: the `workload` and `plan` blocks of a solve result.

`planner solve --format json` writes them; `planner emit RESULT.json DIR` reads them back, so a result kept
from an earlier run can still be turned into files. Only the fields a launch needs are read; a result
without a plan, or from a kind of workload no launcher runs, is refused with one line naming the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planner.catalog.schema import LLMShape
from planner.errors import EmitError, Problem
from planner.spec import SpeculativeSpec


class _Read(BaseModel):
    # The result holds much more than a launch needs (explanations, alternatives): ignore the rest. What it
    # does read is checked as strictly as a spec: no true/false for a number, nothing infinite.
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, allow_inf_nan=False)


class PrefixCacheBlock(_Read):
    cached_tokens: int = Field(ge=0)
    shared_prefix_tokens: int = Field(default=0, ge=0)


class WorkloadBlock(_Read):
    kind: Literal["serving", "training"]
    model: str
    hf_repo: str | None = None
    shape: dict
    engine: str | None = None
    engine_version: str | None = None
    kv_cache_dtype: str = "auto"
    input_tokens: int | None = Field(default=None, ge=1)
    output_tokens: int | None = Field(default=None, ge=1)
    framework: str | None = None
    framework_version: str | None = None
    seq_len: int | None = Field(default=None, ge=1)
    tokens: float | None = Field(default=None, gt=0)
    adapter: dict | None = None
    speculative: SpeculativeSpec | None = None
    prefix_cache: PrefixCacheBlock | None = None


class OfferingBlock(_Read):
    provider: str
    region: str | None = None
    pricing: str
    instance: str
    devices_per_instance: int | None = None


class ParallelBlock(_Read):
    dp: int = Field(ge=1)
    tp: int = Field(ge=1)
    pp: int = Field(ge=1)
    ep: int = Field(default=1, ge=1)
    cp: int = Field(default=1, ge=1)
    attention_dp: bool = False


class BatchBlock(_Read):
    micro: int = Field(ge=1)
    global_: int | None = Field(default=None, alias="global", ge=1)


class TrainingBlock(_Read):
    zero_stage: int = Field(ge=0, le=3)
    shard_group: int | None = None
    recompute: Literal["none", "selective", "full"]
    virtual_stages: int = Field(default=1, ge=1)


class PlanBlock(_Read):
    device: str
    system: str
    offering: OfferingBlock | None = None
    devices: int = Field(ge=1)
    nodes: int | None = Field(default=None, ge=1)
    replicas: int = Field(default=1, ge=1)
    parallel: ParallelBlock
    precision: str
    batch: BatchBlock
    predicted: dict = {}
    training: TrainingBlock | None = None
    parts: list[dict] | None = None
    role: Literal["prefill", "decode"] | None = None
    mode: Literal["disaggregated"] | None = None
    roles: dict[str, list[dict]] | None = None


class LaunchRequest(_Read):
    workload: WorkloadBlock
    plan: PlanBlock


def request_of(result: dict, source: str) -> LaunchRequest:
    """The launch request in a solve result, or an EmitError naming the field and the fix."""
    if not isinstance(result, dict):
        raise EmitError(Problem("not a solve result (a JSON object)", file=source,
                                fix="pass the output of `planner solve SPEC --format json`"))
    if result.get("plan") is None:
        raise EmitError(Problem(f"the result has no plan (status {result.get('status', 'unknown')})", file=source,
                                path="plan", fix="emit from a result whose status is optimal or feasible"))
    if result.get("workload") is None:
        raise EmitError(Problem("the result does not say what was asked", file=source, path="workload",
                                fix="re-run `planner solve SPEC --format json` (results of older versions lack it)"))
    if result["workload"].get("kind") not in ("serving", "training"):
        raise EmitError(Problem(f"no launcher runs a {result['workload'].get('kind')} workload", file=source,
                                path="workload.kind", fix="emit from a serving or training result"))
    if result["plan"].get("parts") and not result["plan"].get("roles"):
        raise EmitError(Problem("the plan mixes device types; each part needs its own launch", file=source,
                                path="plan.parts", fix="solve without allow_mix to emit one configuration"))
    try:
        request = LaunchRequest.model_validate({"workload": result["workload"], "plan": result["plan"]})
        LLMShape.model_validate(request.workload.shape)  # the architecture every launcher writes out
    except (ValidationError, ValueError, TypeError) as exc:
        err = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": ("workload", "shape"), "msg": str(exc)}
        where = ".".join(str(p) for p in err["loc"])
        if isinstance(exc, ValidationError) and exc.title == "LLMShape":
            where = "workload.shape." + where
        raise EmitError(Problem(err["msg"].splitlines()[0], file=source, path=where,
                                fix="pass an unedited `planner solve --format json` result")) from None
    return request


def read_request(path: Path) -> LaunchRequest:
    from planner.yamlio import read_text

    text = read_text(path, EmitError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EmitError(Problem(f"not JSON: {exc.msg} at line {exc.lineno}", file=str(path),
                                fix="pass the output of `planner solve SPEC --format json`")) from None
    return request_of(data, str(path))
