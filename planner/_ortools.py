"""CP-SAT, imported without pandas.

`ortools.sat.python.cp_model` imports pandas (about 0.2 s, a quarter of a whole `planner solve`) only to
offer its `*_series` helpers and `CpSolver.values()`, which the planner never calls. A placeholder module
stands in for pandas while cp_model is imported and is removed straight after, so any later
`import pandas` (user code, plotting) gets the real package. If pandas is already imported it is used.
"""

from __future__ import annotations

import sys
import types


def _import_cp_model():
    if "pandas" in sys.modules:
        from ortools.sat.python import cp_model

        return cp_model
    placeholder = types.ModuleType("pandas")
    placeholder.Index = type("Index", (), {})
    placeholder.Series = type("Series", (), {})
    sys.modules["pandas"] = placeholder
    try:
        from ortools.sat.python import cp_model
    finally:
        if sys.modules.get("pandas") is placeholder:
            del sys.modules["pandas"]
    return cp_model


cp_model = _import_cp_model()

__all__ = ["cp_model"]
