"""`hpo export` end to end: every column against the trials in the real storage, each format, stdout."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import math
import os
import pty
import select
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from tests.conftest import invoke, run_cli, shared_workspace, small_space, trials_of, write_space_as

PARENT, CHILD = "small", "small-gen2"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A study and a study warm-started from it, with COMPLETE, PRUNED, FAIL and inherited trials.

    CatBoost refuses `subsample` with Bayesian bootstrap, so those trials fail; the median pruner
    prunes poor learning rates.
    """
    with shared_workspace(tmp_path_factory, "export") as ws:
        params = small_space()["params"] | {
            "learning_rate": {"type": "float", "low": 0.0005, "high": 0.5, "log": True},
            "bootstrap_type": {"type": "categorical", "choices": ["Bayesian", "Bernoulli"]},
        }
        space = small_space(
            n_trials=5,
            params=params,
            fixed={"iterations": 60, "thread_count": 1, "subsample": 0.5},
            pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 10},
        )
        code, _, err = invoke("run", str(write_space_as(ws, space, "small.yaml")), "--quiet")
        assert code == 0, err
        child = space | {"study": CHILD, "n_trials": 4, "derived_from": {"study": PARENT, "warm_start": True}}
        code, _, err = invoke("run", str(write_space_as(ws, child, "small-gen2.yaml")), "--quiet")
        assert code == 0, err
        yield ws


def expected(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A trial's row, as docs/export-delete.md describes it, read from the trial itself."""
    origin = t.user_attrs.get("inherited_from")
    start = t.datetime_start.astimezone(datetime.UTC) if t.datetime_start else None
    end = t.datetime_complete.astimezone(datetime.UTC) if t.datetime_complete else None
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        **{f"params_{k}": v for k, v in t.params.items()},
        "seed": t.user_attrs.get("seed"),
        "datetime_start": start,
        "datetime_complete": end,
        "duration_seconds": (end - start).total_seconds() if start and end else None,
        "n_intermediate_values": len(t.intermediate_values),
        "inherited_from": f"{origin['study']}#{origin['trial']}" if origin else None,
        "error": t.user_attrs.get("error"),
        "mlflow_run_id": t.user_attrs.get("mlflow_run_id"),
    }


def empty(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def check_rows(rows: list[dict[str, Any]], trials: list[optuna.trial.FrozenTrial], parse_time: Any = None) -> None:
    assert [r["number"] for r in rows] == [t.number for t in trials]
    for row, t in zip(rows, trials, strict=True):
        want = expected(t)
        for column in row:
            if column.startswith("params_") and column not in want:
                want[column] = None  # a parameter this trial never got (it failed before)
        assert set(row) == set(want), t.number
        for column, value in want.items():
            got = row[column]
            if parse_time and column.startswith("datetime_") and not empty(got):
                got = parse_time(got)
            assert (empty(got) and empty(value)) or got == value, (t.number, column, got, value)


def test_csv_on_stdout_has_a_row_per_trial_with_every_column_as_the_storage_holds_it(built: Path) -> None:
    code, out, err = invoke("export", "--study", CHILD)
    assert code == 0, err
    df = pd.read_csv(io.StringIO(out), keep_default_na=False, na_values=[""])
    trials = trials_of(built, CHILD)
    check_rows(df.to_dict(orient="records"), trials, parse_time=pd.Timestamp)
    assert list(df.columns) == [
        "number",
        "state",
        "value",
        "params_bootstrap_type",
        "params_depth",
        "params_learning_rate",
        "seed",
        "datetime_start",
        "datetime_complete",
        "duration_seconds",
        "n_intermediate_values",
        "inherited_from",
        "error",
        "mlflow_run_id",
    ]
    # The study this fixture builds has every kind of trial the columns describe.
    assert {"COMPLETE", "PRUNED", "FAIL"} <= set(df.state)
    inherited = df[df.inherited_from.notna()]
    parent = {t.number: t for t in trials_of(built, PARENT)}
    assert len(inherited) and all(r.startswith(f"{PARENT}#") for r in inherited.inherited_from)
    for _, row in inherited.iterrows():  # the parent's value and seed, and no MLflow run of its own
        origin = parent[int(row.inherited_from.split("#")[1])]
        assert row.value == origin.value and row.seed == origin.user_attrs["seed"] and empty(row.mlflow_run_id)
    failed = df[df.state == "FAIL"]
    assert all("bayesian bootstrap doesn't support 'subsample'" in e for e in failed.error) and failed.value.isna().all()
    pruned = df[df.state == "PRUNED"]
    assert (pruned.n_intermediate_values < df[df.state == "COMPLETE"].n_intermediate_values.max()).all()


def test_the_mlflow_run_id_is_the_trials_run_in_its_hpo_space(built: Path) -> None:
    from mlflow import MlflowClient

    df = pd.read_csv(io.StringIO(invoke("export", "--study", CHILD)[1]))
    c = MlflowClient()
    exp = c.get_experiment_by_name(f"{built.name}-HPO-v0.1.0")
    runs = c.search_runs([exp.experiment_id], filter_string=f"tags.`hpo.study` = '{CHILD}' and tags.`hpo.role` = 'trial'")
    by_number = {int(r.data.tags["hpo.trial_number"]): r.info.run_id for r in runs}
    own = df[df.inherited_from.isna()]
    assert len(own) and dict(zip(own.number, own.mlflow_run_id, strict=True)) == by_number


def test_the_default_study_is_the_newest_and_json_streams_to_stdout(built: Path) -> None:
    code, out, err = invoke("export", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    check_rows(rows, trials_of(built, CHILD), parse_time=datetime.datetime.fromisoformat)
    assert out == invoke("export", "--study", CHILD, "-f", "JSON")[1]


def test_files_in_each_format_read_back_as_the_library_returns_them(built: Path) -> None:
    from hpo.export import export_trials

    frame = export_trials(PARENT)
    assert frame.attrs["study"] == PARENT and len(frame) == len(trials_of(built, PARENT))
    check_rows(frame.to_dict(orient="records"), trials_of(built, PARENT))
    assert str(frame["seed"].dtype) == "Int64" and str(frame["datetime_start"].dtype) == "datetime64[us, UTC]"

    # The suffix of -o picks the format; an existing file is replaced.
    (built / "trials.parquet").write_text("old")
    code, out, err = invoke("export", "--study", PARENT, "-o", "trials.parquet")
    assert code == 0 and out == "" and f"{len(frame)} trial(s) of study {PARENT} written to trials.parquet (parquet)" in err
    pd.testing.assert_frame_equal(pd.read_parquet(built / "trials.parquet"), frame, check_like=False)

    assert invoke("export", "--study", PARENT, "-o", "trials.json")[0] == 0
    check_rows(json.loads((built / "trials.json").read_text()), trials_of(built, PARENT), datetime.datetime.fromisoformat)

    assert invoke("export", "--study", PARENT, "-o", "trials.txt")[0] == 0  # no known suffix: csv
    back = pd.read_csv(built / "trials.txt", keep_default_na=False, na_values=[""])
    check_rows(back.to_dict(orient="records"), trials_of(built, PARENT), parse_time=pd.Timestamp)
    assert not [p.name for p in built.iterdir() if p.name.endswith(".tmp")]


def on_terminal(*args: str, answer: str = "") -> tuple[int, str, str]:
    """Run an `hpo` verb in this process with stdin and stdout on a pseudo-terminal (a real one, so
    they are terminals to hpo), typing ``answer``: exit code, what the terminal showed, stderr."""
    from hpo.cli import app

    primary, secondary = pty.openpty()
    err = io.StringIO()
    saved = sys.stdin
    try:
        with open(secondary, closefd=False) as tty_in, open(secondary, "w", closefd=False) as tty_out:
            os.write(primary, answer.encode())
            sys.stdin = tty_in
            with contextlib.redirect_stdout(tty_out), contextlib.redirect_stderr(err):
                code = app(list(args), prog_name="hpo", standalone_mode=False) or 0
        shown = b""
        while select.select([primary], [], [], 0.1)[0]:
            shown += os.read(primary, 4096)
    finally:
        sys.stdin = saved
        os.close(primary)
        os.close(secondary)
    return code, shown.decode(), err.getvalue()


def test_bad_input_is_one_line_exit_2_and_writes_nothing(built: Path) -> None:
    code, out, err = invoke("export", "--study", "nope", "-o", "nope.csv")
    db = built / "studies" / "hpo.db"
    assert code == 2 and err == f"error: no study 'nope' in sqlite:///{db} (studies: {PARENT}, {CHILD})\n"
    assert not (built / "nope.csv").exists() and out == ""

    code, _, err = invoke("export", "--format", "xlsx", "-o", "nope.xlsx")
    assert code == 2 and err == "error: --format must be one of csv, json, parquet, but got 'xlsx'\n"
    assert not (built / "nope.xlsx").exists()

    code, _, err = invoke("export", "-o", "no/such/folder/t.csv")
    assert code == 2 and err == "error: -o no/such/folder/t.csv: cannot write it (no such folder no/such/folder)\n"

    (built / "broken.db").write_bytes(b"this is not an SQLite database" * 100)
    code, _, err = invoke("export", "--storage", "sqlite:///broken.db", "-o", "nope.csv")
    assert code == 2 and len(err.splitlines()) == 1 and "broken.db is not a readable SQLite database" in err
    assert not (built / "nope.csv").exists()

    # Parquet is binary: not onto a terminal, but into a pipe (or a file) it goes.
    code, shown, err = on_terminal("export", "--format", "parquet")
    assert code == 2 and shown == ""
    assert err == "error: parquet is binary and stdout is a terminal; write it to a file with -o FILE\n"
    from typer.testing import CliRunner

    from hpo.cli import app
    from hpo.export import export_trials

    piped = CliRunner().invoke(app, ["export", "--study", PARENT, "-f", "parquet"])
    assert piped.exit_code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(piped.stdout_bytes)), export_trials(PARENT))


# --- what -o may replace -------------------------------------------------------------------------


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_o_never_replaces_a_store_of_the_workspace_nor_a_database(built: Path) -> None:
    db, space = built / "studies" / "hpo.db", built / "search_spaces" / "small.yaml"
    (built / "copy.db").write_bytes(db.read_bytes())  # any SQLite database, wherever it is
    kept = {p: digest(p) for p in (db, built / "mlflow.db", space, built / "copy.db")}
    refused = {
        "studies/hpo.db": "is the Optuna storage (or a file of it)",
        "studies/../studies/hpo.db": "is the Optuna storage (or a file of it)",
        "studies/hpo.db-wal": "is the Optuna storage (or a file of it)",
        "studies/hpo.db.lock": "is the Optuna storage (or a file of it)",
        "mlflow.db": "is the MLflow store (or a file of it)",
        "search_spaces/small.yaml": f"lies in the search space folder ({built / 'search_spaces'})",
        "copy.db": "is an SQLite database; hpo export never replaces a database",
    }
    for output, why in refused.items():
        code, out, err = invoke("export", "--study", PARENT, "-o", output)
        assert code == 2 and out == "" and err.startswith(f"error: -o {output}: {why}") and len(err.splitlines()) == 1, err
    assert {p: digest(p) for p in kept} == kept  # byte for byte
    assert not [p.name for p in built.rglob("*.tmp")]


def test_o_refuses_a_fifo_a_device_and_a_folder_and_leaves_them_as_they_were(built: Path) -> None:
    os.mkfifo(built / "pipe")
    (built / "folder").mkdir()
    nodes = ["pipe", "folder", "/dev/null"]
    if os.geteuid() == 0:  # as root a rename replaces a device node; a copy of /dev/null's keeps /dev/ safe
        os.mknod(built / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        nodes.append("null")
    before = {n: os.lstat(built / n) for n in nodes}
    for node in nodes:  # the real CLI, which must not hang on the FIFO
        r = run_cli("export", "--study", PARENT, "-o", node, cwd=built, timeout=30)
        what = "a FIFO (named pipe)" if node == "pipe" else "a folder" if node == "folder" else "a character device"
        assert r.returncode == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
        assert r.stderr.startswith(f"error: -o {node}: is {what}")
        after = os.lstat(built / node)
        assert (after.st_ino, after.st_mode, after.st_rdev) == (before[node].st_ino, before[node].st_mode, before[node].st_rdev)


def test_o_follows_a_symbolic_link_only_when_asked_and_checks_its_target(built: Path) -> None:
    (built / "real.csv").write_text("old")
    (built / "link.csv").symlink_to("real.csv")
    code, _, err = invoke("export", "--study", PARENT, "-o", "link.csv")
    assert code == 2 and err == (
        "error: -o link.csv: is a symbolic link (to real.csv); "
        "hpo export replaces only a regular file (--follow-symlinks writes to its target)\n"
    )
    assert (built / "real.csv").read_text() == "old" and (built / "link.csv").is_symlink()

    code, _, err = invoke("export", "--study", PARENT, "-o", "link.csv", "--follow-symlinks")
    assert code == 0, err
    assert (built / "link.csv").is_symlink() and os.readlink(built / "link.csv") == "real.csv"
    assert len(pd.read_csv(built / "real.csv")) == len(trials_of(built, PARENT))

    (built / "to-db").symlink_to(built / "studies" / "hpo.db")
    (built / "to-null").symlink_to("/dev/null")
    kept = digest(built / "studies" / "hpo.db")
    for link, why in (("to-db", "is the Optuna storage"), ("to-null", "is a character device")):
        code, _, err = invoke("export", "--study", PARENT, "-o", link, "--follow-symlinks")
        assert code == 2 and why in err and len(err.splitlines()) == 1, err
    assert digest(built / "studies" / "hpo.db") == kept and (built / "to-db").is_symlink()


def test_a_file_swapped_or_made_while_exporting_is_not_replaced(built: Path) -> None:
    from hpo.errors import HpoError
    from hpo.export import check_target, write_file

    # Checked as a regular file, then swapped for a FIFO before the rename: the FIFO stays.
    (built / "swap.csv").write_text("old")
    target = check_target(Path("swap.csv"))
    (built / "swap.csv").unlink()
    os.mkfifo(built / "swap.csv")
    with pytest.raises(HpoError, match="changed while hpo exported"):
        write_file(b"new", target)
    assert stat.S_ISFIFO(os.lstat(built / "swap.csv").st_mode)

    # Free when checked, taken (a symbolic link) before the file goes in: the link stays.
    target = check_target(Path("late.csv"))
    (built / "late.csv").symlink_to("studies/hpo.db")
    with pytest.raises(HpoError, match="changed while hpo exported"):
        write_file(b"new", target)
    assert (built / "late.csv").is_symlink()
    assert not [p.name for p in built.iterdir() if p.name.endswith(".tmp")]

    # A regular file keeps its permissions when replaced.
    (built / "mode.csv").write_text("old")
    (built / "mode.csv").chmod(0o640)
    write_file(b"new", check_target(Path("mode.csv")))
    assert (built / "mode.csv").read_bytes() == b"new" and stat.S_IMODE(os.stat(built / "mode.csv").st_mode) == 0o640
