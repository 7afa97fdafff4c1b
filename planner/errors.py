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
            text = f"{text} To fix: {self.fix}"
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


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' Did you mean `x`?' or '' — appended to unknown-name messages."""
    close = get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f" Did you mean `{close[0]}`?" if close else ""
