"""Reading studies fast: the RDB shortcuts must agree with Optuna's own accessors."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from hpo.studies import complete_trials, trial_counts

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(t: optuna.Trial) -> float:
    x = t.suggest_float("x", 1e-3, 1.0, log=True)
    n = t.suggest_int("n", 1, 9, step=2)
    c = t.suggest_categorical("c", ["a", None, 3])
    t.report(x, 0)
    if t.number % 5 == 1:
        raise optuna.TrialPruned()
    if t.number % 5 == 2:
        raise RuntimeError("boom")
    return math.inf if t.number == 3 else x * n + (c == "a")


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_complete_trials_and_counts_match_optuna(tmp_path: Path, kind: str) -> None:
    storage = f"sqlite:///{tmp_path / 'o.db'}" if kind == "sqlite" else None
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=20, catch=(RuntimeError,))
    study.enqueue_trial({"x": 0.5})  # one WAITING trial

    expected = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    got = complete_trials(study)
    assert [t.number for t in got] == [t.number for t in expected]
    for a, b in zip(got, expected, strict=True):
        assert (a.value, a.params, a.distributions) == (b.value, b.params, b.distributions)
    assert any(t.value == math.inf for t in got)

    states: dict[str, int] = {}
    for t in study.get_trials():
        states[t.state.name] = states.get(t.state.name, 0) + 1
    assert trial_counts(study) == states == {"COMPLETE": 12, "PRUNED": 4, "FAIL": 4, "WAITING": 1}


def test_studies_and_show_list_states_best_and_lineage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import yaml

    from tests.conftest import invoke, write_space

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = write_space(tmp_path, "small.yaml", n_trials=4)
    assert invoke("run", str(parent), "--quiet")[0] == 0
    child = yaml.safe_load(parent.read_text()) | {"study": "small-gen2", "n_trials": 3}
    child["derived_from"] = {"study": "small", "warm_start": True, "reasons": ["depth: keep"]}
    (tmp_path / "small-gen2.yaml").write_text(yaml.safe_dump(child))
    assert invoke("run", "small-gen2.yaml", "--quiet")[0] == 0
    url = f"sqlite:///{tmp_path / 'studies' / 'hpo.db'}"
    optuna.create_study(study_name="plain", storage=url)  # a study hpo did not create

    code, out, err = invoke("studies", "--json")
    assert code == 0, err
    listed = {s["name"]: s for s in json.loads(out)}
    assert list(listed) == ["small", "small-gen2", "plain"]
    for name in ("small", "small-gen2"):
        study = optuna.load_study(study_name=name, storage=url)
        assert listed[name]["best_value"] == study.best_value and listed[name]["best_trial"] == study.best_trial.number
        assert listed[name]["states"] == {"COMPLETE": len(study.trials)}
        assert listed[name]["data_version"] == "v0.1.0" and listed[name]["by_hpo"]
    assert listed["small-gen2"]["derived_from"] == "small" and listed["small"]["derived_from"] is None
    assert listed["plain"]["by_hpo"] is False and listed["plain"]["best_value"] is None

    code, out, err = invoke("show", "small-gen2", "--json")
    shown = json.loads(out)
    assert shown["lineage"] == {"ancestors": ["small"], "children": [], "reasons": ["depth: keep"]}
    assert shown["inherited"] == 4 and shown["n_trials"] == 3
    assert shown["warm_start"]["mode"] == "history" and shown["warm_start"]["study"] == "small"
    assert len(shown["warm_start"]["run_first"]) == 3 and sorted(shown["warm_start"]["trials"]) == [0, 1, 2, 3]
    assert shown["best"]["number"] == listed["small-gen2"]["best_trial"] and shown["best"]["seed"] is not None
    assert json.loads(invoke("show", "small", "--json")[1])["lineage"]["children"] == ["small-gen2"]

    code, out, err = invoke("show", "small-gen2")
    assert "lineage      small-gen2 <- small" in out and "hpo promote" in out
    # Same data: the parent's history, then its 3 best configurations, best first.
    parent_trials = optuna.load_study(study_name="small", storage=url).trials
    first = ", ".join(f"#{t.number}" for t in sorted(parent_trials, key=lambda t: (-t.value, t.number))[:3])
    assert f"warm start   history: 4 trials of small; its trials {first} ran first" in out
    assert "warm start" not in invoke("show", "small")[1]
    code, out, err = invoke("studies")
    assert code == 0 and "small-gen2" in out
    code, out, err = invoke("show", "nope")
    assert code == 2 and "no study 'nope'" in err


def test_a_budget_smaller_than_the_best_configurations_records_only_those_that_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from tests.conftest import invoke, write_space

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = write_space(tmp_path, "small.yaml", n_trials=3)
    assert invoke("run", str(parent), "--quiet")[0] == 0
    child = yaml.safe_load(parent.read_text()) | {"study": "small-gen2", "n_trials": 1}
    child["derived_from"] = {"study": "small", "warm_start": True}
    (tmp_path / "small-gen2.yaml").write_text(yaml.safe_dump(child))
    assert invoke("run", "small-gen2.yaml", "--quiet")[0] == 0
    url = f"sqlite:///{tmp_path / 'studies' / 'hpo.db'}"
    best = optuna.load_study(study_name="small", storage=url).best_trial
    study = optuna.load_study(study_name="small-gen2", storage=url)
    assert study.trials[-1].params == best.params  # the one budget slot ran the parent's best
    assert study.user_attrs["inherited_trials"]["run_first"] == [best.number]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('"{nope}"', "`tool.hpo.hpo_experiment` may use {project} and {data_version}, but got '{nope}' (it uses {nope})"),
        ('"{project"', "`tool.hpo.hpo_experiment` is not a valid template (expected '}' before end of string)"),
        ('"{data_version:d}"', "an experiment template in `tool.hpo` cannot be filled in (Unknown format code 'd'"),
    ],
)
def test_an_experiment_template_mlflow_cannot_get_a_name_from_is_refused_before_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: str, message: str
) -> None:
    # It used to pass `validate`, then every trial's logging failed and the run reported MLflow "unreachable".
    from tests.conftest import invoke, write_space

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "pyproject.toml").write_text(f"[tool.hpo]\nhpo_experiment = {template}\n")
    space = write_space(tmp_path)
    for verb in ("validate", "run"):
        code, out, err = invoke(verb, str(space))
        assert code == 2 and err.startswith(f"error: {tmp_path / 'pyproject.toml'}: {message}") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml", "space.yaml"]  # no studies/, no mlflow.db
