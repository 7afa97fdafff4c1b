"""One exception family for the whole pipeline.

Every user-facing failure is a `PlannerError` carrying one or more `Problem`s. A problem names the file,
the YAML path inside it and a fix, so the CLI can print one line per problem and exit non-zero without a
traceback (tracebacks only with --debug).
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    message: str
    file: str | None = None
    path: str | None = None
    fix: str | None = None
    line: int | None = None

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.path:
            where = f"{where}: {self.path}" if where else self.path
        text = f"{where}: {self.message}" if where else self.message
        if self.fix:
            # One sentence each, so the fix never runs into the message ("...workload To fix").
            text = f"{_sentence(text)} To fix: {_sentence(self.fix)}"
        return text


class PlannerError(Exception):
    """Base class; `problems` holds every issue found, so users fix them all in one pass."""

    exit_code = 2

    def __init__(self, problems: Problem | str | Iterable[Problem]):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(p.render() for p in self.problems))


class SpecError(PlannerError):
    """The user's workload spec (or a profile it includes) is malformed or inconsistent."""


class CatalogError(PlannerError):
    """A catalog file is malformed, unsourced or refers to something that does not exist."""


class EstimateError(PlannerError):
    """A configuration cannot be evaluated (unsupported precision, a needed figure is not in the catalog)."""


class SolveError(PlannerError):
    """The optimisation model could not be built or run."""


class CalibrationError(PlannerError):
    """A runs file or a calibration overlay is malformed or names what the catalogs do not have."""


class SweepError(PlannerError):
    """A sweep file, its axes or its results folder cannot be used."""


class EmitError(PlannerError):
    """A launch configuration cannot be written for this result (no plan, an engine no launcher runs)."""


def _sentence(text: str) -> str:
    text = text.rstrip()
    return text if text.endswith((".", "?", "!", ":")) else text + "."


def name_matches(name: str, choices: Iterable[str]) -> list[str]:
    """The ids a typed name most likely means, best first: ids it is a prefix of (`h100` -> h100-sxm,
    h100-pcie, h100-nvl; case and a SkyPilot-style `:8` count ignored), else the closest spelling."""
    typed = name.split(":")[0].strip().lower()
    ordered = sorted(choices)
    prefixed = [c for c in ordered if c.lower().startswith(typed)] if typed else []
    if prefixed:
        return prefixed
    return get_close_matches(typed, ordered, n=1, cutoff=0.6)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' Did you mean `x`?' (or `x`, `y` or `z`) or '' — appended to unknown-name messages."""
    close = name_matches(name, choices)
    if not close:
        return ""
    if len(close) == 1:
        return f" Did you mean `{close[0]}`?"
    shown = [f"`{c}`" for c in close[:5]]
    return f" Did you mean {', '.join(shown[:-1])} or {shown[-1]}?"
