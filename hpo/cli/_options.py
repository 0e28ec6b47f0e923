"""Help texts and option parsers that several verbs share, written once."""

from __future__ import annotations

STORAGE_HELP = "Optuna storage URL (default as for `hpo run`)."
STUDY_HELP = "Study name. Default: the most recently created study."


# Numbers are parsed here, not by Typer: a value that is no number is one line naming the option, as a
# bad range is (Typer's own refusal is a usage block).
def whole(option: str, text: str | None) -> int | None:
    """``text`` as a whole number, for the flag ``option``; None stays None."""
    try:
        return None if text is None else int(text)
    except ValueError:
        raise _bad(option, "a whole number", text) from None


def seconds(option: str, text: str | None) -> float | None:
    """``text`` as seconds, for the flag ``option``; None stays None."""
    try:
        return None if text is None else float(text)
    except ValueError:
        raise _bad(option, "a number of seconds", text) from None


def number(option: str, text: str | None) -> float | None:
    """``text`` as a number, for the flag ``option``; None stays None."""
    try:
        return None if text is None else float(text)
    except ValueError:
        raise _bad(option, "a number", text) from None


def _bad(option: str, what: str, text: str | None) -> Exception:
    from hpo.errors import HpoError

    return HpoError(f"{option} must be {what}, but got {text!r}")
