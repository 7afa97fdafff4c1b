"""The what-if protocol every explained model answers: solve, fleet and tier.

A model is asked a `Question` (some of the user's limits dropped, some re-bounded, only some rows or
options allowed, or one model parameter such as a price set to another value) and gives an `Answer`
(status, objective, plan). The explainer (`planner.explain`) asks only through this protocol, so the
binding limits, why-not, minimal conflicts and flip points are searched once for every kind of plan; each
model keeps its own compiled formulation and says what its plans mean (`describe`, `change`, `usage`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Limit:
    """One user limit the explainer can name: a constraint unit on the plan, a workload, the site or a link."""

    id: str  # e.g. latency.ttft_p99, inventory.per_device[h100-sxm], tier.latency[detector], chat.yaml:budget
    unit_id: str  # the named constraint unit it instantiates
    spec_path: str  # the field that sets it, so a user (or a script) can change exactly that
    bound: float
    unit: str  # display unit
    workload: str | None = None
    link: int | None = None
    integer: bool = False  # counts: relaxed by whole steps
    ceiling: float | None = None  # the bound cannot be relaxed past this (a utilisation of 1)
    lower: bool = False  # a minimum (accuracy): relaxing lowers it


@dataclass(frozen=True)
class Question:
    dropped: frozenset[str] = frozenset()
    bounds: tuple[tuple[str, float], ...] = ()  # limit id -> another bound
    allowed: frozenset[Hashable] | None = None  # rows or options allowed (None: all)
    parameter: tuple[str, float] | None = None  # a model parameter (see `Parameter`) set to a value
    # Only whether a plan exists is read (conflicts, nearest relaxations, what rules a choice out): a model
    # may answer with the first plan it finds, whose objective is then not the least.
    feasibility_only: bool = False


@dataclass
class Answer:
    status: str
    objective: float | None
    plan: Any = None

    @property
    def feasible(self) -> bool:
        return self.objective is not None and self.plan is not None


@dataclass(frozen=True)
class Choice:
    """Something the plan did not pick (a device, a provider, a tier, renting instead of buying), as the rows
    that would pick it; `unavailable` says why no row exists at all, `unavailable_by` which units caused it."""

    kind: str
    name: str
    allowed: frozenset[Hashable]
    workload: str | None = None
    unavailable: str | None = None
    unavailable_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Parameter:
    """A figure the plan's choice depends on (a device's price, the number of sites, a link's price): the
    explainer finds the nearest value, toward each end, at which the model's `decision` changes."""

    name: str  # spec path or description
    current: float
    ends: tuple[float, ...]
    unit: str
    integer: bool = False
    steps: int = 12
    expected: float | None = None  # where the model expects the flip (a linear cost ratio): checked first
    digits: int | None = None  # the flip point is reported rounded to this many decimals


class Questions:
    """What every model shares: answers cached by question, counted, and asked two at a time (CP-SAT releases
    the GIL while it searches; the 2-core machines this runs on finish two single-threaded solves in about
    the time of one). A model implements `answer` and the hooks below."""

    objective: str = "cost"
    objective_unit: str = "usd_per_hour"
    bisection_steps = 10  # for the nearest feasible value of a limit
    round_nearest = True  # report that value rounded up to three significant digits
    tight_share = 0.02  # slack within this share of the bound counts as tight

    def __init__(self):
        self.solves = 0
        self._cache: dict = {}
        self._lock = threading.Lock()

    # --- the protocol ---
    def limits(self) -> list[Limit]:
        raise NotImplementedError

    def answer(self, question: Question) -> Answer:
        raise NotImplementedError

    def ask(self, question: Question) -> Answer:
        with self._lock:
            if question in self._cache:
                return self._cache[question]
            if question.feasibility_only:
                full = self._cache.get(replace(question, feasibility_only=False))
                if full is not None:
                    return full
            self.solves += 1
        out = self.answer(question)
        with self._lock:
            self._cache[question] = out
        return out

    def ask_many(self, questions: list[Question]) -> list[Answer]:
        if len(questions) <= 1:
            return [self.ask(q) for q in questions]
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(self.ask, questions))

    # --- what plans mean; defaults a model may refine ---
    def usage(self, limit: Limit, plan) -> float | None:
        """What `plan` uses of a limit (None: the model cannot say)."""
        return None

    def relaxed(self, limit: Limit) -> float | None:
        """One step looser: +10%; counts grow by at least one; a ceiling holds; a minimum goes down."""
        if limit.ceiling is not None and limit.bound >= limit.ceiling:
            return None
        if limit.integer:
            return float(max(limit.bound + 1, math.ceil(limit.bound * 1.1)))
        if limit.lower:
            return max(0.0, limit.bound - 0.01)
        value = limit.bound * 1.1
        return min(limit.ceiling, value) if limit.ceiling is not None else value

    def choices(self, plan) -> list[Choice]:
        return []

    def why_worse(self, chosen, other, choice: Choice) -> str:
        return self.describe(other, choice)

    def describe(self, plan, choice: Choice | None = None) -> str:
        """The plan in a few words (for a choice: the part of it that makes that choice)."""
        return ""

    def change(self, before, after) -> str | None:
        """How `after` differs from `before`, in a few words."""
        return None

    unrunnable = "nothing can run it even without limits"

    def note(self, choice: Choice) -> str:
        """What to add to a choice's ruling limits (a catalog gap behind them)."""
        return ""

    def parameters(self, plan, alternatives) -> list[Parameter]:
        return []

    def decision(self, plan) -> Hashable:
        """What a flip point watches: the part of the plan a parameter can change."""
        return None

    def break_even(self, flips: list) -> object | None:
        """A model's own summary of its flips (a solve's price break-even), for its JSON."""
        return None

    def flip_sentence(self, flip) -> str:
        return f"{flip.parameter.name} = {flip.at:,.4g} (now {flip.parameter.current:,.4g}): {flip.changes()}"

    def seed(self, ids: list[str], allowed) -> list[str] | None:
        """A set of limits likely to conflict (an assumption core), to shrink from; None: start from all."""
        return None

    def physical(self) -> str:
        """Why nothing runs even with every user limit dropped."""
        return "no configuration in the search space"


@dataclass
class Flip:
    parameter: Parameter
    at: float | None  # the nearest value at which the decision changes (None: not within the range)
    holds_until: float | None  # the last value found with the decision unchanged
    now: Any
    then: Any = None
    sentence: str | None = None  # the model's words for it

    def changes(self) -> str:
        if isinstance(self.now, dict) and isinstance(self.then, dict):
            if not self.then:
                return "feasible -> infeasible"
            if not self.now:
                return "infeasible -> feasible"
            return ", ".join(f"{w} {t} -> {self.then[w]}" for w, t in self.now.items() if self.then.get(w) != t)
        return f"{self.now} -> {self.then}"

    @property
    def reported_at(self) -> float | None:
        """The flip point as reports give it (rounded to the parameter's digits)."""
        if self.at is None or self.parameter.digits is None:
            return self.at
        return round(self.at, self.parameter.digits)

    def as_dict(self) -> dict:
        return {"parameter": self.parameter.name, "current": self.parameter.current, "flips_at": self.reported_at,
                "holds_until": self.holds_until, "unit": self.parameter.unit, "now": self.now, "then": self.then,
                "sentence": self.sentence}
