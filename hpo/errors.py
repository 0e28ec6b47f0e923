"""The one exception family hpo raises for problems a user can fix."""

from __future__ import annotations


class HpoError(Exception):
    """A problem with the user's input or environment, reported as one clear line per problem.

    The CLI prints the message (each line one complete problem) and exits non-zero; anything
    that is not an ``HpoError`` is a bug and keeps its traceback.
    """

    exit_code = 2


class SpaceError(HpoError):
    """The search-space file is missing, unparsable or breaks a rule."""


class DataError(HpoError):
    """The data version cannot be loaded or split as the space file says."""


class StudyError(HpoError):
    """The study in the storage conflicts with what was asked (changed space, unknown study)."""


class NoTrialCompleted(HpoError):
    """A run finished without a single COMPLETE trial."""

    exit_code = 1
