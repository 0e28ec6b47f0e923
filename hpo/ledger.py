"""The data ledger: one version name, one set of split digests, kept in the Optuna storage.

A data version's digests are recorded the first time a study runs on it, in a table of its own
(``hpo_data_versions``) beside Optuna's in the study storage, the source of truth. From then on:

- the same version name with other digests is refused (``hpo run``, ``hpo validate``, ``hpo promote``);
- a new version whose MAJOR.MINOR is already known must have the same test digest: results are
  comparable only on the same test rows, and the policy is to bump MINOR when the test split changes
  (PATCH when only train or validation change).

Studies made before the ledger existed are read into it: the first study (by creation time) that
used a version defines it. A storage without an SQL backend has no ledger table; its studies are
still read, so the rule holds there too, but nothing is recorded beyond them.

The digests name the data as delivered: every column, before the study's ``data.drop``. An hpo
before that digested the columns left after ``data.drop``; a version it recorded (its overview has
no ``digest_basis``) still accepts the same data under the same ``drop`` by that digest, and the
first ``hpo run`` that does so upgrades the entry to the delivered digests (the old ones kept in its
overview as ``legacy_digests``), after which any ``drop`` over that data is accepted.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.errors import DataError
from hpo.schema import STUDY_CREATED_AT, STUDY_DATA_VERSION, STUDY_DIGESTS, STUDY_OVERVIEW, STUDY_SRC_VERSION
from hpo.secrets import masked_url

if TYPE_CHECKING:
    import optuna

    from hpo.data import DataVersion
    from hpo.tracking import Tracked
    from hpo.workspace import Workspace

LOCK = "hpo data ledger"  # the study_lock name that serializes recording (not a study name hpo accepts)
SPLITS = ("train", "validation", "test")
_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)\Z")
_STUDY_KEYS = (STUDY_CREATED_AT, STUDY_DATA_VERSION, STUDY_DIGESTS, STUDY_OVERVIEW, STUDY_SRC_VERSION)
RULE = "bump MINOR when the test split changes, PATCH when only train or validation change"


@dataclass
class Entry:
    """A data version as the ledger knows it."""

    version: str
    digests: dict[str, str]
    overview: dict[str, Any]
    first_study: str | None
    recorded_at: str | None
    recorded: bool  # in the ledger table (False: read from a study made before the ledger)
    studies: list[str] = field(default_factory=list)
    src_versions: list[str] = field(default_factory=list)
    origin: str | None = None  # where the record is, when not the ledger (e.g. an MLflow experiment)

    @property
    def delivered(self) -> bool:
        """Whether the digests name the data as delivered (else: after the first study's ``data.drop``)."""
        from hpo.data import is_delivered

        return is_delivered(self.overview)

    def comparable(self, digests: dict[str, str], data: DataVersion | None) -> dict[str, str]:
        """This data's digests as this entry took them: ``digests`` (of the data as delivered), or, for an
        entry an older hpo recorded after ``data.drop``, those of ``data`` over the features its first
        study used (the overview's ``kinds``; else this study's), whatever this study drops."""
        if self.delivered or data is None:
            return digests
        features = list(self.overview.get("kinds") or [])
        return (data.digests_of(features) if features else data.legacy_digests) or digests

    def accepts(self, digests: dict[str, str], data: DataVersion | None, split: str | None = None) -> bool:
        """Whether this entry names this data (only its ``split`` if given): see :meth:`comparable`."""
        splits = SPLITS if split is None else (split,)
        if all(self.digests.get(s) == digests.get(s) for s in splits):
            return True
        theirs = self.comparable(digests, data)
        return all(self.digests.get(s) == theirs.get(s) for s in splits)

    def as_dict(self) -> dict[str, Any]:
        rows = self.overview.get("rows") or {}
        # The data as delivered (every column); an entry from before names only the first study's columns.
        columns = self.overview.get("columns") or (int(self.overview.get("features", 0)) + 1 if self.overview else None)
        return {
            "version": self.version,
            "digests": self.digests,
            "rows": rows,
            "columns": columns,
            "target": self.overview.get("target"),
            "task": self.overview.get("task"),
            "source": self.overview.get("source"),
            "first_study": self.first_study,
            "recorded_at": self.recorded_at,
            "studies": self.studies,
            "src_versions": self.src_versions,
        }


def entries(storage: optuna.storages.BaseStorage) -> dict[str, Entry]:
    """Every known data version: the ledger table, completed by the studies in the storage."""
    return _merged(_read_table(storage), [(s.study_name, s.user_attrs) for s in storage.get_all_studies()])


def _merged(recorded: dict[str, Entry], studies: list[tuple[str, dict[str, Any]]]) -> dict[str, Entry]:
    known = dict(recorded)
    for name, attrs in sorted(studies, key=lambda s: str(s[1].get(STUDY_CREATED_AT) or "")):
        version, digests = attrs.get(STUDY_DATA_VERSION), attrs.get(STUDY_DIGESTS)
        if not version or not isinstance(digests, dict):
            continue
        entry = known.get(version)
        if entry is None:
            entry = known[version] = Entry(
                version, dict(digests), dict(attrs.get(STUDY_OVERVIEW) or {}), name, attrs.get(STUDY_CREATED_AT), False
            )
        entry.studies.append(name)
        src = attrs.get(STUDY_SRC_VERSION)
        if src and src not in entry.src_versions:
            entry.src_versions.append(src)
    return dict(sorted(known.items(), key=lambda kv: _key(kv[0])))


def _entries_at(url: str) -> dict[str, Entry]:
    """:func:`entries` at ``url``, for a command that only looks: an SQLite file Optuna would open as it stands
    is read with ``sqlite3`` (SQLAlchemy and alembic cost 1.4-2 s); else through Optuna. No file: no ledger."""
    from hpo.storage import LEDGER_TABLE, Unsure, open_storage, sqlite_path, study_attrs

    path = sqlite_path(url)
    if path is not None and not path.exists():
        return {}
    if path is not None and path.is_file():
        try:
            rows, studies = study_attrs(path, LEDGER_TABLE, _STUDY_KEYS)
        except Unsure:
            pass
        else:
            return _merged({r["version"]: _entry(r) for r in rows or []}, studies)
    return entries(open_storage(url, create=False))


def check(known: dict[str, Entry], version: str, digests: dict[str, str], where: str, data: DataVersion | None = None) -> None:
    """Refuse ``digests`` under ``version`` where the ledger says otherwise (see the module docstring).

    ``data``: the data the digests are of, by which an entry an older hpo recorded after ``data.drop``
    (not :attr:`Entry.delivered`) is matched.
    """
    entry = known.get(version)
    if entry is not None:
        if entry.accepts(digests, data):
            return
        digests = entry.comparable(digests, data)  # the message compares digests taken one way
        differs = [s for s in SPLITS if entry.digests.get(s) != digests.get(s)]
        if differs:
            split = "test" if "test" in differs else differs[0]
            used = (
                f" ({entry.origin or f'first used by study {entry.first_study!r}'})" if entry.origin or entry.first_study else ""
            )
            raise DataError(
                f"{where}: data version {version} is recorded with other data{used}: its {split} digest is "
                f"{entry.digests.get(split, '?')[:12]}, this data's is {digests.get(split, '?')[:12]}"
                f"{'' if len(differs) == 1 else ' (' + ', '.join(differs) + ' differ)'}; one version name is one set "
                f"of split digests: call this data {suggest(known, version, split == 'test')} ({RULE})"
            )
        return
    parsed = _VERSION.match(version)
    if parsed is None:
        return
    for other in known.values():
        o = _VERSION.match(other.version)
        if o and o.group(1, 2) == parsed.group(1, 2) and not other.accepts(digests, data, "test"):
            digests = other.comparable(digests, data)
            raise DataError(
                f"{where}: data version {version} shares {version.rsplit('.', 1)[0]} with {other.version}, whose test "
                f"split differs (test digest {other.digests.get('test', '?')[:12]} there, {digests.get('test', '?')[:12]} "
                f"here): results on other test rows are not comparable; call this data "
                f"{suggest(known, version, True)} ({RULE})"
            )


def suggest(known: dict[str, Entry], version: str, test_changed: bool) -> str:
    """The next free version name after ``version``: a MINOR bump if the test split changed, else PATCH."""
    m = _VERSION.match(version)
    if m is None:
        return "a new version"
    major, minor, patch = (int(x) for x in m.groups())
    taken = {_key(v) for v in known}
    if test_changed:
        minor = max([mi for ma, mi, _ in taken if ma == major] + [minor]) + 1
        return f"v{major}.{minor}.0"
    patch = max([pa for ma, mi, pa in taken if (ma, mi) == (major, minor)] + [patch]) + 1
    return f"v{major}.{minor}.{patch}"


def check_data(url: str, data: DataVersion, where: str, tracked: Tracked | None = None) -> None:
    """``hpo validate``: check ``data`` against the ledger of the storage at ``url`` (a storage that
    does not exist yet has an empty ledger) and against ``tracked``, writing nothing."""
    _check_all(_entries_at(url), data.version, data.digests, where, tracked, data)


def record(url: str, data: DataVersion, study: str, where: str, tracked: Tracked | None = None) -> None:
    """``hpo run``: check ``data`` against the ledger and ``tracked``, and record its version the first
    time, under a lock, so that two runs started together on new data cannot both define one version.

    A version recorded after ``data.drop`` by an older hpo, and accepted by that digest, is upgraded
    to the delivered digests of ``data`` (see the module docstring)."""
    from hpo.storage import open_storage, sqlite_path, study_lock

    path = sqlite_path(url)
    if path is None or not path.exists():  # refuse before a storage is created for it
        _check_all({}, data.version, data.digests, where, tracked, data)
    with study_lock(url, LOCK):
        storage = open_storage(url)
        known = entries(storage)
        _check_all(known, data.version, data.digests, where, tracked, data)
        entry = known.get(data.version)
        upgraded = None
        if entry is not None and not entry.delivered:
            # Accepted (by either digest): from now on the version names the data as delivered.
            overview = {**entry.overview, **_delivered()}
            if entry.digests != data.digests:
                overview["legacy_digests"] = entry.digests
            upgraded = Entry(entry.version, data.digests, overview, entry.first_study, entry.recorded_at, entry.recorded)
        unrecorded = [upgraded if e is entry and upgraded else e for e in known.values() if not e.recorded]
        if data.version not in known:
            now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            unrecorded.append(Entry(data.version, data.digests, data.overview(), study, now, False))
        _write(storage, unrecorded)
        if upgraded is not None and upgraded.recorded:
            _update(storage, upgraded)


def _delivered() -> dict[str, str]:
    """The overview marker of digests of the data as delivered."""
    from hpo.data import DELIVERED, DIGEST_BASIS

    return {DIGEST_BASIS: DELIVERED}


def _key(version: str) -> tuple[int, int, int]:
    m = _VERSION.match(version)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else (-1, -1, -1)


def _read_table(storage: optuna.storages.BaseStorage) -> dict[str, Entry]:
    from hpo.storage import ledger_rows

    return {r["version"]: _entry(r) for r in ledger_rows(storage)}


def _entry(row: dict[str, Any]) -> Entry:
    """A row of the ledger table."""
    return Entry(
        row["version"], json.loads(row["digests"]), json.loads(row["overview"]), row["first_study"], row["recorded_at"], True
    )


def _write(storage: optuna.storages.BaseStorage, new: list[Entry]) -> None:
    from hpo.storage import insert_ledger_rows

    insert_ledger_rows(
        storage, [{"version": e.version, **_columns(e), "first_study": e.first_study, "recorded_at": e.recorded_at} for e in new]
    )


def _columns(e: Entry) -> dict[str, str]:
    return {"digests": json.dumps(e.digests, sort_keys=True), "overview": json.dumps(e.overview, sort_keys=True, default=str)}


def check_promotion(
    url: str, version: str, digests: dict[str, str], where: str, tracked: Tracked, data: DataVersion | None = None
) -> None:
    """``hpo promote``: the trial's data against the storage's ledger and against the digests its
    data-version experiment records (a study in another storage may have run or promoted there first).
    ``data``: as for :func:`check`."""
    from hpo.storage import open_storage

    _check_all(entries(open_storage(url, create=False)), version, digests, where, tracked, data)


def _check_all(
    known: dict[str, Entry],
    version: str,
    digests: dict[str, str],
    where: str,
    tracked: Tracked | None,
    data: DataVersion | None = None,
) -> None:
    check(known, version, digests, where, data)
    if tracked is not None and tracked.digests:
        # An experiment an older hpo tagged (after `data.drop`) has no overview: the ledger's features
        # for the version, if it knows them, are the ones its first study used.
        mine = known.get(version)
        basis = _delivered() if tracked.delivered else {"kinds": mine.overview.get("kinds")} if mine else {}
        there = Entry(version, tracked.digests, basis, None, None, True, origin=f"in MLflow experiment {tracked.experiment!r}")
        check({**known, version: there}, version, digests, where, data)


def data_versions(
    storage: str | None = None, version: str | None = None, *, tracking: bool = True, workspace: Workspace | None = None
) -> list[dict[str, Any]]:
    """``hpo data``: every known version (or ``version``) with its splits, studies, source versions
    and, where the MLflow store exists and answers, its promoted runs.

    Args:
        storage: the Optuna storage URL (default: the workspace's, as for ``hpo run``).
        workspace: the workspace (default: the current folder, as the command would).
    """
    from hpo.errors import HpoError
    from hpo.workspace import load_workspace

    ws = workspace or load_workspace()
    url = ws.storage_url(storage)
    known = _entries_at(url)
    if version is not None and version not in known:
        have = ", ".join(known) or "none yet"
        raise HpoError(f"data version {version!r} is not in the ledger of {masked_url(url)} (known: {have})")
    chosen = [known[version]] if version is not None else list(known.values())
    out = []
    for e in chosen:
        promoted = _promoted(ws, e) if tracking else None  # adds their source versions
        out.append({**e.as_dict(), "promoted_runs": promoted})
    return out


def _update(storage: optuna.storages.BaseStorage, entry: Entry) -> None:
    """Rewrite a recorded entry's digests and overview (its upgrade to the delivered digests)."""
    from hpo.storage import update_ledger_row

    update_ledger_row(storage, entry.version, **_columns(entry))


def _promoted(ws: Workspace, entry: Entry) -> list[dict[str, Any]] | None:
    """The promoted runs of a version's data-version experiment; None when MLflow cannot be read (its
    SQLite store is not there, or it does not answer); their source versions join the entry's."""
    from hpo.schema import TAG_SRC_VERSION, TAG_STUDY, TAG_TRIAL
    from hpo.tracking import experiment_names
    from hpo.tracking._cleanup import existing_client, promoted_runs

    try:
        c = existing_client()
        if c is None:
            return []  # no store yet: nothing promoted, and nothing created by looking
        runs = promoted_runs(c, experiment_names(ws, entry.version)["data"])
    except Exception:
        return None
    found = []
    for r in runs:
        tags = r.tags
        src = tags.get(TAG_SRC_VERSION)
        if src and src not in entry.src_versions:
            entry.src_versions.append(src)
        found.append({"run_id": r.run_id, "study": tags.get(TAG_STUDY), "trial": tags.get(TAG_TRIAL), "src_version": src})
    return found
