"""Old spellings of hpo's MLflow tags: written beside the new names, read when the new name is missing.

hpo's MLflow tags were not all namespaced at first (``seed``, ``data_version``, ``digest.test``). They
now carry ``hpo.`` names (:mod:`hpo.schema`), and until the old names are dropped (a later release):

- every write adds each old spelling beside its new name (:func:`written`), so that a reader, a
  search or a chart built on the old names keeps working on new runs;
- every read takes a renamed key from its old spelling (:func:`normalized`), so that runs written
  before the rename read the same as new ones. Where both are present the old one wins: every hpo
  writes it (an older worker, sharing the storage, writes only it), so it holds the latest write;
- a search filter names the old spelling (:func:`searchable`): MLflow's filters cannot say "this
  tag or that one", and every run, old or new, carries the old name.

Only the tracking package reads or writes raw tags, so this is the one place that knows both names.

Old runs are not rewritten with the new names, not even by ``hpo sync``: reads fall back, and a
rewrite would turn a sync that finds nothing new into one write per trial run after an upgrade.
(A study's parent run takes the new names when its next sync writes a tag that changed.)
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
    """``tags`` with each renamed key read from its old spelling where a run has it (see above)."""
    out = dict(tags)
    for key, value in tags.items():
        new = _new(key)
        if new is not None:
            out[new] = value
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
