"""Break-even: the price per device-hour at which the chosen device and the runner-up on another device
swap places, found by bisection on a price multiplier (each step a re-solve with the chosen device's
offerings rescaled)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from planner.compile import compile_model
from planner.explain.scenario import ScenarioRunner
from planner.solve import solve_compiled

STEPS = 12


@dataclass
class BreakEven:
    device: str
    runner_up: str
    price_now: float  # USD per device-hour of the chosen offering
    price_at_swap: float

    def as_dict(self) -> dict:
        return {"device": self.device, "runner_up": self.runner_up, "usd_per_device_hour_now": self.price_now,
                "usd_per_device_hour_at_swap": self.price_at_swap}

    def sentence(self) -> str:
        return (f"{self.device} stays best while its price is at most ${self.price_at_swap:.2f} per device-hour "
                f"(now ${self.price_now:.2f}); above that {self.runner_up} wins")


def _scaled(table, device: str, factor: float):
    if table.kind == "training":
        rows = []
        for r in table.training_rows:
            if r.candidate.device == device and r.candidate.offering is not None:
                m = dict(r.evaluation.metrics)
                for key in ("usd_per_hour", "usd_per_job"):
                    if m.get(key) is not None:
                        m[key] *= factor
                r = replace(r, evaluation=replace(r.evaluation, metrics=m))
            rows.append(r)
        return replace(table, training_rows=rows)
    rows = [replace(r, usd_per_unit_hour=r.usd_per_unit_hour * factor)
            if r.candidate.device == device and r.usd_per_unit_hour is not None else r for r in table.replica_rows]
    return replace(table, replica_rows=rows)


def break_even(runner: ScenarioRunner, chosen, runner_up) -> BreakEven | None:
    """Only for the cost objective, a single cloud device type, and a feasible runner-up on another device."""
    if runner.work.spec.objective != "cost" or runner_up is None or len(chosen.parts) != 1:
        return None
    cand = chosen.main.evaluation.candidate
    if cand.offering is None:
        return None
    device = cand.device

    def winner(factor: float) -> str | None:
        compiled = compile_model(_scaled(runner.table, device, factor), runner.work.spec)
        runner.solves += 1
        result = solve_compiled(runner.work, runner.catalog, compiled, runner.settings)
        return result.plan.main.evaluation.candidate.device if result.plan else None

    own = chosen.totals.get("usd_per_job" if runner.table.kind == "training" else "usd_per_hour")
    if not own:
        return None
    # The chosen plan's cost is linear in its device's price, so the swap is expected at the cost ratio;
    # two solves confirm it, and bisection takes over if another plan of the same device intervenes.
    guess = runner_up.objective / own
    if winner(guess * 0.99) == device and winner(guess * 1.01) != device:
        low = guess
    else:
        low, high = 1.0, max(1.0, guess) * 2
        if winner(high) == device:
            return None  # still best at twice the runner-up's ratio: no meaningful swap point
        for _ in range(STEPS):
            mid = (low + high) / 2
            if winner(mid) == device:
                low = mid
            else:
                high = mid
    price_now = cand.offering.usd_per_device_hour
    return BreakEven(device, runner_up.name, price_now, price_now * low)
