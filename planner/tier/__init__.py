"""Edge-versus-cloud tiering (`planner tier`): spec -> options -> CP-SAT -> plan -> check -> explanation."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from planner.catalog.loader import Catalog
from planner.explain import Explanation, explain_plan
from planner.explain.question import Limit
from planner.tier.check import TierCheck, check_tier_plan
from planner.tier.model import TierPlan, solve_tier
from planner.tier.options import TierTable, enumerate_options
from planner.tier.questions import TierQuestions
from planner.tier.spec import TierSpec, load_tier_spec
from planner.tier.units import limit_items


@dataclass
class TierResult:
    spec: TierSpec
    table: TierTable
    items: list[Limit]
    plan: TierPlan
    checks: list[TierCheck]
    check_problems: list[str]
    explanation: Explanation | None
    seconds: float


def plan_tier(spec: TierSpec, catalog: Catalog, file: str | None = None, explain: bool = True) -> TierResult:
    started = time.perf_counter()
    cache: dict = {}
    table = enumerate_options(spec, catalog, file, cache)
    items = limit_items(spec)
    plan = solve_tier(spec, table, items)
    checks, problems = check_tier_plan(spec, catalog, plan) if plan.options else ([], [])
    explanation = None
    if explain:
        found = plan if plan.value is not None else None
        explanation = explain_plan(TierQuestions(spec, catalog, table, items, cache), found, plan.value, found is None)
    return TierResult(spec, table, items, plan, checks, problems, explanation, time.perf_counter() - started)


def plan_tier_file(path: Path | str, catalog: Catalog, explain: bool = True) -> TierResult:
    return plan_tier(load_tier_spec(path), catalog, str(path), explain)


__all__ = ["TierResult", "plan_tier", "plan_tier_file", "load_tier_spec"]
