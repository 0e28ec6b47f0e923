"""The tuned parameters of a space: int, float and categorical."""

from __future__ import annotations

import math
from typing import Annotated, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntParam(_Model):
    """An integer parameter sampled from [low, high]."""

    type: Literal["int"]
    low: int
    high: int
    step: int = 1
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.step if self.step != 1 else None)
        if self.step < 1:
            raise ValueError(f"`step` must be >= 1, but got step={self.step}")
        return self


class FloatParam(_Model):
    """A float parameter sampled from [low, high]; ``log`` samples on a log scale."""

    type: Literal["float"]
    low: float
    high: float
    step: float | None = None
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"`low` and `high` must be finite, but got low={self.low}, high={self.high}")
        _check_range(self.low, self.high, self.log, self.step)
        if self.step is not None and self.step <= 0:
            raise ValueError(f"`step` must be > 0, but got step={self.step}")
        return self


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"`low` must be <= `high`, but got low={low}, high={high}")
    if log and low <= 0:
        raise ValueError(f"`low` must be > 0 when `log` is true, but got low={low}")
    if log and step is not None:
        raise ValueError("`step` and `log: true` cannot be combined")


Choice = Union[bool, int, float, str, None]

# Optuna keeps a categorical parameter's whole list of choices with every trial (its distribution,
# as JSON, in each trial's parameter row), so the list's size multiplies by the trials.
MAX_CHOICES = 10_000


class CategoricalParam(_Model):
    """A parameter chosen from a list of values."""

    type: Literal["categorical"]
    choices: list[Choice]

    @field_validator("choices")
    @classmethod
    def _check_choices(cls, choices: list[Choice]) -> list[Choice]:
        if not choices:
            raise ValueError("`choices` must list at least one value, but got []")
        if len(choices) > MAX_CHOICES:
            raise ValueError(
                f"`choices` may list at most {MAX_CHOICES} values, but got {len(choices)}: every trial stores its "
                "parameter's whole list of choices in the Optuna storage; tune an int index into a list your code holds instead"
            )
        # Python equality, as Optuna finds a choice (`choices.index(value)`): true and 1, false and 0, 1 and 1.0 are one
        # value to it. Hashing agrees with that equality (hash(1) == hash(1.0) == hash(True)), so a dict finds the
        # first repeat in linear time, where comparing each pair took minutes for 10**6 choices.
        seen: dict[Choice, int] = {}
        for i, c in enumerate(choices):
            first = seen.setdefault(c, i)
            if first != i:
                raise ValueError(_repeated(choices[first], c))
        return choices


def _repeated(first: Choice, again: Choice) -> str:
    """Why two choices are one: the same value, or values Python (and so Optuna) takes as equal."""
    if type(first) is type(again):
        return f"`choices` must not repeat a value, but {_yaml(again)} appears twice"
    if isinstance(first, bool) or isinstance(again, bool):
        flag, number = (first, again) if isinstance(first, bool) else (again, first)
        return (
            f"`choices` cannot hold both {_yaml(flag)} and {_yaml(number)}: Optuna, like Python, takes {_yaml(flag)} "
            f"as {int(bool(flag))}, so it could not tell them apart; quote one ('{_yaml(flag)}') to make it a string"
        )
    return f"`choices` must not repeat a value, but {_yaml(first)} and {_yaml(again)} are the same number"


def _yaml(value: Choice) -> str:
    """A choice as the space file spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else repr(value)


Param = Annotated[Union[IntParam, FloatParam, CategoricalParam], Field(discriminator="type")]
