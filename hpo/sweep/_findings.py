"""What a conversion finds on the way: problems that refuse the sweep, parts not carried over, notes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hpo.errors import HpoError


class SweepError(HpoError):
    """The file is not a W&B sweep, or breaks one of its rules; one line per problem."""


@dataclass(frozen=True)
class NotCarried:
    """A part of the sweep with no counterpart in the space file."""

    key: str
    """Where it is in the sweep: ``program``, ``metric.target``, ``parameters.dropout``."""
    value: Any
    reason: str
    """Why hpo has no counterpart, and what to write instead where there is something to write."""

    def __str__(self) -> str:
        return f"{self.key} ({short(self.value)}): {self.reason}"


@dataclass
class Findings:
    """One conversion's findings, in the order they were found (the written header keeps that order)."""

    source: str
    """The sweep file's name, which begins every problem."""
    problems: list[str] = field(default_factory=list)
    not_carried: list[NotCarried] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        """Record a problem; the conversion goes on, to report every problem at once."""
        self.problems.append(f"{self.source}: {message}")

    def drop(self, key: str, value: Any, reason: str) -> None:
        self.not_carried.append(NotCarried(key, value, reason))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def raise_problems(self) -> None:
        """Raise every problem found so far as one :class:`SweepError`, one line each."""
        if self.problems:
            raise SweepError("\n".join(self.problems))


@dataclass(frozen=True)
class Keyed:
    """A value for a key of the space file, and the comment saying where in the sweep it came from."""

    value: Any
    comment: str | None


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def tidy(x: float) -> float:
    """``x`` to 12 significant digits: e^ln(1e-4) is 1e-4, not 1.0000000000000002e-4."""
    return float(f"{x:.12g}")


def g(x: float) -> str:
    return f"{x:.6g}"


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
