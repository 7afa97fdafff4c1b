"""Fit the device-family and engine parameters a user's runs inform (bounded least squares on the log of
predicted over measured, one value per family or engine, never per run), and say how well the fit
transfers: the error before, after, and leave-one-out (refit without each run, predict it).

Levenberg-Marquardt on the log residuals inside each parameter's plausible range: the parameters are few
(at most five per family or engine) and each prediction is a closed form of a millisecond, so finite
differences are cheap and no SciPy dependency is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from planner.calibrate.overlay import KNOB_BY_NAME, KNOBS, Knob, with_params
from planner.calibrate.runs import Run, RunsFile
from planner.catalog.loader import Catalog
from planner.errors import CalibrationError, PlannerError, Problem
from planner.spec import WorkloadSpec, load_spec

MAX_ITERATIONS = 40
STEP = 1e-4  # finite-difference step, as a share of a parameter's plausible range

Param = tuple[str, str, str]  # (scope, family or engine id, parameter)


@dataclass
class Case:
    index: int
    run: Run
    spec: WorkloadSpec
    spec_file: str
    kind: str
    family: str
    engine: str | None
    precision: str

    @property
    def label(self) -> str:
        return self.run.name or f"runs[{self.index}]"


@dataclass
class Fit:
    params: dict[Param, float]
    cases: list[Case]
    before: list[float]  # signed relative error of each (case, measure), shipped catalog
    after: list[float]
    leave_one_out: list[float]
    rows: list[dict] = field(default_factory=list)


def load_cases(runs: RunsFile, runs_path: Path, catalog: Catalog) -> list[Case]:
    cases, problems = [], []
    for i, run in enumerate(runs.runs):
        where = f"runs[{i}]"
        spec_path = runs_path.parent / run.spec
        spec = load_spec(spec_path)
        kind = spec.workload.kind
        device = catalog.accelerators.get(run.layout.device)
        if device is None:
            problems.append(Problem(f"unknown device `{run.layout.device}`", file=str(runs_path),
                                    path=f"{where}.layout.device", fix="see `planner catalog list devices`"))
            continue
        allowed = ("step_time_s", "tokens_per_s") if kind == "training" else ("ttft_mean_ms", "tpot_mean_ms")
        wrong = [m for m in run.measured.figures() if m not in allowed]
        if kind not in ("training", "serving") or wrong:
            problems.append(Problem(f"a {kind} run cannot be calibrated on {', '.join(wrong) or kind}",
                                    file=str(runs_path), path=f"{where}.measured",
                                    fix=f"give {' or '.join(allowed)} for a {kind} run"))
            continue
        precision = run.layout.precision or (spec.search.precisions[0] if spec.search.precisions else "bf16")
        engine = catalog.engine(spec.workload.engine).id if kind == "serving" else None
        cases.append(Case(i, run, spec, str(spec_path), kind, device.family, engine, precision))
    if problems:
        raise CalibrationError(problems)
    return cases


def predict(case: Case, catalog: Catalog) -> dict[str, float]:
    from planner.estimate import estimate_configuration

    lay = case.run.layout
    dp = lay.dp if lay.dp is not None else 1
    ev, _ = estimate_configuration(case.spec, catalog, spec_file=case.spec_file, device=lay.device, tp=lay.tp,
                                   pp=lay.pp, dp=dp, ep=lay.ep, cp=lay.cp, precision=case.precision,
                                   micro_batch=lay.micro_batch, zero_stage=lay.zero_stage,
                                   shard_group=lay.shard_group, recompute=lay.recompute,
                                   virtual_stages=lay.virtual_stages, system_id=lay.system)
    return {m: ev.metrics.get(m) for m in case.run.measured.figures()}


def informs(knob: Knob, case: Case, measure: str) -> bool:
    return (knob.kind == case.kind and measure in knob.measures
            and (not knob.precisions or case.precision in knob.precisions))


def active_params(cases: list[Case]) -> list[Param]:
    out = set()
    for case in cases:
        for measure in case.run.measured.figures():
            for knob in KNOBS:
                if informs(knob, case, measure):
                    out.add((knob.scope, case.family if knob.scope == "family" else case.engine, knob.name))
    return sorted(out)


def signed_errors(cases: list[Case], catalog: Catalog) -> list[float]:
    errors = []
    for case in cases:
        try:
            predicted = predict(case, catalog)
        except PlannerError as exc:
            raise CalibrationError(Problem(f"{case.label}: {exc.problems[0].message}", file=case.spec_file,
                                           fix="give a layout `planner estimate` accepts")) from None
        for measure, measured in case.run.measured.figures().items():
            value = predicted[measure]
            errors.append(math.inf if value is None or not math.isfinite(value) else value / measured - 1.0)
    return errors


def _start(catalog: Catalog, param: Param) -> float:
    scope, target, name = param
    holder = catalog.families[target] if scope == "family" else catalog.engines[target]
    current = getattr(holder, name, None)
    knob = KNOB_BY_NAME[(scope, name)]
    value = current.value if current is not None else (knob.low + knob.high) / 2
    return min(max(value, knob.low), knob.high)


def _residuals(cases: list[Case], catalog: Catalog, params: dict[Param, float], origin: str) -> list[float]:
    # log(predicted / measured): a factor too fast and a factor too slow weigh the same.
    return [math.log1p(e) if e > -1 and math.isfinite(e) else 1e3
            for e in signed_errors(cases, with_params(catalog, params, origin))]


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting for the few-parameter normal equations."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-300:
            continue
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in reversed(range(n)):
        if abs(m[r][r]) >= 1e-300:
            x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def fit_params(cases: list[Case], catalog: Catalog, origin: str,
               start: dict[Param, float] | None = None) -> dict[Param, float]:
    """Bounded Levenberg-Marquardt on the log residuals, each parameter scaled to its plausible range and
    projected back into it; the Jacobian by forward differences (one closed-form pass per parameter)."""
    params = active_params(cases)
    knobs = [KNOB_BY_NAME[(p[0], p[2])] for p in params]
    x = [((start or {}).get(p, _start(catalog, p)) - k.low) / (k.high - k.low) for p, k in zip(params, knobs)]

    def values(z: list[float]) -> dict[Param, float]:
        return {p: k.low + min(max(zi, 0.0), 1.0) * (k.high - k.low) for p, k, zi in zip(params, knobs, z)}

    r = _residuals(cases, catalog, values(x), origin)
    cost = sum(v * v for v in r)
    damping = 1e-3
    for _ in range(MAX_ITERATIONS):
        jac = []
        for i in range(len(x)):
            h = STEP if x[i] + STEP <= 1.0 else -STEP
            shifted = x[:i] + [x[i] + h] + x[i + 1:]
            jac.append([(a - b) / h for a, b in zip(_residuals(cases, catalog, values(shifted), origin), r)])
        jtj = [[sum(a * b for a, b in zip(ji, jk)) for jk in jac] for ji in jac]
        jtr = [sum(a * b for a, b in zip(ji, r)) for ji in jac]
        improved = False
        while damping < 1e8:
            lhs = [[jtj[i][k] + (damping * max(jtj[i][i], 1e-12) if i == k else 0.0) for k in range(len(x))]
                   for i in range(len(x))]
            trial = [min(max(xi + di, 0.0), 1.0) for xi, di in zip(x, _solve(lhs, [-v for v in jtr]))]
            r_trial = _residuals(cases, catalog, values(trial), origin)
            c_trial = sum(v * v for v in r_trial)
            if c_trial < cost:
                gain = cost - c_trial
                x, r, cost, damping, improved = trial, r_trial, c_trial, max(damping / 3, 1e-9), True
                break
            damping *= 4
        if not improved or gain <= 1e-12 * max(cost, 1e-12):
            break
    return values(x)


def calibrate(runs: RunsFile, runs_path: Path, catalog: Catalog) -> Fit:
    cases = load_cases(runs, runs_path, catalog)
    origin = runs_path.name
    params = fit_params(cases, catalog, origin)
    before = signed_errors(cases, catalog)
    after = signed_errors(cases, with_params(catalog, params, origin))
    loo: list[float] = []
    for i, case in enumerate(cases):
        others = cases[:i] + cases[i + 1:]
        held = fit_params(others, catalog, origin, start=params) if others else {}
        # A parameter no other run informs stays at the shipped value: the held-out run is then predicted
        # as a new user's would be.
        loo += signed_errors([case], with_params(catalog, held, origin))
    rows, k = [], 0
    for case in cases:
        for measure, measured in case.run.measured.figures().items():
            rows.append({"run": case.label, "measure": measure, "measured": measured,
                         "before_pct": 100 * before[k], "after_pct": 100 * after[k],
                         "leave_one_out_pct": 100 * loo[k]})
            k += 1
    return Fit(params, cases, before, after, loo, rows)


def summary(errors: list[float]) -> dict:
    finite = sorted(abs(e) for e in errors if math.isfinite(e))
    signed = sorted(e for e in errors if math.isfinite(e))
    if not finite:
        return {"figures": 0, "median_abs_pct": 0.0, "p90_abs_pct": 0.0, "bias_pct": 0.0}

    def quantile(xs: list[float], q: float) -> float:
        pos = q * (len(xs) - 1)
        lo = int(pos)
        return xs[lo] + (xs[min(lo + 1, len(xs) - 1)] - xs[lo]) * (pos - lo)

    return {"figures": len(errors), "median_abs_pct": round(100 * quantile(finite, 0.5), 2),
            "p90_abs_pct": round(100 * quantile(finite, 0.9), 2), "bias_pct": round(100 * quantile(signed, 0.5), 2)}


def overlay_dict(fit: Fit, origin: str) -> dict:
    families: dict[str, dict[str, float]] = {}
    engines: dict[str, dict[str, float]] = {}
    for (scope, target, name), value in sorted(fit.params.items()):
        (families if scope == "family" else engines).setdefault(target, {})[name] = round(value, 4)
    return {"schema_version": 1, "kind": "planner-calibration", "fitted_from": origin, "families": families,
            "engines": engines, "before": summary(fit.before), "after": summary(fit.after),
            "leave_one_out": summary(fit.leave_one_out)}
