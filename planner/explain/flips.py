"""Where the decision flips: for each parameter a model names (a device's price, the number of sites, a
link's price), the nearest value toward each end at which the model's `decision` changes, by bisection
on re-solves; a model that expects the flip somewhere (cost linear in a price) has it confirmed by two
solves on either side first."""

from __future__ import annotations

from planner.explain.question import Flip, Parameter, Question, Questions

EXPECTED_MARGIN = 0.01


def flip_point(model: Questions, parameter: Parameter, plan) -> Flip:
    now = model.decision(plan)

    def decision_at(value: float):
        answer = model.ask(Question(parameter=(parameter.name, value)))
        return model.decision(answer.plan if answer.feasible else None)

    if parameter.expected is not None:
        below = decision_at(parameter.expected * (1 - EXPECTED_MARGIN))
        above = decision_at(parameter.expected * (1 + EXPECTED_MARGIN))
        if below == now and above != now:
            return _flip(model, parameter, parameter.expected, parameter.expected, now, above)
    for end in parameter.ends:
        if end == parameter.current or decision_at(end) == now:
            continue
        near, far = parameter.current, end  # decision_at(near) == now, decision_at(far) != now
        steps = 0
        while abs(far - near) > 1 if parameter.integer else steps < parameter.steps:
            steps += 1
            mid = (near + far) // 2 if parameter.integer else (near + far) / 2
            if decision_at(mid) == now:
                near = mid
            else:
                far = mid
        return _flip(model, parameter, far, near, now, decision_at(far))
    return _flip(model, parameter, None, None, now, now)


def _flip(model: Questions, parameter: Parameter, at, holds_until, now, then) -> Flip:
    flip = Flip(parameter, at, holds_until, now, then)
    flip.sentence = model.flip_sentence(flip) if at is not None else None
    return flip


def flips(model: Questions, plan, alternatives) -> list[Flip]:
    return [flip_point(model, p, plan) for p in model.parameters(plan, alternatives)]
