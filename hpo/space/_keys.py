"""Which names MLflow takes as a param, metric or tag key: MLflow 3's own rule, checked without MLflow.

Every name in `params` and `fixed` becomes the key of an MLflow param of each trial's run. MLflow
refuses a key (``mlflow/utils/validation.py``: ``_validate_param_name``, ``bad_character_message``,
``path_not_unique``, ``MAX_ENTITY_KEY_LENGTH``) that holds another character than letters, digits,
``_ - . : /`` and spaces, that a path normalisation would change (``../x``, ``/x``, ``a//b``,
``a/``, ``.``), or that is longer than 250 characters. A run would then log nothing to MLflow and
``hpo sync`` could never log that study, so such names are refused before anything runs.
"""

from __future__ import annotations

import posixpath
import re

# MLflow's pattern on POSIX (`[/\w.\- :]`); `\Z`, not `$`, so that no trailing newline slips through.
_KEY_CHARS = re.compile(r"[/\w.\- :]+\Z")
MAX_KEY_LENGTH = 250  # MLflow's MAX_ENTITY_KEY_LENGTH

KEY_RULE = (
    "MLflow keys hold only letters, digits, '_', '-', '.', ':', '/' and spaces, at most 250 characters, "
    "and must read the same as a normalised path (no leading '/', no '.' or '..' part, no '//' or trailing '/')"
)


def key_problem(name: str) -> str | None:
    """Why MLflow would refuse ``name`` as a key (one clause), or ``None`` when it takes it."""
    if not name:
        return "is empty"
    if len(name) > MAX_KEY_LENGTH:
        return f"is {len(name)} characters long"
    bad = sorted({c for c in name if not _KEY_CHARS.match(c)})
    if bad:
        return f"holds {', '.join(map(repr, bad))}"
    norm = posixpath.normpath(name)
    if norm.startswith(".."):
        return "starts with '..' (a path out of its folder)"
    if norm.startswith("/"):
        return "starts with '/' (an absolute path)"
    if norm == "." or norm != name:
        return f"reads as the path {norm!r} once normalised"
    return None


def key_refusal(name: str) -> str | None:
    """:func:`key_problem` as a whole sentence with the rule, or ``None``."""
    why = key_problem(name)
    return None if why is None else f"{why}, which MLflow refuses as a param key: {KEY_RULE}"
