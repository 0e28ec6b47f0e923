"""The conventions a CLI user expects (--version, -h, completion, budget flags, --json), and the truth of a
run's outcome: trials that were only pruned are no failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hpo import __version__
from tests.conftest import invoke, run_cli, write_space, write_space_as

# A training function whose trials the median pruner stops once the file `bad` exists (they report
# far worse values than the trials before), and that raises once `boom` exists.
FLAKY = """
from pathlib import Path

from sklearn.linear_model import Ridge


def fit(params, train, seed, report):
    if Path("boom").exists():
        raise ValueError("boom: the training code broke")
    value = -100.0 if Path("bad").exists() else 0.5
    for step in range(3):
        if not report(step, value):
            return None
    return Ridge(alpha=params["alpha"]).fit(train.X, train.y)
"""


def flaky_space(ws: Path, n_trials: int) -> Path:
    space = {
        "study": "flaky",
        "data": {
            "version": "v0.1.0",
            "source": "sklearn:diabetes",
            "target": "target",
            "split": {"validation": 0.2, "test": 0.2},
        },
        "model": "train_flaky:fit",
        "metric": "r2",
        "n_trials": n_trials,
        "seed": 0,
        "sampler": {"name": "random"},
        "pruner": {"name": "median", "n_startup_trials": 0},
        "params": {"alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}},
    }
    return write_space_as(ws, space, "flaky.yaml")


def test_a_resume_whose_trials_are_all_pruned_is_no_failure(workspace: Path) -> None:
    (workspace / "train_flaky.py").write_text(FLAKY)
    code, _, err = invoke("run", str(flaky_space(workspace, 3)), "--quiet")
    assert code == 0, err

    # The resume raises the budget by editing the file; its trials report bad values and are pruned.
    (workspace / "bad").touch()
    space = flaky_space(workspace, 5)
    code, out, err = invoke("run", str(space), "--quiet")
    assert code == 0, err  # was 1: "no trial completed ...; see the `error` attribute of the failed trials"
    assert "error" not in err and "best trial #" in out
    (note,) = [line for line in err.splitlines() if line.startswith("note: ")]
    assert "no trial completed in this run: all 2 were pruned" in note and "the best is still trial #" in note

    code, out, _ = invoke("show", "flaky")
    assert "3 complete 2 pruned of budget 5" in out, out  # said "of budget 3", the first run's

    # The Python API returns the result (a notebook keeps it) and says the same.
    from hpo.run import run_study

    result = run_study(space, n_trials=6)
    assert result.completed_here == 0 and result.pruned_here == 1 and result.failed_here == 0
    assert result.note is not None and "all 1 were pruned" in result.note
    assert result.as_dict()["this_run"] == {"finished": 1, "completed": 0, "pruned": 1, "failed": 0}

    # Trials that FAIL are another matter: exit 1, how many failed, and where to read why.
    (workspace / "boom").touch()
    code, _, err = invoke("run", str(space), "--n-trials", "8")
    assert code == 1, err
    assert "error: study 'flaky': no trial completed in this run (2 failed); see the `error` attribute" in err
    assert "boom: the training code broke" in err and "Traceback" not in err


def test_version_help_alias_and_completion(workspace: Path) -> None:
    for flag in ("--version", "-V"):
        code, out, _ = invoke(flag)
        assert code == 0 and out == f"hpo {__version__}\n"
    for args in (["-h"], ["run", "-h"], ["export", "-h"], ["delete", "-h"]):
        code, out, _ = invoke(*args)
        assert code == 0 and "Usage: hpo" in out and "--help" in out and "-h" in out, args
    code, out, _ = invoke("--help")
    assert "--install-completion" in out and "--show-completion" in out
    r = run_cli("--show-completion", "bash", cwd=workspace)
    assert r.returncode == 0 and "_hpo_completion" in r.stdout and "complete " in r.stdout, r.stderr
    # Completion itself answers from the real command, through Typer's protocol.
    r = run_cli(cwd=workspace, env={"_HPO_COMPLETE": "complete_bash", "COMP_WORDS": "hpo ru", "COMP_CWORD": "1"})
    assert r.stdout.split() == ["run"], r


def test_help_and_version_import_no_heavy_library() -> None:
    code = (
        "import sys\nfrom hpo.cli import main\n"
        "for args in (['-h'], ['--version'], ['run', '-h']):\n"
        "    sys.argv = ['hpo', *args]\n"
        "    try:\n        main()\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('mlflow', 'catboost', 'plotly', 'optuna', 'sklearn', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_n_trials_and_timeout_override_the_space_file(workspace: Path) -> None:
    space = write_space(workspace, n_trials=4)
    text = space.read_text()
    code, out, err = invoke("run", str(space), "--n-trials", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["n_trials"] == 2 and json.loads(out)["states"] == {"COMPLETE": 2}
    # A raised budget is a resume, not "a different search space": as if n_trials were edited.
    code, out, err = invoke("run", str(space), "--n-trials", "3", "--json")
    assert code == 0, err
    assert json.loads(out)["ran"] == 1 and json.loads(out)["states"] == {"COMPLETE": 3}
    code, out, _ = invoke("show", "small", "--json")
    assert json.loads(out)["n_trials"] == 3
    assert space.read_text() == text  # the override lives in the run (and the study's recorded budget), not the file
    # Without the flag, the file's budget again.
    code, out, err = invoke("run", str(space), "--json")
    assert code == 0 and json.loads(out)["states"] == {"COMPLETE": 4}, err
    # A timeout stops starting trials: a budget of 10**6 ends after about a second. (On a loaded machine the
    # set-up alone may use that second, so no trial need start; what matters is that the budget does not run.)
    code, out, err = invoke("run", str(space), "--n-trials", "1000000", "--timeout", "1", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["ran"] < 1000 and result["elapsed_seconds"] < 30 and result["n_trials"] == 1000000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n-trials", "0"], "error: --n-trials must be a whole number from 1 to 1000000000, but got 0"),
        (["--n-trials", "-3"], "error: --n-trials must be a whole number from 1 to 1000000000, but got -3"),
        (["--n-trials", "10000000000"], "error: --n-trials must be a whole number from 1 to 1000000000, but got 10000000000"),
        (["--n-trials", "2.5"], "error: --n-trials must be a whole number, but got '2.5'"),
        (["--n-trials", "ten"], "error: --n-trials must be a whole number, but got 'ten'"),
        (["--timeout", "0"], "error: --timeout must be seconds above 0 and at most 31622400 (366 days), but got 0.0"),
        (["--timeout", "-1"], "error: --timeout must be seconds above 0 and at most 31622400 (366 days), but got -1.0"),
        (["--timeout", "nan"], "error: --timeout must be seconds above 0 and at most 31622400 (366 days), but got nan"),
        (
            ["--timeout", "1e12"],
            "error: --timeout must be seconds above 0 and at most 31622400 (366 days), but got 1000000000000.0",
        ),
        (["--timeout", "1h"], "error: --timeout must be a number of seconds, but got '1h'"),
    ],
)
def test_a_budget_that_cannot_be_meant_is_one_line_and_writes_nothing(workspace: Path, args: list[str], message: str) -> None:
    code, out, err = invoke("run", str(write_space(workspace)), *args)
    assert code == 2 and out == "" and err == message + "\n"
    assert not (workspace / "studies").exists()


def test_a_grid_budget_over_its_size_is_refused(workspace: Path) -> None:
    params = {"depth": {"type": "int", "low": 2, "high": 3}}
    space = write_space(workspace, sampler={"name": "grid"}, n_trials=None, params=params)
    code, _, err = invoke("run", str(space), "--n-trials", "3")
    assert code == 2 and err == "error: --n-trials must be <= the grid size 2 of sampler `grid`, but got 3\n"


def test_export_and_delete_speak_json(workspace: Path, mlflow_store: str) -> None:
    assert invoke("run", str(write_space(workspace, n_trials=2)), "--quiet")[0] == 0
    out_file = workspace / "trials.csv"
    code, out, err = invoke("export", "--study", "small", "-o", str(out_file), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["study"] == "small" and summary["format"] == "csv" and summary["trials"] == 2
    assert summary["states"] == {"COMPLETE": 2} and summary["bytes"] == out_file.stat().st_size
    assert Path(summary["path"]) == out_file.resolve() and "number" in summary["columns"]
    code, out, err = invoke("export", "--study", "small", "--json")
    assert code == 2 and out == "" and "--json describes the file written with -o FILE" in err

    # The plan: what would go and stay; nothing is deleted.
    code, out, err = invoke("delete", "small", "--dry-run", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["deleted"] is False and plan["plan"]["trials"] == 2 and plan["plan"]["runs"] == 3
    assert plan["plan"]["refusal"] is None and plan["plan"]["hpo_experiments"] == [f"{workspace.name}-HPO-v0.1.0"]
    code, out, _ = invoke("delete", "small", "--dry-run")
    assert code == 0 and out.splitlines()[-1] == "dry run: nothing was deleted"
    assert invoke("show", "small")[0] == 0

    # The result.
    code, out, err = invoke("delete", "small", "--yes", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["deleted"] is True and result["study"] == "small" and result["trials"] == 2 and result["runs_deleted"] == 3
    assert result["plan"]["runs"] == 3
    assert invoke("show", "small")[0] == 2
