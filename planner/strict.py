"""The base of every model read from a file: unknown keys refused, frozen, numbers finite, and a YAML
`true`/`yes` never read as the number 1."""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel, ConfigDict, model_validator


def _numeric_only(annotation) -> bool:
    """Whether a field takes numbers and not booleans (Optional and Annotated unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _numeric_only(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(_numeric_only(a) for a in args)
    return annotation in (int, float)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, data):
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                if isinstance(value, bool) and field is not None and _numeric_only(field.annotation):
                    raise ValueError(f"`{name}`: give a number, not true/false")
        return data
