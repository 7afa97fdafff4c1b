"""The base of every model read from a file: unknown keys refused, frozen, numbers finite and of a size a
plan can hold, a YAML `true`/`yes` never read as the number 1, and no list that restricts a search given
empty (which would read as "no restriction")."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

# Larger than any physical quantity a spec holds (15 trillion training tokens is 1.5e13), small enough that
# every bound, scaled to the solver's integer units, stays far inside 64 bits.
MAX_MAGNITUDE = 1e15


def _numeric_only(annotation, items: bool = False) -> bool:
    """Whether a field takes numbers and not booleans (Optional and Annotated unwrapped); with `items`,
    whether it is a list of numbers or a mapping to numbers."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _numeric_only(typing.get_args(annotation)[0], items)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(_numeric_only(a, items) for a in args)
    if items:
        if origin is list or origin is tuple:
            return bool(typing.get_args(annotation)) and all(_numeric_only(a) for a in typing.get_args(annotation)
                                                             if a is not Ellipsis)
        if origin is dict:
            return _numeric_only(typing.get_args(annotation)[1])
        return False
    return annotation in (int, float)


def plain_number(x: float) -> str:
    """1000000 as `1,000,000`, 1e30 as `1e+30`: ceilings and values in messages, as people read them."""
    return f"{x:,.0f}" if x == int(x) and abs(x) < 1e16 else f"{x:g}"


def _holds_model(annotation) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, BaseModel)
    return any(_holds_model(a) for a in typing.get_args(annotation))


@dataclass(frozen=True)
class _FieldKind:
    """What the input check needs to know of a field's annotation, worked out once per model class (the
    catalogs validate thousands of entries at every start-up)."""

    number: bool  # a number, never a boolean
    numbers: bool  # a list of numbers or a mapping to numbers
    holds_model: bool  # nested models check their own numbers
    ceiling: float  # the field's own `le`/`lt`, else MAX_MAGNITUDE


def _field_kind(field) -> _FieldKind:
    ceiling = next((getattr(m, "le", None) or getattr(m, "lt", None) for m in field.metadata
                    if hasattr(m, "le") or hasattr(m, "lt")), MAX_MAGNITUDE)
    return _FieldKind(_numeric_only(field.annotation), _numeric_only(field.annotation, items=True),
                      _holds_model(field.annotation), ceiling)


_KINDS: dict[type, dict[str, _FieldKind]] = {}  # per model class (a subclass has fields of its own)


def _numbers_in(value, kind: _FieldKind) -> list[float]:
    """The finite numbers a field holds directly (itself, or the items of a list or mapping of numbers);
    nested models check their own, and .inf/.nan are refused as such by pydantic."""
    if isinstance(value, (dict, list)) and kind.holds_model:
        return []
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)

    # List fields where an empty list would silently mean "every value": the field must be left out instead.
    nonempty_lists: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _field_kinds(cls) -> dict[str, _FieldKind]:
        kinds = _KINDS.get(cls)
        if kinds is None:
            kinds = _KINDS[cls] = {name: _field_kind(field) for name, field in cls.model_fields.items()}
        return kinds

    @model_validator(mode="before")
    @classmethod
    def _plain_numbers_and_lists(cls, data):
        if isinstance(data, dict):
            kinds = cls._field_kinds()
            for name, value in data.items():
                kind = kinds.get(name)
                if kind is None:
                    continue
                if isinstance(value, bool) and kind.number:
                    raise ValueError(f"`{name}`: give a number, not true/false")
                if isinstance(value, (dict, list)) and kind.numbers:
                    items = value.values() if isinstance(value, dict) else value
                    if any(isinstance(v, bool) for v in items):
                        raise ValueError(f"`{name}`: give numbers, not true/false")
                big = [v for v in _numbers_in(value, kind) if abs(v) > MAX_MAGNITUDE]
                if big:
                    raise ValueError(f"`{name}`: too large (got {big[0]:g}): at most {plain_number(kind.ceiling)}")
                if name in cls.nonempty_lists and value == []:
                    raise ValueError(f"`{name}` is empty; leave it out to consider every value, or list some")
        return data
