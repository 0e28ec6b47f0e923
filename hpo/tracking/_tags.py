"""Old spellings of hpo's MLflow tags: written beside the new names, read when the new name is missing.

hpo's MLflow tags were not all namespaced at first (``seed``, ``data_version``, ``digest.test``). They
now carry ``hpo.`` names (:mod:`hpo.schema`), and until the old names are dropped (a later release):

- every write adds each old spelling beside its new name (:func:`written`), so that a reader, a
  search or a chart built on the old names keeps working on new runs;
- every read fills a missing new name from its old spelling (:func:`normalized`), so that runs
  written before the rename read the same as new ones;
- a search filter names the old spelling (:func:`searchable`): MLflow's filters cannot say "this
  tag or that one", and every run, old or new, carries the old name.

Only the tracking package reads or writes raw tags, so this is the one place that knows both names.
"""

from __future__ import annotations

from collections.abc import Mapping

from hpo.schema import LEGACY_PREFIXES, LEGACY_TAGS


def written(tags: Mapping[str, str]) -> dict[str, str]:
    """``tags`` with each renamed key also under its old spelling, as every write stores them."""
    out = dict(tags)
    for key, value in tags.items():
        old = _old(key)
        if old is not None:
            out.setdefault(old, value)
    return out


def normalized(tags: Mapping[str, str]) -> dict[str, str]:
    """``tags`` with a missing new key filled from its old spelling (runs written before the rename)."""
    out = dict(tags)
    for key, value in tags.items():
        new = _new(key)
        if new is not None:
            out.setdefault(new, value)
    return out


def searchable(key: str) -> str:
    """The spelling of ``key`` that every run carries, old or new: for MLflow search filters."""
    return _old(key) or key


def _old(key: str) -> str | None:
    if key in LEGACY_TAGS:
        return LEGACY_TAGS[key]
    for new, old in LEGACY_PREFIXES.items():
        if key.startswith(new):
            return old + key.removeprefix(new)
    return None


def _new(key: str) -> str | None:
    for new, old in LEGACY_TAGS.items():
        if key == old:
            return new
    for new, old in LEGACY_PREFIXES.items():
        if key.startswith(old):
            return new + key.removeprefix(old)
    return None
