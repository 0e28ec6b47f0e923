"""``hpo export``: a study's trials as one table, a row per trial, for notebooks and spreadsheets.

The table and its formats live in ``_frame``; what ``-o`` may replace and the atomic write in ``_target``.
"""

from hpo.export._frame import FORMATS, PARAM_PREFIX, encode, export_format, export_trials, trials_frame
from hpo.export._target import Target, check_target, protected_paths, summary, write_file

__all__ = [
    "FORMATS",
    "PARAM_PREFIX",
    "Target",
    "check_target",
    "encode",
    "export_format",
    "export_trials",
    "protected_paths",
    "summary",
    "trials_frame",
    "write_file",
]
