"""`hpo try`: one fit in the scratch space, no study, nothing in the HPO or data-version experiments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import git, invoke, run_cli, small_space, write_space_as


@pytest.fixture
def repo(workspace: Path, mlflow_store: str) -> Path:
    space = small_space(
        params={
            "depth": {"type": "int", "low": 2, "high": 6},
            "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
            "grow_policy": {"type": "categorical", "choices": ["SymmetricTree", "Depthwise"]},
        }
    )
    write_space_as(workspace, space, "small.yaml")
    git(workspace, "init", "-q", "-b", "feature-x")
    git(workspace, "add", "search_spaces")
    git(workspace, "commit", "-q", "-m", "a space")
    return workspace


def scratch_runs(ws: Path) -> list:
    c = MlflowClient()
    exp = c.get_experiment_by_name(f"{ws.name}-Scratch")
    return [] if exp is None else c.search_runs([exp.experiment_id])


def test_try_fits_the_default_point_once_and_logs_only_a_scratch_run(repo: Path) -> None:
    code, out, err = invoke("try", "search_spaces/small.yaml", "--json")
    assert code == 0, err
    r = json.loads(out)
    # The default point: the middle of each range (geometric for log), a categorical's first choice.
    assert r["params"]["depth"] == 4 and r["params"]["learning_rate"] == pytest.approx((0.01 * 0.3) ** 0.5)
    assert r["params"]["grow_policy"] == "SymmetricTree" and r["params"]["iterations"] == 40
    assert r["set_by_hand"] == [] and 0 < r["metrics"]["pearson_r"] <= 1
    commit = git(repo, "rev-parse", "HEAD")
    (run,) = scratch_runs(repo)
    assert run.info.run_name == f"feature-x-{commit[:7]}" and run.info.run_id == r["run_id"]
    assert run.data.metrics["val_pearson_r"] == pytest.approx(r["metrics"]["pearson_r"])
    assert run.data.params["depth"] == "4" and run.data.tags["hpo.role"] == "scratch"
    assert run.data.tags["git_commit"] == commit and run.data.tags["data_version"] == "v0.1.0"
    # No study, and no HPO or data-version experiment.
    assert not (repo / "studies").exists()
    names = {e.name for e in MlflowClient().search_experiments()}
    assert names == {"Default", f"{repo.name}-Scratch"}, names


def test_try_takes_values_by_hand_and_prints_the_metrics(repo: Path) -> None:
    code, out, err = invoke(
        "try", "search_spaces/small.yaml", "--set", "depth=2", "--set", "grow_policy=Depthwise", "--set", "iterations=5"
    )
    assert code == 0, err
    assert "depth, grow_policy, iterations set by hand" in out
    assert "depth=2" in out and "grow_policy='Depthwise'" in out and "iterations=5" in out
    assert "validation pearson_r" in out and "<- the study's metric" in out
    assert "no study was created" in out
    (run,) = scratch_runs(repo)
    assert run.data.params["iterations"] == "5"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("depth=9", "--set depth=9: must lie in the searched range [2, 6]"),
        ("depth=2.5", "--set depth=2.5: must be a whole number in [2, 6]"),
        ("learning_rate=fast", "--set learning_rate='fast': must be a number in [0.01, 0.3]"),
        ("grow_policy=Lossguide", "--set grow_policy='Lossguide': must be one of the choices ['SymmetricTree', 'Depthwise']"),
        (
            "nope=1",
            "--set nope: not a parameter of study 'small' (its parameters: depth, learning_rate, grow_policy, iterations, thread_count)",
        ),
        ("depth", "--set 'depth': must be name=value"),
        ("depth=3 depth=4", "--set depth: given twice"),
    ],
)
def test_a_bad_set_is_one_line_and_nothing_is_logged(repo: Path, setting: str, message: str) -> None:
    sets = [arg for item in setting.split() for arg in ("--set", item)]
    code, _, err = invoke("try", "search_spaces/small.yaml", *sets)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (repo / "mlflow.db").exists() and not (repo / "studies").exists()


def writers() -> list[str]:
    """The `hpo try` writer processes alive on this machine (their command lines)."""
    import subprocess

    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "hpo.tracking._scratch" in line]


def test_a_fresh_process_logs_through_its_writer_the_same_run(repo: Path, mlflow_store: str) -> None:
    # `hpo` in a process of its own has not imported MLflow: its writer process logs the run.
    p = run_cli(
        "try", "search_spaces/small.yaml", "--set", "depth=3", "--json", cwd=repo, env={"MLFLOW_TRACKING_URI": mlflow_store}
    )
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    (run,) = scratch_runs(repo)
    assert run.info.run_id == r["run_id"] and run.info.status == "FINISHED"
    assert run.data.params["depth"] == "3" and run.data.params["grow_policy"] == "SymmetricTree"
    assert {k: v for k, v in run.data.metrics.items() if k.startswith("val_")} == pytest.approx(
        {f"val_{k}": v for k, v in r["metrics"].items()}
    )
    assert run.data.tags["hpo.role"] == "scratch" and run.data.tags["data_version"] == "v0.1.0"
    assert not writers()


def test_a_fresh_try_that_fails_leaves_no_store_and_no_writer(repo: Path, mlflow_store: str) -> None:
    bad = small_space()
    bad["data"]["source"] = "missing.csv"
    write_space_as(repo, bad, "bad.yaml")
    p = run_cli("try", "search_spaces/bad.yaml", cwd=repo, env={"MLFLOW_TRACKING_URI": mlflow_store})
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (repo / "mlflow.db").exists() and not writers()
    # MLflow that does not answer is a warning: the fit's figures are printed, exit 0.
    p = run_cli("try", "search_spaces/small.yaml", cwd=repo, env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert p.returncode == 0 and "validation pearson_r" in p.stdout, p.stderr
    assert p.stderr.startswith("warning: the run was not logged to MLflow: MLflow at http://127.0.0.1:9 is unreachable")
    assert not writers()


def test_try_with_cv_fits_the_folds(repo: Path) -> None:
    path = write_space_as(repo, small_space(cv={"folds": 3}), "cv.yaml")
    code, out, err = invoke("try", str(path))
    assert code == 0, err
    assert "3-fold mean pearson_r" in out and "  folds      " in out


def test_the_other_chores_name_their_keywords_from_python(workspace: Path) -> None:
    """`hpo export`, `hpo dashboard`, `hpo delete` and `hpo try`'s checks, called from Python: library keywords, no `--` flag."""
    from hpo.dashboard import serve
    from hpo.delete import DeletePlan
    from hpo.errors import HpoError
    from hpo.export import export_format
    from hpo.scratch import parse_sets
    from hpo.space import parse_space

    with pytest.raises(HpoError, match=r"^`fmt` must be one of csv, json, parquet, but got 'xlsx'$"):
        export_format("xlsx")
    with pytest.raises(HpoError, match=r"^`port` must be between 1 and 65535, but got 0$"):
        serve(port=0)
    running = DeletePlan(study="s", storage="sqlite:///x.db", trials=1, running=1, children=[], folder=None)
    assert str(running.refusal(force=False)).endswith("; nothing was deleted (`force` deletes it anyway)")
    text = yaml.safe_dump(small_space(params={"depth": {"type": "int", "low": 2, "high": 6}}))
    space = parse_space(text, "s.yaml")
    for sets, message in [
        (["depth=9"], "`sets=depth=9`: must lie in the searched range [2, 6]"),
        (["depth"], "`sets='depth'`: must be name=value, e.g. `sets=depth=6`"),
        (["nope=1"], "`sets=nope`: not a parameter of study 'small'"),
    ]:
        with pytest.raises(HpoError) as e:
            parse_sets(space, sets)
        assert str(e.value).startswith(message), str(e.value)
