"""Single commands import only what they use, and the data ledger's verdicts do not change for it.

`hpo validate` reads the data-version experiment of a local SQLite MLflow store, and the ledger of a local
SQLite Optuna storage, with `sqlite3` (no MLflow, no SQLAlchemy, no CatBoost in the process), and so does
`hpo try` before its fit. Any other store, and a file MLflow would not open as it stands, is still
read through MLflow: the refusals are the same on an SQLite store and on an `mlflow server`.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from tests.conftest import invoke, small_space, write_space_as

# Runs `hpo` verbs in one fresh process; for each, its exit code and the mlflow / catboost modules loaded by then.
HARNESS = """
import json, sys
from hpo.cli import app
results = []
for args in json.loads(sys.argv[1]):
    try:
        app(args, prog_name="hpo")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    loaded = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("mlflow", "catboost", "sqlalchemy", "alembic")})
    results.append({"code": code, "loaded": loaded})
with open(sys.argv[2], "w") as f:
    json.dump(results, f)
"""


def in_fresh_process(ws: Path, uri: str, *verbs: list[str]) -> tuple[list[dict[str, Any]], str, str]:
    """``verbs`` run one after the other in a new Python process: their results, its stdout and stderr."""
    import os

    out = ws / "results.json"
    env = {k: v for k, v in os.environ.items() if k not in ("HPO_STORAGE", "MLFLOW_TRACKING_URI")}
    env["MLFLOW_TRACKING_URI"] = uri
    p = subprocess.run(
        [sys.executable, "-c", HARNESS, json.dumps(list(verbs)), str(out)],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(out.read_text()), p.stdout, p.stderr


@pytest.fixture
def known(workspace: Path) -> Path:
    """`same.yaml`, and `other.yaml` with other rows under its data version's name; no Optuna storage yet."""
    same = write_space_as(workspace, small_space(fixed={"iterations": 10, "thread_count": 1}), "same.yaml")
    data = small_space()["data"] | {"split": {"validation": 0.2, "test": 0.2, "seed": 1}}
    write_space_as(workspace, small_space(study="other", data=data, fixed={"iterations": 10, "thread_count": 1}), "other.yaml")
    return same


def describe(ws: Path, uri: str) -> MlflowClient:
    """The data-version experiment of `same.yaml`'s data, as `hpo run` describes it, in the store at ``uri``."""
    from hpo.prepare import prepare
    from hpo.tracking import describe_data_experiment
    from hpo.workspace import load_workspace

    c = MlflowClient(uri)
    prep = prepare(ws / "search_spaces" / "same.yaml")
    describe_data_experiment(c, load_workspace(), prep.data.overview())
    return c


def refusal(ws: Path) -> str:
    return f"data version v0.1.0 is recorded with other data (in MLflow experiment '{ws.name}-Data-v0.1.0')"


def test_validate_reads_the_data_version_experiment_without_mlflow_or_catboost(known: Path) -> None:
    ws = known.parents[1]
    uri = f"sqlite:///{ws / 'mlflow.db'}"
    describe(ws, uri)
    results, _, err = in_fresh_process(ws, uri, ["validate", "search_spaces/same.yaml"], ["validate", "search_spaces/other.yaml"])
    assert [r["code"] for r in results] == [0, 2], err
    assert refusal(ws) in err
    assert [r["loaded"] for r in results] == [[], []]  # neither imported: nothing fitted, the experiment read by hand


def test_validate_reads_the_storages_ledger_without_sqlalchemy(known: Path) -> None:
    from hpo.ledger import record
    from hpo.prepare import prepare
    from hpo.workspace import load_workspace

    ws = known.parents[1]
    prep = prepare(known)
    record(load_workspace().storage_url(), prep.data, "same", prep.where)  # as `hpo run` does, before its first trial
    results, _, err = in_fresh_process(
        ws, f"sqlite:///{ws / 'mlflow.db'}", ["validate", "search_spaces/same.yaml"], ["validate", "search_spaces/other.yaml"]
    )
    assert [r["code"] for r in results] == [0, 2], err
    assert "data version v0.1.0 is recorded with other data (first used by study 'same')" in err, err
    assert [r["loaded"] for r in results] == [[], []]


def test_the_ledger_read_by_hand_is_what_optuna_reads(known: Path) -> None:
    import optuna

    from hpo.errors import HpoError
    from hpo.ledger import _entries_at, entries, record
    from hpo.prepare import prepare
    from hpo.schema import STUDY_CREATED_AT, STUDY_DATA_VERSION, STUDY_DIGESTS, STUDY_OVERVIEW, STUDY_SRC_VERSION
    from hpo.storage import Unsure, open_storage, study_attrs
    from hpo.storage._peek import optuna_head
    from hpo.workspace import load_workspace

    url = load_workspace().storage_url()
    assert _entries_at(url) == {}  # no storage: an empty ledger, and none is made by looking
    prep = prepare(known)
    record(url, prep.data, "same", prep.where)
    # Studies an older hpo made before the ledger (read into it by creation time), and one that is not hpo's.
    for name, version, created in [("later", "v0.2.0", "2026-02-01"), ("earlier", "v0.2.0", "2026-01-01"), ("bare", None, None)]:
        s = optuna.create_study(storage=url, study_name=name)
        if version:
            s.set_user_attr(STUDY_DATA_VERSION, version)
            s.set_user_attr(STUDY_DIGESTS, {"train": name, "validation": "v", "test": "t"})
            s.set_user_attr(STUDY_CREATED_AT, created)
            s.set_user_attr(STUDY_OVERVIEW, {"rows": {"train": 3}})
            s.set_user_attr(STUDY_SRC_VERSION, f"src-{name}")
    assert optuna_head() == optuna.storages.RDBStorage(url).get_head_version()
    by_hand, by_optuna = _entries_at(url), entries(open_storage(url, create=False))
    assert by_hand == by_optuna and list(by_hand) == ["v0.1.0", "v0.2.0"]
    assert by_hand["v0.2.0"].first_study == "earlier" and by_hand["v0.2.0"].studies == ["earlier", "later"]
    # A storage Optuna would not open as it stands (an older schema) is Optuna's to read: the same refusal.
    db = Path(url.removeprefix("sqlite:///"))
    older = db.with_name("older.db")
    with sqlite3.connect(db) as a, sqlite3.connect(older) as b:
        a.backup(b)
        b.execute("UPDATE alembic_version SET version_num = 'v3.0.0.d'")
    with pytest.raises(Unsure):
        study_attrs(older, "hpo_data_versions", (STUDY_DATA_VERSION,))
    with pytest.raises((HpoError, RuntimeError)) as refused:
        _entries_at(f"sqlite:///{older}")
    assert "schema" in str(refused.value)


@pytest.mark.parametrize("store", ["sqlite", "server"])
def test_validate_try_and_run_refuse_what_the_experiment_records_on_either_store(
    known: Path, store: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = known.parents[1]
    uri = f"sqlite:///{ws / 'mlflow.db'}" if store == "sqlite" else request.getfixturevalue("mlflow_server")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    describe(ws, uri)
    for verb in ("validate", "try", "run"):
        code, _, err = invoke(verb, "search_spaces/other.yaml")
        assert code == 2 and refusal(ws) in err and len(err.strip().splitlines()) == 1, (verb, err)
    assert not (ws / "studies").exists()
    code, _, err = invoke("validate", "search_spaces/same.yaml")
    assert code == 0, err


def test_the_experiment_read_by_hand_is_what_mlflow_reads(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hpo.schema import TAG_DIGEST_BASIS, TAG_DIGEST_PREFIX
    from hpo.tracking import read_tracked, recorded_digests
    from hpo.tracking._data_space import tracked_digests
    from hpo.workspace import load_workspace

    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    ws = load_workspace()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracked_digests(ws, "v0.1.0") is None  # no store: none is made by looking
    c = MlflowClient(uri)
    new = {TAG_DIGEST_PREFIX + s: s[0] * 64 for s in ("train", "validation", "test")} | {TAG_DIGEST_BASIS: "delivered"}
    old = {"digest." + s: s[1] * 64 for s in ("train", "validation", "test")}  # an older hpo's names, no basis
    cases = {"v1.0.0": new, "v2.0.0": old, "v3.0.0": {"other": "tag"}, "v4.0.0": new}
    for version, tags in cases.items():
        c.create_experiment(f"{workspace.name}-Data-{version}", tags=tags)
    c.delete_experiment(c.get_experiment_by_name(f"{workspace.name}-Data-v4.0.0").experiment_id)
    for version in [*cases, "v5.0.0"]:
        assert tracked_digests(ws, version) == recorded_digests(c, ws, version), version
    assert tracked_digests(ws, "v2.0.0").digests["test"] == "e" * 64  # type: ignore[union-attr]
    # A store MLflow refuses as it stands (here: an older schema revision) is MLflow's to read, and gives no
    # digests. A copy: this process's MLflow keeps the store it opened for a URI, checked once.
    with sqlite3.connect(workspace / "mlflow.db") as db, sqlite3.connect(workspace / "older.db") as older:
        db.backup(older)
        older.execute("UPDATE alembic_version SET version_num = '0584bdc529eb'")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workspace / 'older.db'}")
    assert read_tracked(ws, "v1.0.0")[1] is None
    assert tracked_digests(ws, "v1.0.0") is None


def test_the_tracking_uri_and_schema_revision_found_without_mlflow_are_mlflows(tmp_path: Path) -> None:
    import os

    from mlflow.store.db.utils import _get_latest_schema_revision

    from hpo.tracking._data_space import _schema_head

    assert _schema_head() == _get_latest_schema_revision()
    folder = tmp_path / "a workspace"
    folder.mkdir()
    code = (
        "from hpo.tracking._data_space import _uri_without_mlflow as u; mine = u(); "
        "import mlflow; print(mine == mlflow.get_tracking_uri(), mine)"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    p = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert p.stdout.startswith("True sqlite:///"), p.stdout + p.stderr


def test_catboost_parameter_names_are_the_installed_catboosts() -> None:
    import inspect

    from catboost import CatBoostClassifier, CatBoostRegressor

    from hpo.models._catboost import known_params

    installed: set[str] = set()
    for cls in (CatBoostRegressor, CatBoostClassifier):
        installed |= set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    assert known_params() == installed


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite:///a.db",
        "sqlite:////abs/a%20b.db",
        "sqlite:////tmp/x%3Fy.db",
        "sqlite://",
        "sqlite:///",
        "sqlite:///:memory:",
        "sqlite:///file:x.db?mode=ro&uri=true",
        "sqlite:///a.db?timeout=3&uri=false",
        "sqlite://host/x.db",
        "sqlite://u:p@h:12/d.db",
        "sqlite:x.db",
        "sqlite+pysqlite:///x.db",
        "postgresql://u:p@h/db",
    ],
)
def test_the_sqlite_file_found_without_sqlalchemy_is_sqlalchemys(uri: str) -> None:
    from sqlalchemy.engine import make_url

    from hpo.tracking._store import _sqlite_file

    url = make_url(uri) if uri.startswith("sqlite:") and "://" in uri else None
    theirs = url and url.database and url.database != ":memory:" and url.query.get("uri") != "true"
    assert _sqlite_file(uri) == (Path(url.database) if url and theirs and url.database else None)
