"""`hpo analyze` end to end: a real CatBoost study, its reports, the dashboard, MLflow, and the derived space."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from hpo.space import load_space
from tests.conftest import invoke, shared_workspace, write_space

# With 40 CatBoost iterations, bigger learning rates and deeper trees keep helping: the best
# trials sit on the upper edges, so the analysis widens both.
EDGY = {
    "depth": {"type": "int", "low": 2, "high": 4},
    "learning_rate": {"type": "float", "low": 0.001, "high": 0.3, "log": True},
}


def storage(ws: Path) -> str:
    return f"sqlite:///{ws / 'studies' / 'hpo.db'}"


def dashboard_study(ws: Path, name: str) -> dict[str, Any]:
    """What optuna-dashboard's HTTP API serves for a study (its real WSGI app, called in-process)."""
    from wsgiref.util import setup_testing_defaults

    import optuna_dashboard

    app = optuna_dashboard.wsgi(storage(ws))

    def get(path: str) -> Any:
        env: dict[str, Any] = {}
        setup_testing_defaults(env)
        env["PATH_INFO"] = path
        status: list[str] = []
        body = b"".join(app(env, lambda s, h, exc=None: status.append(s)))
        assert status[0].startswith("200"), status
        return json.loads(body)

    sid = next(s["study_id"] for s in get("/api/studies")["study_summaries"] if s["study_name"] == name)
    return get(f"/api/studies/{sid}")


@pytest.fixture
def edgy_study(workspace: Path, mlflow_store: str) -> Path:
    space = write_space(workspace / "search_spaces", "small.yaml", n_trials=16, params=EDGY)
    assert invoke("run", str(space), "--quiet")[0] == 0
    return space


@pytest.fixture(scope="module")
def read_only_edgy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The edgy study once for the tests that must write nothing (each asserts that it did not)."""
    with shared_workspace(tmp_path_factory, "edgy") as ws:
        space = write_space(ws / "search_spaces", "small.yaml", n_trials=16, params=EDGY)
        assert invoke("run", str(space), "--quiet")[0] == 0
        yield ws


def test_analyze_reports_everywhere_and_its_derived_space_runs_warm_started(
    workspace: Path, mlflow_store: str, edgy_study: Path
) -> None:
    # A dry run prints the table and writes nothing.
    code, out, _ = invoke("analyze", "--param", "learning_rate", "--dry-run")
    assert code == 0
    for column in ("pearson r (p)", "spearman rho (p)", "top 20% (4)", "recommendation", "learning_rate widen"):
        assert column in out
    assert not (workspace / "studies" / "small").exists()
    assert sorted(p.name for p in (workspace / "search_spaces").iterdir()) == ["small.yaml"]

    code, out, err = invoke("analyze", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["study"] == "small" and result["n_complete"] == 16
    lr = result["params"]["learning_rate"]
    assert {"pearson_r", "spearman_rho", "importance", "top_low", "top_high", "groups"} <= set(lr)
    assert lr["spearman_rho"] > 0.3 and 0 < lr["importance"] <= 1
    rec = lr["recommendation"]
    assert rec["kind"] == "widen" and 0.3 < rec["high"] <= 1.0 and rec["low"] > 0.001, rec
    assert result["params"]["depth"]["recommendation"]["kind"] in ("widen", "narrow", "keep")

    # The HTML report: one figure per parameter, plotly inlined so it opens offline.
    page = (workspace / "studies" / "small" / "analysis.html").read_text()
    assert 'id="hpo-learning_rate"' in page and 'id="hpo-depth"' in page and "plotly.js" in page.lower()
    assert json.loads((workspace / "studies" / "small" / "analysis.json").read_text())["study"] == "small"

    # optuna-dashboard serves the note and the figures from the study.
    served = dashboard_study(workspace, "small")
    assert "hpo analyze: small" in served["note"]["body"] and "widen" in served["note"]["body"]
    assert sorted(g["id"] for g in served["plotly_graph_objects"]) == ["hpo-analyze-depth", "hpo-analyze-learning_rate"]

    # The report is an artifact of the study's parent run in its HPO space.
    parent = optuna.load_study(study_name="small", storage=storage(workspace)).user_attrs["mlflow_parent_run_id"]
    assert result["mlflow_run_id"] == parent
    assert {a.path for a in MlflowClient(mlflow_store).list_artifacts(parent, "analysis")} == {
        "analysis/analysis.html",
        "analysis/analysis.md",
        "analysis/analysis.json",
    }

    # The derived space: recommended ranges, lineage, everything else carried over.
    derived_path = workspace / "search_spaces" / "small-gen2.yaml"
    assert result["derived_space"] == str(derived_path) and result["derived_study"] == "small-gen2"
    parent_space, derived = load_space(edgy_study).space, load_space(derived_path).space
    assert derived.study == "small-gen2"
    assert derived.derived_from is not None and derived.derived_from.study == "small" and derived.derived_from.warm_start
    assert any(r.startswith("learning_rate: widen:") for r in derived.derived_from.reasons)
    assert derived.params["learning_rate"].high == rec["high"] and derived.params["learning_rate"].log
    same = ("data", "metric", "model", "seed", "sampler", "pruner", "fixed", "n_trials")
    assert {k: getattr(derived, k) for k in same} == {k: getattr(parent_space, k) for k in same}

    # Running it works, and it starts from the parent's trials that lie inside the new space.
    parent_trials = optuna.load_study(study_name="small", storage=storage(workspace)).get_trials()
    new_lr, new_depth = derived.params["learning_rate"], derived.params["depth"]
    inside = [
        t.number
        for t in parent_trials
        if new_lr.low <= t.params["learning_rate"] <= new_lr.high and new_depth.low <= t.params["depth"] <= new_depth.high
    ]
    assert 0 < len(inside) < 16
    code, out, err = invoke("run", str(derived_path), "--json")
    assert code == 0, err
    run = json.loads(out)
    assert run["inherited"] == len(inside) and run["ran"] == 16
    child = optuna.load_study(study_name="small-gen2", storage=storage(workspace))
    assert child.user_attrs["inherited_trials"] == {"study": "small", "trials": inside}
    by_number = {t.number: t for t in parent_trials}
    for t in child.trials[: len(inside)]:
        origin = by_number[t.user_attrs["inherited_from"]["trial"]]
        assert t.value == origin.value and t.params == origin.params and t.user_attrs["seed"] == origin.user_attrs["seed"]
    # Inherited trials are the parent's runs in MLflow, not new ones.
    assert invoke("sync", "--study", "small-gen2", "--json")[0] == 0
    c = MlflowClient(mlflow_store)
    exp = c.get_experiment_by_name(f"{workspace.name}-HPO-v0.1.0")
    children = c.search_runs(
        [exp.experiment_id], "tags.`hpo.study` = 'small-gen2' and tags.`hpo.role` = 'trial'", max_results=100
    )
    assert len(children) == 16

    # Analysing the parent again replaces its dashboard figures and never overwrites a space file.
    code, out, err = invoke("analyze", "--study", "small", "--json")
    assert code == 0, err
    assert json.loads(out)["derived_study"] == "small-gen3"
    assert len(dashboard_study(workspace, "small")["plotly_graph_objects"]) == 2


def test_no_warm_start_inherits_nothing(workspace: Path, mlflow_store: str, edgy_study: Path) -> None:
    assert invoke("analyze", "--no-warm-start", "--name", "cold", "--importance", "none", "--json")[0] == 0
    code, out, err = invoke("run", "search_spaces/cold.yaml", "--json")
    assert code == 0, err
    assert json.loads(out)["inherited"] == 0
    assert "inherited_trials" not in optuna.load_study(study_name="cold", storage=storage(workspace)).user_attrs


def test_analyze_works_on_a_study_hpo_did_not_create(workspace: Path, mlflow_store: str) -> None:
    (workspace / "studies").mkdir()
    study = optuna.create_study(storage=storage(workspace), study_name="plain")
    study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2 + t.suggest_int("n", 1, 3), n_trials=30)
    code, out, err = invoke("analyze", "--study", "plain")
    assert code == 0, err
    assert "x " in out and "narrow" in out  # interior optimum at x=1 when minimising
    assert "not a study hpo ran" in out
    assert (workspace / "studies" / "plain" / "analysis.html").is_file()
    assert sorted(p.name for p in (workspace / "search_spaces").iterdir()) == []
    assert MlflowClient(mlflow_store).search_experiments(filter_string="name LIKE '%HPO%'") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "nope"], "--param nope: study 'small' has no parameter 'nope' (it has: depth, learning_rate)"),
        (["--top", "1.5"], "--top must lie strictly between 0 and 1"),
        (["--study", "missing"], "no study 'missing' in sqlite:///"),
        (["--min-trials", "2"], "--min-trials must be >= 3"),
        (["--importance", "shap"], "--importance must be one of ped-anova, fanova, mdi or none"),
        (["--name", "small"], "--name small: a study or space file of that name exists already"),
        (["--name", "bad name"], "--name must start with a letter or digit"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(read_only_edgy: Path, args: list[str], message: str) -> None:
    workspace = read_only_edgy
    before = optuna.load_study(study_name="small", storage=storage(workspace)).user_attrs
    code, out, err = invoke("analyze", *args)
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert not (workspace / "studies" / "small").exists()
    assert sorted(p.name for p in (workspace / "search_spaces").iterdir()) == ["small.yaml"]
    assert optuna.load_study(study_name="small", storage=storage(workspace)).user_attrs == before


def test_warm_start_from_a_missing_parent_refuses_before_writing(workspace: Path, mlflow_store: str) -> None:
    space = write_space(workspace, derived_from={"study": "ghost", "reasons": ["made up"], "warm_start": True})
    code, _, err = invoke("run", str(space))
    assert code == 2
    assert err.count("\n") == 1 and "space.yaml: `derived_from.warm_start` needs the parent study: no study 'ghost'" in err
    assert not (workspace / "studies" / "hpo.db").exists() or optuna.get_all_study_names(storage(workspace)) == []


def test_warm_start_refuses_a_parent_with_other_data(workspace: Path, mlflow_store: str, edgy_study: Path) -> None:
    raw = yaml.safe_load(edgy_study.read_text())
    raw.update(study="other-data", derived_from={"study": "small", "warm_start": True})
    raw["data"]["split"]["seed"] = 1  # other rows in each split: other digests
    path = workspace / "search_spaces" / "other.yaml"
    path.write_text(yaml.safe_dump(raw))
    code, _, err = invoke("run", str(path))
    assert code == 2 and "study 'small' has other data (split digests); set `warm_start: false`" in err, err
    assert optuna.get_all_study_names(storage(workspace)) == ["small"]


def test_warm_start_skips_parent_trials_whose_choice_was_dropped(workspace: Path, mlflow_store: str) -> None:
    # A derived space that drops a categorical choice: the parent's trials with that choice lie
    # outside it and are not inherited (this used to end `hpo run` in a ValueError traceback).
    params = {
        "depth": {"type": "int", "low": 2, "high": 4},
        "grow_policy": {"type": "categorical", "choices": ["SymmetricTree", "Depthwise"]},
    }
    parent = write_space(workspace / "search_spaces", "parent.yaml", study="parent", n_trials=6, params=params)
    assert invoke("run", str(parent), "--quiet")[0] == 0
    kept = {**params, "grow_policy": {"type": "categorical", "choices": ["SymmetricTree"]}}
    child = write_space(
        workspace / "search_spaces",
        "child.yaml",
        study="child",
        n_trials=2,
        params=kept,
        derived_from={"study": "parent", "warm_start": True},
    )
    code, out, err = invoke("run", str(child), "--json")
    assert code == 0, err
    symmetric = [
        t
        for t in optuna.load_study(study_name="parent", storage=storage(workspace)).trials
        if t.params["grow_policy"] == "SymmetricTree"
    ]
    assert 0 < len(symmetric) < 6  # the parent tried both choices
    assert json.loads(out)["inherited"] == len(symmetric)
