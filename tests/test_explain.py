"""Explanations: specs whose answer is known, and properties every explanation must have."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.catalog.loader import load_catalogs
from planner.check import check_plan
from planner.evaluate import resolve_workload
from planner.explain import explain
from planner.explain.scenario import limit_items, with_value
from planner.solve import solve
from planner.spec import WorkloadSpec, load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def catalog():
    return load_catalogs()


def explained(spec: WorkloadSpec, catalog):
    work = resolve_workload(spec, catalog)
    result = solve(work, catalog)
    checks = check_plan(work, catalog, result.plan) if result.plan else []
    return work, result, explain(work, catalog, result, checks)


LEAVE_OUT = object()  # an override that removes the field (a spec may not list an empty search)


def serving(**over) -> WorkloadSpec:
    data = {
        "name": "known",
        "workload": {"kind": "serving", "model": "llama-3.1-8b",
                     "traffic": {"requests_per_s": 4, "input_tokens": 512, "output_tokens": 256},
                     "slo": {}},
        "search": {"devices": ["h100-sxm"], "precisions": ["bf16"], "providers": ["aws"], "pricing": ["on-demand"]},
        "limits": {"max_utilization": 1.0},
        "objective": "cost",
    }
    for path, value in over.items():
        node = data
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        if value is LEAVE_OUT:
            node.pop(keys[-1])
        else:
            node[keys[-1]] = value
    return WorkloadSpec.model_validate(data)


def test_only_tpot_binds(catalog):
    spec = serving(**{"workload.slo": {"tpot_ms": 7.0}, "workload.traffic.requests_per_s": 40})
    _, result, expl = explained(spec, catalog)
    assert result.status == "optimal"
    binding = [p.item.id for p in expl.limits if p.binding]
    assert binding == ["latency.tpot"]
    tpot = next(p for p in expl.limits if p.item.id == "latency.tpot")
    assert tpot.drop_saving > 0 and tpot.drop_change


def test_memory_rules_out_the_small_device(catalog):
    spec = serving(**{"workload.model": "llama-3.1-405b", "search.devices": ["l40s", "h200-sxm"],
                      "search.providers": LEAVE_OUT, "search.pricing": LEAVE_OUT})
    _, result, expl = explained(spec, catalog)
    assert result.plan.main.evaluation.candidate.device == "h200-sxm"
    l40s = next(a for a in expl.alternatives if a.name == "l40s")
    assert l40s.objective is None and l40s.ruled_out_by == ["memory.fits_device"]
    assert not [p for p in expl.limits if p.binding]  # no user limit binds: memory decided


def test_impossible_example_names_exactly_its_two_limit_conflict(catalog):
    spec = load_spec(EXAMPLES / "impossible-tiny-budget.yaml")
    _, result, expl = explained(spec, catalog)
    assert result.status == "infeasible"
    conflict = expl.conflict
    assert {i.id for i in conflict.items} == {"latency.ttft_p99", "power.site_cap"}
    assert conflict.verified
    for relax in conflict.relaxations:
        assert relax.to is not None and relax.to > relax.item.bound
        # the reported value really makes the spec feasible
        fixed = resolve_workload(with_value(spec, relax.item, relax.to), catalog)
        assert solve(fixed, catalog).plan is not None


def test_a_feasibility_question_takes_any_plan_within_the_limits_and_reuses_a_full_answer(catalog):
    from planner.check import violations
    from planner.explain.question import Question
    from planner.explain.scenario import ScenarioRunner
    from planner.explain.solve_questions import SolveQuestions
    from planner.solve import SolverSettings

    work = resolve_workload(load_spec(EXAMPLES / "llama3-70b-chat.yaml"), catalog)
    result = solve(work, catalog)
    runner = ScenarioRunner(work, catalog, result.table, result.compiled, SolverSettings())
    model = SolveQuestions(runner, result.plan, check_plan(work, catalog, result.plan))
    quick = model.ask(Question(dropped=frozenset({"latency.tpot"}), feasibility_only=True))
    assert quick.feasible
    assert [c.id for c in violations(check_plan(work, catalog, quick.plan)) if c.id != "latency.tpot"] == []
    full = model.ask(Question(dropped=frozenset({"latency.tpot"})))
    assert full.objective <= quick.objective and model.solves == 2
    # A full answer already known answers the feasibility question without another solve.
    model.ask(Question(dropped=frozenset({"latency.ttft_p99"})))
    assert model.ask(Question(dropped=frozenset({"latency.ttft_p99"}), feasibility_only=True)).feasible
    assert model.solves == 3


@pytest.mark.parametrize("name", ["llama3-70b-chat", "llama3-8b-pretrain", "onprem-power-capped",
                                  "qwen3-32b-h200-peer"])
def test_binding_limits_really_lower_the_objective_and_why_not_matches(name, catalog):
    spec = load_spec(EXAMPLES / f"{name}.yaml")
    work, result, expl = explained(spec, catalog)
    base = result.objective_value
    items = {i.id: i for i in limit_items(spec, work.kind)}
    for price in expl.limits:
        if price.binding:
            # an independent solve from scratch with that limit removed from the spec
            dropped = with_value(spec, items[price.item.id], None)
            again = solve(resolve_workload(dropped, catalog), catalog)
            assert again.objective_value < base
            assert again.objective_value == pytest.approx(price.drop_objective, rel=1e-9)
    for alt in expl.alternatives:
        if alt.kind != "device":
            continue
        restricted = spec.model_copy(update={"search": spec.search.model_copy(update={"devices": [alt.name]})})
        again = solve(resolve_workload(restricted, catalog), catalog)
        if alt.objective is None:
            assert again.plan is None
        else:
            assert again.objective_value == pytest.approx(alt.objective, rel=1e-9)
            assert again.objective_value >= base - 1e-9


def test_break_even_sentence_is_consistent(catalog):
    spec = load_spec(EXAMPLES / "llama3-70b-chat.yaml")
    _, result, expl = explained(spec, catalog)
    be = expl.break_even
    assert be is not None and be.price_at_swap > be.price_now
    assert be.device == result.plan.main.evaluation.candidate.device


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


INFEASIBLE_DRAWS: list[int] = []


def _without(spec, catalog, kind, keep: set[str]):
    """The spec with every user limit outside `keep` removed (the utilisation cap goes to 1)."""
    for item in limit_items(spec, kind):
        if item.id not in keep:
            spec = with_value(spec, item, None)
    return spec


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(rps=st.floats(0.5, 30), ttft=st.floats(50, 400), tpot=st.floats(4, 40), power=st.floats(0.5, 4),
       max_devices=st.integers(1, 8), device=st.sampled_from(["h100-sxm", "l40s", "mi300x", "a100-80gb"]))
def test_every_reported_conflict_is_minimal(catalog, rps, ttft, tpot, power, max_devices, device):
    spec = serving(**{"workload.model": "llama-3.1-70b", "workload.traffic.requests_per_s": rps,
                      "workload.slo": {"ttft_p99_ms": ttft, "tpot_ms": tpot}, "search.devices": [device],
                      "search.providers": LEAVE_OUT, "search.pricing": LEAVE_OUT, "search.min_price_confidence": "low",
                      "limits": {"power_kw": power, "max_devices": max_devices}})
    work, result, expl = explained(spec, catalog)
    if result.status != "infeasible" or expl.conflict.physical:
        return  # the ranges are tight so that most draws are infeasible; a feasible draw has nothing to check
    INFEASIBLE_DRAWS.append(1)
    core = {i.id for i in expl.conflict.items}
    assert expl.conflict.verified and core
    # independently, from specs rebuilt without the other limits
    assert solve(resolve_workload(_without(spec, catalog, work.kind, core), catalog), catalog).plan is None
    for item in core:
        assert solve(resolve_workload(_without(spec, catalog, work.kind, core - {item}), catalog), catalog).plan


def test_conflict_property_saw_infeasible_specs():
    # runs after the property test in file order: it must have exercised real conflicts
    assert len(INFEASIBLE_DRAWS) >= 3


def test_why_not_names_the_catalog_gap_not_the_limit_it_trips(catalog):
    spec = load_spec(EXAMPLES / "llama3-405b-pretrain.yaml")
    spec = spec.model_copy(update={"search": spec.search.model_copy(update={
        "devices": ["b200", "mi300x"], "pricing": [], "min_price_confidence": "low"})})
    _, _, expl = explained(spec, catalog)
    mi300x = next(a for a in expl.alternatives if a.name == "mi300x")
    # mi300x-8 has no scale-out network in the catalog: one node, which cannot hold a 405B training run.
    assert "no scale-out network for mi300x-8" in mi300x.reason and "at most 8 devices" in mi300x.reason
    floor = spec.model_copy(update={"search": spec.search.model_copy(update={"min_price_confidence": "medium"})})
    _, _, expl = explained(floor, catalog)
    mi300x = next(a for a in expl.alternatives if a.name == "mi300x")
    assert "left out by search.min_price_confidence (medium)" in mi300x.reason
