"""How each prediction was obtained and how far it is expected to be off: `estimated` by the analytical
model (the band is the leave-one-source-out error of the validation tables, catalogs/accuracy.yaml) or
`calibrated` on the user's runs (the band is that calibration's leave-one-out error)."""

from __future__ import annotations

from planner.catalog.loader import Catalog

_MEMO: dict[tuple, dict] = {}


def provenance(catalog: Catalog, kind: str, family_id: str, engine_id: str | None) -> dict:
    """`provenance`, `expected_error_pct` (p90 of |error| per metric) and `expected_error_basis`."""
    # The calibration note is hashable and kept by value, so a later overlay never reads another's entry.
    key = (id(catalog.accuracy), catalog.calibration, kind, family_id, engine_id)
    hit = _MEMO.get(key)
    if hit is not None:
        return hit
    cal = catalog.calibration
    figures = {metric: f for (k, metric), f in catalog.accuracy.items() if k == kind}
    if cal is not None and (family_id in cal.families or (engine_id is not None and engine_id in cal.engines)):
        out = {"provenance": "calibrated",
               "expected_error_pct": ({m: cal.leave_one_out_p90_pct for m in figures}
                                      if cal.leave_one_out_p90_pct is not None else {}),
               "expected_error_basis": f"p90 of |error|, leave one run out, {cal.figures} measured figures ({cal.file})"}
    elif figures:
        out = {"provenance": "estimated",
               "expected_error_pct": {m: f.p90_abs_pct for m, f in sorted(figures.items())},
               "expected_error_basis": "p90 of |error| on published runs, each source left out of the fit "
                                       f"({next(iter(figures.values())).basis})"}
    else:
        out = {"provenance": "estimated", "expected_error_pct": {},
               "expected_error_basis": "no validation figure for this kind of prediction"}
    _MEMO[key] = out
    return out
