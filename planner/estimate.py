"""`planner estimate`: evaluate one configuration the user fixed, filling only what they left open."""

from __future__ import annotations

import math

from planner.catalog.loader import Catalog
from planner.constraints import ConstraintCheck, check
from planner.errors import EstimateError, Problem
from planner.evaluate import (
    Candidate,
    Evaluation,
    choose_system_and_offering,
    evaluate,
    resolve_workload,
    serving_engine,
    structural_issues,
)
from planner.perf.types import Parallel
from planner.spec import WorkloadSpec

MAX_AUTO_REPLICAS = 100_000


def estimate_configuration(spec: WorkloadSpec, catalog: Catalog, *, spec_file: str | None, device: str, tp: int = 1,
                           pp: int = 1, dp: int | None = None, ep: int = 1, cp: int = 1, attention_dp: bool = False,
                           role: str = "both",
                           precision: str | None = None,
                           micro_batch: int | None = None, zero_stage: int | None = None,
                           shard_group: int | None = None, recompute: str = "selective",
                           virtual_stages: int = 1, system_id: str | None = None, provider: str | None = None,
                           region: str | None = None,
                           pricing: str | None = None) -> tuple[Evaluation, list[ConstraintCheck]]:
    work = resolve_workload(spec, catalog, spec_file)
    catalog.accelerator(device)
    precision = precision or (spec.search.precisions[0] if spec.search.precisions else "bf16")
    kind = spec.workload.kind
    if micro_batch is None and kind == "serving":
        # The engine's own default cap on running sequences, as a launch without the flag would run.
        micro_batch = serving_engine(spec.workload, catalog, catalog.accelerators[device], tp * pp).max_num_seqs
    elif micro_batch is None:
        micro_batch = 1
    if role != "both" and kind != "serving":
        raise EstimateError(Problem(f"--role {role} is a pool of disaggregated LLM serving; this spec is {kind}",
                                    fix="drop --role"))
    if kind != "training" and cp > 1:
        raise EstimateError(Problem("--cp applies to training only (serving splits sequences with --tp)",
                                    fix="drop --cp"))
    if zero_stage is None:
        zero_stage = (catalog.framework(getattr(spec.workload, "framework", None), catalog.accelerators[device]).zero_stage
                      if kind == "training" else 1)

    def candidate(replicas: int) -> Candidate:
        par = Parallel(tp=tp, pp=pp, dp=replicas, ep=ep, cp=cp, attention_dp=attention_dp, micro_batch=micro_batch,
                       zero_stage=zero_stage,
                       shard_group=shard_group or 0, recompute=recompute, virtual_stages=virtual_stages)
        def can_run(system) -> bool:
            return not structural_issues(work, catalog, Candidate(device, system.id, precision, par, role=role))

        system, offering = choose_system_and_offering(catalog, spec, device, par.devices, tp, system_id,
                                                      provider, region, pricing, can_run)
        return Candidate(device=device, system=system.id, precision=precision, parallel=par, offering=offering,
                         role=role)

    if dp is not None or kind == "training":
        ev = evaluate(work, catalog, candidate(dp or 1))
    else:
        ev = _fewest_replicas_that_keep_up(work, catalog, candidate)
    return ev, [c for c in check(spec, ev) if _pool_answers(role, c.id)]


def _pool_answers(role: str, unit_id: str) -> bool:
    """A pool alone answers the limits on its side: TPOT on the decode side, TTFT and end to end on the prefill
    side (its own share; the request adds the other pool's)."""
    if role == "prefill":
        return not unit_id.startswith("latency.tpot")
    if role == "decode":
        return not unit_id.startswith(("latency.ttft", "latency.e2e"))
    return True


def _fewest_replicas_that_keep_up(work, catalog, candidate) -> Evaluation:
    """Utilisation falls as 1/replicas, so one evaluation gives the answer; verify and step up if needed."""
    first = evaluate(work, catalog, candidate(1))
    rho = first.prediction.utilization
    if rho is None or rho < 1.0 or not math.isfinite(rho):
        return first  # an infinite load share means no replica runs at all (nothing fits): more cannot help
    replicas = max(1, int(rho) + 1)
    while replicas <= MAX_AUTO_REPLICAS:
        ev = evaluate(work, catalog, candidate(replicas))
        if (ev.prediction.utilization or 0.0) < 1.0:
            return ev
        replicas += max(1, replicas // 10)
    raise EstimateError(Problem(f"no replica count up to {MAX_AUTO_REPLICAS} keeps up with the load",
                                fix="lower workload.traffic.requests_per_s or pick a faster device"))
