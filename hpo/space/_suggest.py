"""Suggestions for a misspelt word: "did you mean `learning_rate`?"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: object, known: Iterable[object]) -> str:
    """``; did you mean `x`?`` for the known word closest to ``word``, or ``""`` when none is close."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, [str(k) for k in known], n=1)
    return f"; did you mean `{close[0]}`?" if close else ""
