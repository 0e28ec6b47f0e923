"""`hpo run` end to end: real CatBoost fits, a real Optuna SQLite storage in a temp workspace."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from hpo.cli import app
from hpo.models import trial_seed
from tests.conftest import run_cli, small_space, write_space

DB = Path("studies") / "hpo.db"


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["run", *args])
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def load(name: str = "small", root: Path = Path(".")) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{root / DB}")


def states(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def test_small_study_on_the_default_storage(workspace: Path) -> None:
    space = write_space(workspace)
    code, out, _ = run(str(space), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["states"] == {"COMPLETE": 4} and result["ran"] == 4 and result["created"]
    assert result["storage"] == f"sqlite:///{workspace / DB}"

    study = load()
    attrs = study.user_attrs
    assert attrs["space_yaml"] == space.read_text()
    assert attrs["data_version"] == "v0.1.0"
    assert set(attrs["data_digests"]) == {"train", "validation", "test"}
    assert attrs["src_version"] == "unknown" and attrs["dirty"] is None  # no git repository here
    assert attrs["data_overview"]["rows"] == {"train": 266, "validation": 88, "test": 88}
    for t in study.trials:
        assert t.user_attrs["seed"] == trial_seed(7, t.number)
        assert set(t.user_attrs["validation_metrics"]) == {"pearson_r", "spearman_r", "r2", "rmse", "mae"}
        assert t.value == pytest.approx(t.user_attrs["validation_metrics"]["pearson_r"])
    assert result["best"]["value"] == max(t.value for t in study.trials)


def test_same_space_same_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        assert run(str(write_space(tmp_path / name)), "--quiet")[0] == 0
        values.append([(t.params, t.value) for t in load().trials])
    assert values[0] == values[1]


def test_rerun_resumes_up_to_n_trials(workspace: Path) -> None:
    space = write_space(workspace, n_trials=2)
    assert json.loads(run(str(space), "--json")[1])["ran"] == 2
    first = [(t.number, t.params) for t in load().trials]

    write_space(workspace, n_trials=4)  # raising the budget is allowed
    result = json.loads(run(str(space), "--json")[1])
    assert result["ran"] == 2 and not result["created"] and result["states"] == {"COMPLETE": 4}
    assert [(t.number, t.params) for t in load().trials][:2] == first

    result = json.loads(run(str(space), "--json")[1])
    assert result["ran"] == 0 and result["states"] == {"COMPLETE": 4}


def test_changed_space_is_refused_and_nothing_is_written(workspace: Path) -> None:
    space = write_space(workspace, n_trials=2)
    assert run(str(space), "--quiet")[0] == 0
    write_space(workspace, n_trials=2, params={"depth": {"type": "int", "low": 2, "high": 6}})
    code, _, err = run(str(space))
    assert code != 0
    assert "space.yaml: study 'small' already exists" in err and "new `study` name" in err
    assert len(err.strip().splitlines()) == 1
    assert len(load().trials) == 2


def test_changed_data_is_refused(workspace: Path) -> None:
    space = write_space(workspace, n_trials=1)
    assert run(str(space), "--quiet")[0] == 0
    data = small_space()["data"] | {"split": {"validation": 0.2, "test": 0.2, "seed": 1}}
    write_space(workspace, n_trials=1, data=data)
    code, _, err = run(str(space))
    # other data under the same version name: the data ledger refuses it, with a way out
    assert code != 0 and "data version v0.1.0 is recorded with other data" in err and "call this data v0.2.0" in err


def test_a_failing_trial_is_recorded_and_the_study_goes_on(workspace: Path) -> None:
    # CatBoost rejects `subsample` with Bayesian bootstrap: those trials raise, the others fit.
    params = small_space()["params"] | {"bootstrap_type": {"type": "categorical", "choices": ["Bayesian", "Bernoulli"]}}
    space = write_space(workspace, n_trials=6, params=params, fixed={"iterations": 30, "thread_count": 1, "subsample": 0.5})
    code, out, _ = run(str(space), "--json")
    assert code == 0
    study = load()
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert failed and len(failed) < 6
    assert all(t.params["bootstrap_type"] == "Bayesian" for t in failed)
    assert all("bayesian bootstrap doesn't support 'subsample'" in t.user_attrs["error"] for t in failed)
    assert json.loads(out)["states"]["COMPLETE"] == 6 - len(failed)


def test_no_completed_trial_exits_non_zero(workspace: Path) -> None:
    space = write_space(workspace, n_trials=2, fixed={"iterations": 10, "loss_function": "NoSuchLoss"})
    code, _, err = run(str(space))
    assert code == 1
    assert "no trial completed" in err and "2 fail" in err


def test_pruning_yields_pruned_trials(workspace: Path) -> None:
    params = {"learning_rate": {"type": "float", "low": 0.0005, "high": 0.5, "log": True}}
    space = write_space(
        workspace,
        n_trials=12,
        params=params,
        pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 10},
        fixed={"iterations": 100, "thread_count": 1, "depth": 3},
    )
    assert run(str(space), "--quiet")[0] == 0
    trials = load().trials
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert pruned, states(load())
    # a pruned trial stopped early: fewer reported steps than a full fit
    assert max(len(t.intermediate_values) for t in pruned) < min(len(t.intermediate_values) for t in complete)
    assert all(max(t.intermediate_values) < 99 for t in pruned)
    # Each decision is Optuna's median rule over the trials completed before this one started
    # (hpo reads them once per trial, not at every report): pruned at the last step it reported,
    # at no step before, and a complete trial at no step at all.
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=10)
    for t in trials:
        before = optuna.create_study(direction="maximize")
        before.add_trials([u for u in complete if u.number < t.number])
        steps = sorted(t.intermediate_values)
        decisions = [pruner.prune(before, _upto(t, step)) for step in steps]
        assert decisions == [False] * (len(steps) - 1) + [t.state.name == "PRUNED"], t.number


def _upto(t: optuna.trial.FrozenTrial, step: int) -> optuna.trial.FrozenTrial:
    values = {s: v for s, v in t.intermediate_values.items() if s <= step}
    return optuna.trial.create_trial(
        state=optuna.trial.TrialState.RUNNING, params=t.params, distributions=t.distributions, intermediate_values=values
    )


def test_grid_runs_every_point_once(workspace: Path) -> None:
    space = write_space(
        workspace,
        n_trials=None,
        sampler={"name": "grid"},
        params={"depth": {"type": "int", "low": 2, "high": 3}, "l2_leaf_reg": {"type": "float", "low": 1, "high": 2, "step": 1}},
    )
    assert run(str(space), "--quiet")[0] == 0
    assert sorted((t.params["depth"], t.params["l2_leaf_reg"]) for t in load().trials) == [(2, 1), (2, 2), (3, 1), (3, 2)]


def test_storage_option_and_environment_variable(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    space = write_space(workspace, n_trials=1)
    other = workspace / "elsewhere.db"
    assert run(str(space), "--quiet", "--storage", f"sqlite:///{other}")[0] == 0
    assert other.exists() and not (workspace / DB).exists()
    env_db = workspace / "env.db"
    monkeypatch.setenv("HPO_STORAGE", f"sqlite:///{env_db}")
    assert run(str(space), "--quiet")[0] == 0
    assert env_db.exists() and not (workspace / DB).exists()


def test_the_library_names_its_keywords_where_hpo_run_names_its_flags(workspace: Path) -> None:
    """A refusal names what the reader can change: `jobs` from Python, --jobs from `hpo run` (same words)."""
    from hpo.errors import HpoError
    from hpo.run import run_study
    from hpo.storage import load_named_or_newest, open_storage

    space = write_space(
        workspace, sampler={"name": "grid"}, n_trials=None, params={"depth": {"type": "int", "low": 2, "high": 3}}
    )
    refused = {
        "jobs": ({"jobs": 0}, "must be >= 1, but got 0"),
        "n-trials": ({"n_trials": 0}, "must be a whole number from 1 to 1000000000, but got 0"),
        "timeout": ({"timeout": -1.0}, "must be seconds above 0 and at most 31622400 (366 days), but got -1.0"),
        "grid": ({"n_trials": 3}, "must be <= the grid size 2 of sampler `grid`, but got 3"),
    }
    for flag, (kwargs, rule) in refused.items():
        keyword, value = next(iter(kwargs.items()))
        with pytest.raises(HpoError) as e:
            run_study(space, **kwargs)  # type: ignore[arg-type]
        assert str(e.value) == f"`{keyword}` {rule}"
        cli_flag = "--n-trials" if flag == "grid" else f"--{flag}"
        assert run(str(space), cli_flag, str(value)) == (2, "", f"error: {cli_flag} {rule}\n")
    assert not (workspace / "studies").exists()

    missing = f"sqlite:///{workspace / 'none.db'}"
    with pytest.raises(HpoError, match=r"no such database \(run `hpo run` first, or pass `storage`\)$"):
        open_storage(missing, create=False)
    r = CliRunner().invoke(app, ["studies", "--storage", missing])
    assert r.exit_code == 2 and r.stderr.endswith("no such database (run `hpo run` first, or pass --storage)\n"), r.stderr
    empty = f"sqlite:///{workspace / 'empty.db'}"
    optuna.storages.RDBStorage(empty)  # a storage with no study in it
    with pytest.raises(HpoError, match=r"; run `hpo run SPACE.yaml` first, or pass `storage`$"):
        load_named_or_newest(empty, None)
    r = CliRunner().invoke(app, ["export", "--storage", empty])
    assert r.exit_code == 2 and r.stderr.endswith("; run `hpo run SPACE.yaml` first, or pass --storage\n"), r.stderr


def test_jobs_two_share_one_budget(workspace: Path) -> None:
    # 12 slots: more than the 8 enqueued ahead, so the workers top the budget up as they go.
    space = write_space(workspace, n_trials=12, fixed={"iterations": 60, "thread_count": 1})
    r = run_cli("run", str(space), "--jobs", "2", "--json", cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert "locked" not in r.stderr and "Traceback" not in r.stderr, r.stderr  # e.g. a trial claimed twice
    trials = load(root=workspace).trials
    assert len(trials) == 12 and {t.state.name for t in trials} == {"COMPLETE"}
    assert sorted(t.number for t in trials) == list(range(12))
    assert sorted(t.user_attrs["budget_slot"] for t in trials) == list(range(12))
    assert len({t.user_attrs["worker"] for t in trials}) == 2


def test_a_budget_of_a_billion_with_a_timeout_runs_until_the_timeout(workspace: Path) -> None:
    # Every slot was enqueued up front: 3 GB in 8 s, a MemoryError, and a study with no trials.
    space = write_space(workspace, n_trials=10**9, timeout=3, fixed={"iterations": 20, "thread_count": 1})
    assert run_cli("validate", str(space), cwd=workspace).returncode == 0
    start = time.time()
    r = run_cli("run", str(space), "--json", cwd=workspace, timeout=120)
    assert r.returncode == 0, r.stderr
    assert time.time() - start < 60
    result = json.loads(r.stdout)
    assert result["states"]["COMPLETE"] >= 1
    counts = states(load(root=workspace))
    assert counts.get("WAITING", 0) <= 8  # the budget is enqueued a few slots ahead, not all at once
    assert sum(counts.values()) < 1000
    slots = sorted(t.user_attrs["budget_slot"] for t in load(root=workspace).trials)
    assert slots == list(range(len(slots)))  # the lowest free slots, each once


def test_ctrl_c_stops_after_the_running_trial_and_keeps_completed_ones(workspace: Path) -> None:
    space = write_space(workspace, n_trials=40, fixed={"iterations": 150, "thread_count": 1})
    proc = _start_run(space, workspace)
    deadline = time.time() + 120
    while time.time() < deadline and _count(workspace, "COMPLETE") < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["interrupted"]
    done = result["states"]["COMPLETE"]
    assert 2 <= done < 40
    assert _count(workspace, "RUNNING") == 0
    # the rest of the budget is still queued, and a second run finishes it
    r = run_cli("run", str(space), "--json", cwd=workspace)
    assert r.returncode == 0 and json.loads(r.stdout)["states"] == {"COMPLETE": 40}


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_second_ctrl_c_inside_a_catboost_fit_fails_the_trial_and_requeues_its_slot(workspace: Path, jobs: int) -> None:
    # Long fits, so that both signals land inside CatBoost: the second comes back from CatBoost's
    # callback as a CatBoostError, which used to be recorded as an ordinary FAIL, never retried.
    # With --jobs 2 the workers are forked from hpo run, and each aborts its own trial.
    space = write_space(
        workspace,
        n_trials=3,
        pruner={"name": "none"},
        params={"depth": {"type": "int", "low": 8, "high": 8}},
        fixed={"iterations": 100000, "thread_count": 1},
    )
    proc = _start_run(space, workspace, "--jobs", str(jobs))
    deadline = time.time() + 120
    while time.time() < deadline and _count(workspace, "RUNNING") < jobs:
        time.sleep(0.2)
    time.sleep(2)  # well inside the fit
    proc.send_signal(signal.SIGINT)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err  # no trial completed
    assert "Traceback" not in err, err
    trials = load(root=workspace).trials
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(failed) == jobs
    for t in failed:
        assert t.user_attrs["error"] == "interrupted (Ctrl-C); retried in the same budget slot"
        assert "traceback" not in t.user_attrs
        slot = t.user_attrs["budget_slot"]
        retry = [u for u in trials if u.state.name == "WAITING" and u.user_attrs.get("budget_slot") == slot]
        assert len(retry) == 1 and retry[0].user_attrs["seed"] == t.user_attrs["seed"]
    assert _count(workspace, "RUNNING") == 0


def test_a_second_ctrl_c_that_training_code_swallows_still_fails_the_trial(workspace: Path) -> None:
    # Training loops catch KeyboardInterrupt to stop early and return what they have (so does
    # CatBoost's Cython callback, by accident). The model cut short must not be recorded COMPLETE.
    (workspace / "train_swallows.py").write_text(
        "import pathlib, time\n"
        "from sklearn.linear_model import Ridge\n\n\n"
        "def fit(params, train):\n"
        "    pathlib.Path('fitting').touch()\n"
        "    try:\n"
        "        while True:\n"
        "            time.sleep(0.05)\n"
        "    except KeyboardInterrupt:\n"
        "        pass  # stop early, keep the model\n"
        "    return Ridge(alpha=params['alpha']).fit(train.X, train.y)\n"
    )
    space = write_space(
        workspace,
        model="train_swallows:fit",
        metric="r2",
        n_trials=2,
        params={"alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}},
        fixed=None,
    )
    proc = _start_run(space, workspace)
    deadline = time.time() + 120
    while time.time() < deadline and not (workspace / "fitting").exists() and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in err, err
    trials = load(root=workspace).trials
    assert [t.state.name for t in trials if t.state.name != "WAITING"] == ["FAIL"], err
    assert trials[0].user_attrs["error"] == "interrupted (Ctrl-C); retried in the same budget slot"
    assert any(t.state.name == "WAITING" and t.user_attrs.get("seed") == trials[0].user_attrs["seed"] for t in trials)


def _start_run(space: Path, workspace: Path, *options: str) -> subprocess.Popen[str]:
    """`hpo run SPACE --json` in a process of its own, for tests that send it signals."""
    return subprocess.Popen(
        [sys.executable, "-m", "hpo", "run", str(space), "--json", *options],
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _count(ws: Path, state: str) -> int:
    if not (ws / DB).exists():
        return 0
    con = sqlite3.connect(ws / DB, timeout=30)
    try:
        return con.execute("select count(*) from trials where state = ?", (state,)).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


BAD_INPUT = {
    "missing file": (None, "nope.yaml: file not found"),
    "invalid yaml": ("study: [a\n", "invalid YAML (line 2"),
    "unknown key": (small_space(n_trails=3), "`n_trails` is not a known key"),
    "low > high": (small_space(params={"depth": {"type": "int", "low": 5, "high": 2}}), "`params.depth.low` must be <= `high`"),
    "unknown sampler": (small_space(sampler={"name": "bayes"}), "`sampler.name` must be one of"),
    "metric does not fit task": (small_space(metric="roc_auc"), "`metric` 'roc_auc' is a classification metric"),
    "missing data file": (
        small_space(data={"version": "v0.1.0", "source": "data/t.csv", "split": {"validation": 0.2, "test": 0.2}}),
        "`data.source` file not found",
    ),
    "target absent": (small_space(data=small_space()["data"] | {"target": "price"}), "`data.target` 'price' is not a column"),
    "n_trials zero": (small_space(n_trials=0), "`n_trials` must be > 0, but got 0"),
}


@pytest.mark.parametrize(("raw", "message"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_one_line_non_zero_exit_nothing_written(workspace: Path, raw: object, message: str) -> None:
    path = workspace / ("nope.yaml" if raw is None else "bad.yaml")
    if isinstance(raw, str):
        path.write_text(raw)
    elif raw is not None:
        path.write_text(yaml.safe_dump(raw))
    r = run_cli("run", str(path), cwd=workspace)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (workspace / "studies").exists() and not list(workspace.glob("*.db")) and not (workspace / "mlruns").exists()


def test_validate_checks_without_writing(workspace: Path) -> None:
    r = run_cli("validate", str(write_space(workspace)), cwd=workspace)
    assert r.returncode == 0 and "ok" in r.stdout and "regression" in r.stdout
    assert not (workspace / "studies").exists()
    bad = write_space(workspace, "bad.yaml", metric="logloss")
    r = run_cli("validate", str(bad), cwd=workspace)
    assert r.returncode == 2 and "`metric` 'logloss' is a classification metric" in r.stderr


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\nfrom hpo.cli import main\nsys.argv = ['hpo', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('mlflow', 'catboost', 'plotly', 'optuna', 'sklearn', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
