"""`hpo delete` end to end: what it removes (the study, its HPO runs, its folder), what it keeps
(everything else), and when it refuses. Real storage, real MLflow store, real fits."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpo.workspace import load_workspace
from tests.conftest import invoke, shared_workspace, small_space, trials_of, write_space_as
from tests.test_export import on_terminal

PARENT, CHILD, OTHER, ODD = "small", "small-gen2", "other", "../odd"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A study, a study derived from it (warm start) with an analysis report, another study with a
    promoted trial, and a study Optuna made with a name that is no folder name, with its folder."""
    with shared_workspace(tmp_path_factory, "delete") as ws:
        space = small_space(n_trials=3)
        for s in (space, space | {"study": CHILD, "n_trials": 2, "derived_from": {"study": PARENT, "warm_start": True}}):
            code, _, err = invoke("run", str(write_space_as(ws, s, f"{s['study']}.yaml")), "--quiet")
            assert code == 0, err
        code, _, err = invoke("analyze", "--study", CHILD, "--noise-refits", "0", "--importance", "none")
        assert code == 0, err
        code, _, err = invoke("run", str(write_space_as(ws, space | {"study": OTHER, "n_trials": 2}, "other.yaml")), "--quiet")
        assert code == 0, err
        code, _, err = invoke("promote", "best", "--study", OTHER, "--allow-dirty")
        assert code == 0, err
        odd = optuna.create_study(study_name=ODD, storage=f"sqlite:///{ws / 'studies' / 'hpo.db'}")
        odd.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
        folder = load_workspace(ws).study_dir(ODD)
        folder.mkdir()
        (folder / "analysis.md").write_text("a report")
        yield ws


@pytest.fixture
def ws(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the built workspace for one test, since deleting changes it."""
    copy = tmp_path / built.name  # the same project name, so the same experiment names
    shutil.copytree(built, copy, ignore=shutil.ignore_patterns("*.db", "*-wal", "*-shm", "*.lock"))
    for db in built.rglob("*.db"):
        with sqlite3.connect(db) as src, sqlite3.connect(copy / db.relative_to(built)) as dst:
            src.backup(dst)
    monkeypatch.chdir(copy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{copy / 'mlflow.db'}")
    return copy


def runs() -> dict[str, tuple[str | None, str | None, str]]:
    """Every run in every experiment: run id -> (study tag, role tag, lifecycle stage)."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    c = MlflowClient()
    out = {}
    for e in c.search_experiments(view_type=ViewType.ALL):
        for r in c.search_runs([e.experiment_id], run_view_type=ViewType.ALL, max_results=1000):
            out[r.info.run_id] = (r.data.tags.get("hpo.study"), r.data.tags.get("hpo.role"), r.info.lifecycle_stage)
    return out


def studies(ws: Path) -> dict[str, int]:
    storage = f"sqlite:///{ws / 'studies' / 'hpo.db'}"
    return {s.study_name: len(trials_of(ws, s.study_name)) for s in optuna.get_all_study_summaries(storage)}


def files(ws: Path) -> list[str]:
    """Every file in the workspace but the two databases (which deleting writes)."""
    dbs = ("mlflow.db", "studies/hpo.db")
    return sorted(f for p in ws.rglob("*") if p.is_file() and not (f := str(p.relative_to(ws))).startswith(dbs))


def snapshot(ws: Path) -> tuple[Any, ...]:
    return studies(ws), runs(), files(ws)


def test_delete_removes_the_study_its_hpo_runs_and_its_folder_and_nothing_else(ws: Path) -> None:
    studies_before, runs_before, files_before = snapshot(ws)
    own = [t for t in trials_of(ws, CHILD) if "inherited_from" not in t.user_attrs]
    assert (ws / "studies" / CHILD / "analysis.html").is_file()

    code, out, err = invoke("delete", CHILD, "--yes")
    assert code == 0, err
    n = studies_before[CHILD]
    assert out == (
        f"Deleted study {CHILD}: {n} trial(s) from sqlite:///{ws / 'studies' / 'hpo.db'}, {len(own) + 1} MLflow run(s) "
        f"(soft-deleted: `mlflow gc` removes them for good), studies/{CHILD}/\n"
    )
    assert f"delete   {len(own) + 1} run(s) in {ws.name}-HPO-v0.1.0" in err

    assert studies(ws) == {k: v for k, v in studies_before.items() if k != CHILD}
    after = runs()
    gone = {r for r, (study, _, _) in runs_before.items() if study == CHILD}
    assert sorted(str(runs_before[r][1]) for r in gone) == ["study"] + ["trial"] * len(own)
    assert all(after[r][2] == "deleted" for r in gone)  # soft-deleted: `mlflow runs restore` brings them back
    assert {r: v for r, v in after.items() if r not in gone} == {r: v for r, v in runs_before.items() if r not in gone}
    assert files(ws) == [f for f in files_before if not f.startswith(f"studies/{CHILD}/")]
    assert not (ws / "studies" / CHILD).exists() and (ws / "search_spaces" / f"{CHILD}.yaml").is_file()


def test_promoted_runs_and_derived_studies_refuse_it_unless_forced_and_are_kept(ws: Path) -> None:
    before = snapshot(ws)
    code, out, err = invoke("delete", PARENT, "--yes")
    assert code == 2 and out == ""
    assert err.splitlines()[-1] == (
        f"error: study '{PARENT}' has derived studies {CHILD} (they keep their inherited trials); "
        "nothing was deleted (--force deletes it anyway)"
    )
    code, out, err = invoke("delete", OTHER, "--yes")
    assert code == 2 and f"has 1 promoted run(s) in {ws.name}-Data-v0.1.0 (kept even with --force)" in err
    assert snapshot(ws) == before

    promoted = [r for r, (study, role, _) in before[1].items() if study == OTHER and role == "promoted"]
    inherited = [t for t in trials_of(ws, CHILD) if "inherited_from" in t.user_attrs]
    code, out, err = invoke("delete", OTHER, "--yes", "--force")
    assert code == 0, err
    assert out.splitlines()[-1] == "Kept its 1 promoted run(s) in the data-version experiment"
    after = runs()
    assert [after[r][2] for r in promoted] == ["active"]
    assert {after[r][2] for r, (study, role, _) in before[1].items() if study == OTHER and role != "promoted"} == {"deleted"}

    code, out, err = invoke("delete", PARENT, "--yes", "--force")
    assert code == 0, err
    assert out.splitlines()[-1] == f"Kept its derived studies: {CHILD}"
    assert set(studies(ws)) == {CHILD, ODD}
    code, out, err = invoke("show", CHILD)  # the child stands alone, with its inherited trials
    assert code == 0 and f"lineage      {CHILD} <- {PARENT}" in out
    assert invoke("export", "--study", CHILD)[1].count(f",{PARENT}#") == len(inherited) > 0


def test_it_asks_first_and_refuses_to_ask_a_stdin_that_is_not_a_terminal(ws: Path) -> None:
    before = snapshot(ws)
    code, out, err = invoke("delete", CHILD)  # Typer's runner: stdin is not a terminal
    assert code == 2 and out == ""
    assert (
        err.splitlines()[0] == f"delete   study '{CHILD}': {before[0][CHILD]} trial(s) in sqlite:///{ws / 'studies' / 'hpo.db'}"
    )
    assert err.splitlines()[-1] == "error: stdin is not a terminal, so hpo cannot ask: pass --yes to delete; nothing was deleted"
    code, shown, err = on_terminal("delete", CHILD, answer="n\n")
    assert code == 1 and f"Delete study '{CHILD}'? [y/N]" in err and err.endswith(f"error: study '{CHILD}' not deleted\n")
    assert snapshot(ws) == before


def test_a_study_named_like_a_path_loses_only_its_own_folder(ws: Path) -> None:
    folder = load_workspace(ws).study_dir(ODD)
    assert folder.parent == ws / "studies" and folder.is_dir()
    (ws / "odd").mkdir()  # where the name points, outside studies/: not the study's
    code, out, err = invoke("delete", ODD, "--yes")
    assert code == 0, err
    assert out.endswith(f"0 MLflow run(s) (soft-deleted: `mlflow gc` removes them for good), studies/{folder.name}/\n")
    assert not folder.exists() and (ws / "odd").is_dir() and (ws / "studies" / "hpo.db").is_file()
    assert set(studies(ws)) == {PARENT, CHILD, OTHER}


def test_unknown_study_or_corrupt_storage_is_one_line_and_deletes_nothing(ws: Path) -> None:
    (ws / "broken.db").write_bytes(b"not an SQLite database" * 100)
    before = snapshot(ws)
    code, out, err = invoke("delete", "nope", "--yes")
    assert code == 2 and err == (
        f"error: no study 'nope' in sqlite:///{ws / 'studies' / 'hpo.db'} (studies: {PARENT}, {CHILD}, {OTHER}, {ODD})\n"
    )
    code, out, err = invoke("delete", CHILD, "--yes", "--storage", "sqlite:///broken.db")
    assert code == 2 and len(err.splitlines()) == 1 and "broken.db is not a readable SQLite database" in err
    assert snapshot(ws) == before


def test_unreachable_mlflow_refuses_unless_forced_and_then_its_runs_are_left(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    studies_before, runs_before, _ = snapshot(ws)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    code, out, err = invoke("delete", CHILD, "--yes")
    assert code == 2 and out == ""
    assert err.splitlines()[-1] == (
        "error: MLflow at http://127.0.0.1:1 is unreachable ([Errno 111] Connection refused), so its promoted runs cannot "
        "be checked nor its HPO runs deleted; nothing was deleted (--force deletes it anyway)"
    )
    assert studies(ws) == studies_before and (ws / "studies" / CHILD).is_dir()

    code, out, err = invoke("delete", CHILD, "--yes", "--force")
    assert code == 0, err
    assert out.splitlines() == [
        f"Deleted study {CHILD}: {studies_before[CHILD]} trial(s) from sqlite:///{ws / 'studies' / 'hpo.db'}, studies/{CHILD}/",
        f"Kept its runs in MLflow (tag hpo.study = '{CHILD}'): MLflow at http://127.0.0.1:1 is unreachable "
        "([Errno 111] Connection refused)",
    ]
    assert CHILD not in studies(ws) and not (ws / "studies" / CHILD).exists()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{ws / 'mlflow.db'}")
    assert runs() == runs_before
