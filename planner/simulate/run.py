"""`planner simulate`: replay a serving configuration request by request and set it beside the closed form.

The configuration is either the one the user fixed (the `planner estimate` flags) or, with none, the plan
`planner solve` picks; each part of a plan is simulated at its share of the load. Both columns read the
same per-step cost, so where they differ it is queueing and batching, which is what the check is for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from planner.constraints import SLO_METRICS
from planner.errors import Problem, SpecError
from planner.evaluate import Evaluation, ResolvedWorkload, serving_profile, with_traffic
from planner.simulate import SimulationResult, simulate, simulate_pools
from planner.simulate.trace import Request, load_trace, poisson_requests

MAX_REQUESTS = 200_000
# Simulated figure each SLO field is judged on.
SIMULATED = {"ttft_p99_ms": ("ttft_ms", "p99"), "ttft_mean_ms": ("ttft_ms", "mean"), "tpot_ms": ("tpot_ms", "mean"),
             "tpot_p99_ms": ("tpot_ms", "p99"), "e2e_p99_ms": ("e2e_ms", "p99")}


@dataclass
class PartSimulation:
    evaluation: Evaluation
    replicas: int
    rate_per_s: float
    result: SimulationResult
    slo: list[dict]
    label: str | None = None  # a disaggregated plan's two pools, simulated together

    def as_dict(self) -> dict:
        m = self.evaluation.metrics
        closed = {"ttft_ms": {"mean": m.get("ttft_mean_ms"), "p50": m.get("ttft_p50_ms"), "p90": m.get("ttft_p90_ms"),
                              "p99": m.get("ttft_p99_ms")},
                  "tpot_ms": {"mean": m.get("tpot_ms"), "p99": m.get("tpot_p99_ms")},
                  "e2e_ms": {"mean": m.get("e2e_mean_ms"), "p99": m.get("e2e_p99_ms")},
                  "tokens_per_s": m.get("tokens_per_s")}
        return {"configuration": self.label or self.evaluation.candidate.label(), "replicas": self.replicas,
                "requests_per_s": round(self.rate_per_s, 6), "closed_form": _rounded(closed),
                "simulated": self.result.as_dict(), "slo": self.slo}


def _rounded(d):
    if isinstance(d, dict):
        return {k: _rounded(v) for k, v in d.items()}
    return None if d is None else round(d, 3)


def requests_for(work: ResolvedWorkload, rate: float, count: int, seed: int, lengths: str,
                 trace: Path | None) -> list[Request]:
    if trace is not None:
        return load_trace(trace)
    if not 1 <= count <= MAX_REQUESTS:
        raise SpecError(Problem(f"--requests {count} is outside 1..{MAX_REQUESTS:,}", fix="simulate fewer requests"))
    t = work.spec.workload.traffic
    return poisson_requests(rate, count, t.input_tokens, t.output_tokens, seed, lengths)


def slo_verdicts(work: ResolvedWorkload, evaluation: Evaluation, result: SimulationResult) -> list[dict]:
    """Each SLO the spec sets, judged on the closed form and on the simulation."""
    slo = work.spec.workload.slo
    out = []
    for unit, (field, _metric) in SLO_METRICS.items():
        limit = getattr(slo, field)
        if limit is None:
            continue
        stat, key = SIMULATED[field]
        simulated = getattr(getattr(result, stat), key)
        closed = evaluation.metrics.get(field)
        out.append({"id": unit, "limit_ms": limit, "closed_form_ms": None if closed is None else round(closed, 3),
                    "simulated_ms": round(simulated, 3), "closed_form_ok": closed is not None and closed <= limit,
                    "simulated_ok": simulated <= limit})
    return out


def simulate_parts(work: ResolvedWorkload, catalog, parts: list[tuple[Evaluation, float]], *, requests: int,
                   seed: int, lengths: str = "fixed", trace: Path | None = None) -> list[PartSimulation]:
    """Each part of a plan at its rate (requests/s); a disaggregated plan's prefill and decode pools together."""
    if work.kind != "serving":
        raise SpecError(Problem(f"simulation replays LLM serving; this spec is {work.kind}",
                                path="workload.kind", fix="simulate a serving spec"))
    pools = {role: [(ev, rate) for ev, rate in parts if ev.candidate.role == role] for role in ("prefill", "decode")}
    out = [_simulate_one(work, catalog, ev, rate, requests, seed, lengths, trace)
           for ev, rate in parts if ev.candidate.role == "both"]
    if pools["prefill"] or pools["decode"]:
        if len(pools["prefill"]) != 1 or len(pools["decode"]) != 1:
            raise SpecError(Problem("the simulator replays one prefill pool beside one decode pool; this plan mixes "
                                    f"{len(pools['prefill'])} and {len(pools['decode'])}",
                                    path="search.allow_mix", fix="simulate without allow_mix, or one part with --device"))
        out.append(_simulate_pools(work, catalog, pools["prefill"][0], pools["decode"][0], requests, seed, lengths,
                                   trace))
    return out


def _simulate_one(work, catalog, evaluation: Evaluation, rate: float, requests: int, seed: int, lengths: str,
                  trace: Path | None) -> PartSimulation:
    cand = evaluation.candidate
    profile = serving_profile(work, catalog, cand)
    reqs = requests_for(work, rate, requests, seed, lengths, trace)
    result = simulate(profile, reqs, replicas=cand.parallel.dp, seed=seed)
    return PartSimulation(evaluation, cand.parallel.dp, rate, result, slo_verdicts(work, evaluation, result))


def _simulate_pools(work, catalog, prefill: tuple[Evaluation, float], decode: tuple[Evaluation, float], requests: int,
                    seed: int, lengths: str, trace: Path | None) -> PartSimulation:
    (p_ev, rate), (d_ev, _) = prefill, decode
    # The prefill side runs as an engine whose requests end at their first token, with the launch's cap.
    traffic = work.spec.workload.traffic
    one_token = with_traffic(work, traffic.model_copy(update={"output_tokens": 1}))
    prefill_replica = serving_profile(one_token, catalog, replace(p_ev.candidate, role="both"))
    transfer_s = serving_profile(work, catalog, p_ev.candidate).transfer_s
    reqs = requests_for(work, rate, requests, seed, lengths, trace)
    result = simulate_pools(prefill_replica, transfer_s, serving_profile(work, catalog, d_ev.candidate), reqs,
                            p_ev.candidate.parallel.dp, d_ev.candidate.parallel.dp, seed=seed)
    label = f"prefill {p_ev.candidate.label()} + decode {d_ev.candidate.label()}"
    return PartSimulation(d_ev, d_ev.candidate.parallel.dp, rate, result, slo_verdicts(work, d_ev, result), label)

