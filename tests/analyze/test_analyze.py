"""`hpo analyze` end to end: a real CatBoost study, its reports, the dashboard, MLflow, and the derived space."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow import MlflowClient

from hpo.analyze import analyze_study
from hpo.errors import HpoError
from hpo.space import load_space
from tests.conftest import invoke, shared_workspace, write_space

# With 40 CatBoost iterations, bigger learning rates keep helping: the best trials sit on the
# upper edge of learning_rate. The metric is r2, which (unlike pearson_r, blind to the scale of
# the predictions) is far from the best when the rate is too small to fit in 40 iterations, so the
# effect stands well above the noise floor of re-fits and the analysis widens learning_rate.
EDGY = {
    "depth": {"type": "int", "low": 2, "high": 4},
    "learning_rate": {"type": "float", "low": 0.001, "high": 0.3, "log": True},
}


def edgy_space(ws: Path) -> Path:
    return write_space(ws / "search_spaces", "small.yaml", n_trials=16, metric="r2", params=EDGY)


def storage(ws: Path) -> str:
    return f"sqlite:///{ws / 'studies' / 'hpo.db'}"


def study_values(ws: Path, name: str = "small") -> list[float]:
    return [t.value for t in optuna.load_study(study_name=name, storage=storage(ws)).trials if t.value is not None]


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
    space = edgy_space(workspace)
    assert invoke("run", str(space), "--quiet")[0] == 0
    return space


@pytest.fixture(scope="module")
def read_only_edgy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The edgy study once for the tests that must write nothing (each asserts that it did not)."""
    with shared_workspace(tmp_path_factory, "edgy") as ws:
        space = edgy_space(ws)
        assert invoke("run", str(space), "--quiet")[0] == 0
        yield ws


def test_analyze_reports_everywhere_and_its_derived_space_runs_warm_started(
    workspace: Path, mlflow_store: str, edgy_study: Path
) -> None:
    # A dry run prints the table, the noise floor and the verdicts, and writes nothing.
    code, dry, _ = invoke("analyze", "--param", "learning_rate", "--dry-run")
    assert code == 0
    for column in ("pearson r (p)", "spearman rho (p)", "recommendation", "learning_rate widen"):
        assert column in dry
    assert "Noise floor: sd " in dry and "cannot be told apart from noise" not in dry
    assert not (workspace / "studies" / "small").exists()
    assert sorted(p.name for p in (workspace / "search_spaces").iterdir()) == ["small.yaml"]

    code, out, err = invoke("analyze", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["study"] == "small" and result["n_complete"] == 16 and result["message"] is None
    # The noise floor: the best trial re-fitted with 3 (the default) other seeds, and its validation rows resampled.
    noise = result["noise"]
    assert len(noise["values"]) == 3 and noise["seed_sd"] == pytest.approx(statistics.stdev(noise["values"]))
    assert f"over 3 re-fits of trial #{result['best_number']} with other seeds" in noise["source"]
    kept = optuna.load_study(study_name="small", storage=storage(workspace)).user_attrs["noise_floor"]
    assert kept["trial"] == result["best_number"] and kept["values"] == noise["values"]  # the next analysis re-fits nothing
    assert kept["rows"]["sd"] == noise["rows_sd"]
    # The top trials: the best 20% (at least 3), and every trial within the noise floor of the best.
    within = sum(v >= result["best_value"] - noise["sd"] for v in study_values(workspace))
    assert result["top_count"] == max(4, within) and f"top 20% ({result['top_count']})" in dry
    lr = result["params"]["learning_rate"]
    assert {"pearson_r", "spearman_rho", "importance", "top_low", "top_high", "groups"} <= set(lr)
    assert lr["spearman_rho"] > 0.3 and 0 < lr["importance"] <= 1
    rec = lr["recommendation"]
    # The upper edge moves out by the searched width (x300 in log10), which CatBoost's limit of 1 caps.
    assert rec["kind"] == "widen" and rec["high"] == 1.0 and rec["low"] > 0.001 and rec["log"], rec
    assert "capped at the parameter's bound 1" in rec["reason"]
    # The evidence behind it: a descriptive p-value below alpha, and a spread of the groups' true
    # means (noise removed) of at least the measured noise floor.
    ev = rec["evidence"]
    assert ev["clear_effect"] and ev["p_threshold"] == 0.05 and ev["min_p"] < ev["p_threshold"]
    assert ev["noise"] == noise["sd"] and ev["effect_sd"] >= noise["sd"]
    assert ev["n_top"] == result["top_count"] and ev["min_top"] == 5
    assert ev["bootstrap"]["resamples"] == 200 and ev["bootstrap"]["low"] <= lr["top_low"]
    assert result["params"]["depth"]["recommendation"]["kind"] in ("widen", "narrow", "keep")

    # The HTML report: one figure per parameter, plotly inlined so it opens offline.
    page = (workspace / "studies" / "small" / "analysis.html").read_text()
    assert 'id="hpo-learning_rate"' in page and 'id="hpo-depth"' in page and "plotly.js" in page.lower()
    assert "Noise floor: sd" in page
    assert json.loads((workspace / "studies" / "small" / "analysis.json").read_text())["noise"] == noise

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
    same = ("data", "metric", "model", "sampler", "pruner", "fixed", "n_trials")
    assert {k: getattr(derived, k) for k in same} == {k: getattr(parent_space, k) for k in same}
    assert derived.seed == parent_space.seed + 1  # the sampler does not replay the parent's draws

    # Running it works. A soft warm start: the study holds the parent's whole COMPLETE history,
    # also the trials outside the new ranges, each under the parent's own distributions; then the
    # parent's best configurations that fit the new space take the first budget slots, best first.
    parent_trials = optuna.load_study(study_name="small", storage=storage(workspace)).get_trials()
    new_lr, new_depth = derived.params["learning_rate"], derived.params["depth"]

    def fits(t: optuna.trial.FrozenTrial) -> bool:
        return new_lr.low <= t.params["learning_rate"] <= new_lr.high and new_depth.low <= t.params["depth"] <= new_depth.high

    assert 0 < sum(map(fits, parent_trials)) < 16
    ranked = sorted(parent_trials, key=lambda t: (-t.value, t.number))
    run_first = [t.number for t in ranked if fits(t)][:3]
    assert run_first[0] == result["best_number"]
    code, out, err = invoke("run", str(derived_path), "--json")
    assert code == 0, err
    run = json.loads(out)
    assert run["inherited"] == 16 and run["ran"] == 16
    child = optuna.load_study(study_name="small-gen2", storage=storage(workspace))
    assert child.user_attrs["inherited_trials"] == {
        "study": "small",
        "mode": "history",
        "trials": list(range(16)),
        "run_first": run_first,
    }
    assert len(child.trials) == 32
    by_number = {t.number: t for t in parent_trials}
    history = child.trials[:16]
    for t in history:
        origin = by_number[t.user_attrs["inherited_from"]["trial"]]
        assert t.value == origin.value and t.params == origin.params and t.user_attrs["seed"] == origin.user_attrs["seed"]
        assert t.distributions == origin.distributions  # the range it was sampled from, not the new one
    assert {t.user_attrs["inherited_from"]["trial"] for t in history} == set(by_number)
    assert any(not fits(t) for t in history)
    new = child.trials[16:]
    assert all("inherited_from" not in t.user_attrs for t in new)
    assert [t.params for t in new[:3]] == [by_number[n].params for n in run_first]
    assert new[0].params == by_number[result["best_number"]].params
    assert new[0].distributions["learning_rate"].high == new_lr.high  # sampled in the new space
    assert all(fits(t) for t in new)
    code, out, err = invoke("show", "small-gen2")
    assert code == 0, err
    first = ", ".join(f"#{n}" for n in run_first)
    assert f"warm start   history: 16 trials of small; its trials {first} ran first" in out
    # Inherited trials are the parent's runs in MLflow, not new ones.
    assert invoke("sync", "--study", "small-gen2", "--json")[0] == 0
    c = MlflowClient(mlflow_store)
    exp = c.get_experiment_by_name(f"{workspace.name}-HPO-v0.1.0")
    children = c.search_runs(
        [exp.experiment_id], "tags.`hpo.study` = 'small-gen2' and tags.`hpo.role` = 'trial'", max_results=100
    )
    assert len(children) == 16

    # Analysing the parent again replaces its dashboard figures; the same recommendation points at
    # the space already written, and a space file is never overwritten.
    written = derived_path.read_text()
    code, out, err = invoke("analyze", "--study", "small", "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["derived_study"] == "small-gen2" and again["derived_space"] == str(derived_path)
    assert "the derived space is the one an earlier analysis wrote, search_spaces/small-gen2.yaml" in " ".join(again["notes"])
    assert derived_path.read_text() == written and not (workspace / "search_spaces" / "small-gen3.yaml").exists()
    assert len(dashboard_study(workspace, "small")["plotly_graph_objects"]) == 2
    derived_path.write_text(written.replace("n_trials: 16", "n_trials: 20"))  # edited by hand: another space now
    code, out, err = invoke("analyze", "--study", "small", "--json")
    assert code == 0 and json.loads(out)["derived_study"] == "small-gen3", err
    assert "n_trials: 20" in derived_path.read_text()


def test_no_warm_start_inherits_nothing(workspace: Path, mlflow_store: str, edgy_study: Path) -> None:
    assert invoke("analyze", "--no-warm-start", "--name", "cold", "--importance", "none", "--json")[0] == 0
    code, out, err = invoke("run", "search_spaces/cold.yaml", "--json")
    assert code == 0, err
    assert json.loads(out)["inherited"] == 0
    cold = optuna.load_study(study_name="cold", storage=storage(workspace))
    assert "inherited_trials" not in cold.user_attrs and len(cold.trials) == 16
    # Nor does the parent's best configuration run first.
    best = optuna.load_study(study_name="small", storage=storage(workspace)).best_params
    assert cold.trials[0].params != best
    assert "warm start" not in invoke("show", "cold")[1]


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


def test_a_report_mlflow_cannot_take_stays_on_disk_with_one_warning(
    workspace: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("run", str(write_space(workspace / "search_spaces", "small.yaml")), "--quiet")[0] == 0
    (workspace / "afile").touch()  # a tracking store that cannot be created: its folder is a file
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workspace / 'afile' / 'mlflow.db'}")
    code, out, err = invoke("analyze", "--min-trials", "3", "--noise-refits", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["mlflow_run_id"] is None
    flat = err.replace("\n", "")  # the warning is wrapped to the terminal's width
    assert flat.startswith("warning: could not log the report to MLflow at sqlite:///") and err.count("warning:") == 1, err
    assert "is a file, not a folder" in flat and flat.endswith(f"it is in {workspace / 'studies' / 'small'}"), err
    assert sorted(p.name for p in (workspace / "studies" / "small").iterdir()) == [
        "analysis.html",
        "analysis.json",
        "analysis.md",
    ]


def test_the_python_api_names_its_keywords_not_the_cli_flags(read_only_edgy: Path) -> None:
    # The same checks as the CLI's (test_bad_input_is_one_line_and_writes_nothing), in the caller's words.
    with pytest.raises(HpoError, match=r"^`top` must lie strictly between 0 and 1 \(a fraction of trials\), but got 1.5$"):
        analyze_study(top=1.5)
    with pytest.raises(HpoError, match=r"^`data_source` needs `data_version`: a new source is a new data version$"):
        analyze_study(data_source="rows.csv")
    with pytest.raises(HpoError, match=r"^`data_version` must look like v<MAJOR>"):
        analyze_study(data_version="0.2.0")
    with pytest.raises(HpoError, match=r"^`params=nope`: study 'small' has no parameter 'nope'"):
        analyze_study(params=["nope"], write=False)
    with pytest.raises(HpoError, match=r"^`data_version=v0.1.0`: study 'small' ran on that version already"):
        analyze_study(data_version="v0.1.0", write=False)


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/hpo-abs-escape", "..", "a/b"])
def test_a_study_name_never_becomes_a_path_outside_the_workspace(workspace: Path, mlflow_store: str, name: str) -> None:
    # Optuna accepts any study name; hpo's report folder must stay inside studies/ whatever it is.
    (workspace / "studies").mkdir()
    study = optuna.create_study(storage=storage(workspace), study_name=name)
    study.optimize(lambda t: t.suggest_float("x", -5, 5) ** 2, n_trials=12)
    around = workspace.parent
    before = {p for p in around.rglob("*") if workspace not in p.parents and p != workspace}
    code, out, err = invoke("analyze", "--study", name, "--noise-refits", "0")
    assert code == 0, err
    reports = list((workspace / "studies").glob("*/analysis.html"))
    assert len(reports) == 1 and reports[0].parent.parent == workspace / "studies"
    # Nothing new outside the workspace (files may go: other tests' SQLite -wal/-shm, say, vanish
    # when the garbage collector closes their last connection).
    assert {p for p in around.rglob("*") if workspace not in p.parents and p != workspace} <= before
    assert not Path("/tmp/hpo-abs-escape").exists()


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
        (["--noise-refits", "1"], "--noise-refits must be 0 (no noise floor) or 2 to 20 (each is one more fit), but got 1"),
        (["--noise-refits", "-1"], "--noise-refits must be 0 (no noise floor) or 2 to 20"),
        (["--noise-refits", "21"], "--noise-refits must be 0 (no noise floor) or 2 to 20"),
        (["--data-version", "v0.1.0"], "--data-version v0.1.0: study 'small' ran on that version already"),
        (["--data-version", "v0.1.0", "--dry-run"], "--data-version v0.1.0: study 'small' ran on that version already"),
        (["--data-version", "0.2.0"], "--data-version must look like v<MAJOR>.<MINOR>.<PATCH> (e.g. v0.2.0), but got '0.2.0'"),
        (["--data-source", "rows.csv"], "--data-source needs --data-version: a new source is a new data version"),
        (
            ["--data-version", "v0.2.0", "--data-source", "train=a.csv,validation=b.csv"],
            "--data-source with '=' must be train=PATH,validation=PATH,test=PATH",
        ),
        (["--data-version", "v0.2.0", "--data-source", "missing.csv"], "--data-source: missing.csv is not a file"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(read_only_edgy: Path, args: list[str], message: str) -> None:
    workspace = read_only_edgy
    before = optuna.load_study(study_name="small", storage=storage(workspace)).user_attrs
    code, out, err = invoke("analyze", *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not (workspace / "studies" / "small").exists()
    assert sorted(p.name for p in (workspace / "search_spaces").iterdir()) == ["small.yaml"]
    assert optuna.load_study(study_name="small", storage=storage(workspace)).user_attrs == before


def test_the_noise_floor_is_the_spread_of_re_fits_of_the_best_trial(read_only_edgy: Path) -> None:
    workspace = read_only_edgy
    code, out, err = invoke("analyze", "--dry-run", "--json", "--importance", "none")
    assert code == 0, err
    result = json.loads(out)
    noise = result["noise"]
    # The floor: the seeds' spread and the validation rows' (a paired bootstrap), independent, so their variances add.
    seeds = f"seeds: sd {noise['seed_sd']:.3g} over 3 re-fits of trial #{result['best_number']} with other seeds"
    assert seeds in noise["source"] and noise["basis"] == "seeds + validation rows"
    assert len(noise["values"]) == 3 and noise["seed_sd"] == pytest.approx(statistics.stdev(noise["values"]))
    assert noise["sd"] == pytest.approx(math.hypot(noise["seed_sd"], noise["rows_sd"]))
    # The best configuration with other seeds: its value give or take the noise, each seed its own.
    assert len(set(noise["values"])) == 3 and result["best_value"] not in noise["values"]
    assert all(abs(v - result["best_value"]) < 0.2 for v in noise["values"])
    assert result["params"]["learning_rate"]["recommendation"]["evidence"]["noise"] == noise["sd"]
    # The seeds are fixed: the same analysis finds the same floor.
    again = json.loads(invoke("analyze", "--dry-run", "--json", "--importance", "none")[1])
    assert again["noise"] == noise
    code, out, err = invoke("analyze", "--dry-run", "--json", "--importance", "none", "--noise-refits", "2")
    assert code == 0, err
    assert len(json.loads(out)["noise"]["values"]) == 2

    # --noise-refits 0: no floor, so a clear effect needs a p-value below alpha over every test
    # (Bonferroni: 2 tests x 2 parameters) instead.
    code, out, err = invoke("analyze", "--dry-run", "--json", "--importance", "none", "--noise-refits", "0")
    assert code == 0, err
    bare = json.loads(out)
    assert bare["noise"] is None
    lr = bare["params"]["learning_rate"]["recommendation"]
    assert lr["evidence"]["noise"] is None and lr["evidence"]["p_threshold"] == pytest.approx(0.05 / 4)
    assert lr["kind"] == "widen" and lr["evidence"]["min_p"] < 0.05 / 4
    code, out, err = invoke("analyze", "--dry-run", "--noise-refits", "0")
    assert code == 0 and "Noise floor" not in out, err
    assert "noise_floor" not in optuna.load_study(study_name="small", storage=storage(workspace)).user_attrs
    assert not (workspace / "studies" / "small").exists()
    assert sorted(p.name for p in (workspace / "search_spaces").iterdir()) == ["small.yaml"]


def test_a_new_data_version_runs_the_parents_best_configurations_first_and_copies_no_value(
    workspace: Path, mlflow_store: str
) -> None:
    parent_space = write_space(workspace / "search_spaces", "small.yaml", n_trials=4)
    assert invoke("run", str(parent_space), "--quiet")[0] == 0
    from sklearn.datasets import load_diabetes

    rows = workspace / "data" / "v0.2.0" / "diabetes.csv"
    rows.parent.mkdir(parents=True)
    load_diabetes(as_frame=True).frame.iloc[:350].to_csv(rows, index=False)  # other rows: other split digests

    code, out, err = invoke("analyze", "--data-version", "v0.2.0", "--data-source", "data/v0.2.0/diabetes.csv", "--json")
    assert code == 0, err
    result = json.loads(out)
    # 4 trials recommend nothing, but a new data version gets a space of its own all the same.
    assert {p["recommendation"]["kind"] for p in result["params"].values()} == {"none"}
    path = workspace / "search_spaces" / "small-v0.2.0.yaml"
    assert result["derived_study"] == "small-v0.2.0" and result["derived_space"] == str(path)
    before, derived = load_space(parent_space).space, load_space(path).space
    assert derived.study == "small-v0.2.0"
    assert (derived.data.version, derived.data.source) == ("v0.2.0", "data/v0.2.0/diabetes.csv")
    assert derived.data.split == before.data.split and derived.data.target == before.data.target
    same = ("params", "metric", "model", "sampler", "pruner", "fixed", "n_trials")
    assert {k: getattr(derived, k) for k in same} == {k: getattr(before, k) for k in same}
    assert derived.derived_from is not None and derived.derived_from.study == "small" and derived.derived_from.warm_start
    assert [r for r in derived.derived_from.reasons if r.startswith("data: v0.1.0 -> v0.2.0: a new data version")]
    assert derived.seed == before.seed + 1

    code, out, err = invoke("run", str(path), "--json")
    assert code == 0, err
    run = json.loads(out)
    assert run["inherited"] == 0 and run["ran"] == 4
    parent = optuna.load_study(study_name="small", storage=storage(workspace))
    child = optuna.load_study(study_name="small-v0.2.0", storage=storage(workspace))
    ranked = [t.number for t in sorted(parent.trials, key=lambda t: (-t.value, t.number))]
    assert child.user_attrs["inherited_trials"] == {"study": "small", "mode": "transfer", "trials": [], "run_first": ranked[:3]}
    assert ranked[0] == parent.best_trial.number
    # The parent's best configurations run first, best first, on the new data: no value is copied.
    assert len(child.trials) == 4 and all("inherited_from" not in t.user_attrs for t in child.trials)
    assert child.trials[0].number == 0 and child.trials[0].params == parent.best_trial.params
    assert [t.params for t in child.trials[:3]] == [parent.trials[n].params for n in ranked[:3]]
    assert child.trials[0].value != parent.best_trial.value
    assert child.user_attrs["data_version"] == "v0.2.0"
    assert child.user_attrs["data_digests"]["train"] != parent.user_attrs["data_digests"]["train"]

    code, out, err = invoke("show", "small-v0.2.0")
    assert code == 0, err
    first = ", ".join(f"#{n}" for n in ranked[:3])
    assert f"warm start   transfer from small (other data): its trials {first} ran first; no values copied" in out
    # Its trials are new runs, in the HPO space of the new data version.
    c = MlflowClient(mlflow_store)
    exp = c.get_experiment_by_name(f"{workspace.name}-HPO-v0.2.0")
    assert len(c.search_runs([exp.experiment_id], "tags.`hpo.role` = 'trial'")) == 4


def test_warm_start_from_a_missing_parent_refuses_before_writing(workspace: Path, mlflow_store: str) -> None:
    space = write_space(workspace, derived_from={"study": "ghost", "reasons": ["made up"], "warm_start": True})
    code, _, err = invoke("run", str(space))
    assert code == 2
    assert err.count("\n") == 1 and "space.yaml: `derived_from.warm_start` needs the parent study: no study 'ghost'" in err
    assert not (workspace / "studies" / "hpo.db").exists() or optuna.get_all_study_names(storage(workspace)) == []


def test_warm_start_refuses_a_parent_that_measured_another_metric(workspace: Path, mlflow_store: str) -> None:
    # Other data is a transfer (above); another metric is another question, whose answers do not carry over.
    parent = write_space(workspace / "search_spaces", "small.yaml", n_trials=2)
    assert invoke("run", str(parent), "--quiet")[0] == 0
    child = write_space(
        workspace / "search_spaces",
        "other.yaml",
        study="other-metric",
        metric="rmse",
        derived_from={"study": "small", "warm_start": True},
    )
    code, _, err = invoke("run", str(child))
    assert code == 2 and err.count("\n") == 1, err
    assert "study 'small' has another metric; set `warm_start: false`" in err, err
    assert optuna.get_all_study_names(storage(workspace)) == ["small"]


def test_warm_start_keeps_the_new_choices_and_strips_what_the_space_now_fixes(workspace: Path, mlflow_store: str) -> None:
    # A derived space that drops a categorical choice and fixes a parameter: the parent's trials
    # with the dropped choice are left out (the storage holds one set of choices per parameter;
    # this used to end `hpo run` in a ValueError traceback), the others come without the fixed one.
    params = {
        "depth": {"type": "int", "low": 2, "high": 4},
        "grow_policy": {"type": "categorical", "choices": ["SymmetricTree", "Depthwise"]},
        "l2_leaf_reg": {"type": "float", "low": 1, "high": 10},
    }
    parent = write_space(workspace / "search_spaces", "parent.yaml", study="parent", n_trials=6, params=params)
    assert invoke("run", str(parent), "--quiet")[0] == 0
    symmetric = [
        t
        for t in optuna.load_study(study_name="parent", storage=storage(workspace)).trials
        if t.params["grow_policy"] == "SymmetricTree"
    ]
    assert 0 < len(symmetric) < 6  # the parent tried both choices
    best = max(symmetric, key=lambda t: t.value)
    child = write_space(
        workspace / "search_spaces",
        "child.yaml",
        study="child",
        n_trials=2,
        params={"depth": params["depth"], "grow_policy": {"type": "categorical", "choices": ["SymmetricTree"]}},
        fixed={"iterations": 40, "thread_count": 1, "l2_leaf_reg": best.params["l2_leaf_reg"]},
        derived_from={"study": "parent", "warm_start": True},
    )
    code, out, err = invoke("run", str(child), "--json")
    assert code == 0, err
    assert json.loads(out)["inherited"] == len(symmetric)
    study = optuna.load_study(study_name="child", storage=storage(workspace))
    history = [t for t in study.trials if "inherited_from" in t.user_attrs]
    assert [t.user_attrs["inherited_from"]["trial"] for t in history] == [t.number for t in symmetric]
    for t, origin in zip(history, symmetric, strict=True):
        assert t.value == origin.value and t.params == {"depth": origin.params["depth"], "grow_policy": "SymmetricTree"}
        assert t.distributions == {
            "depth": origin.distributions["depth"],
            "grow_policy": optuna.distributions.CategoricalDistribution(["SymmetricTree"]),
        }
    # Only the best trial has the now fixed l2_leaf_reg: it alone runs first.
    assert study.user_attrs["inherited_trials"]["run_first"] == [best.number]
    first = study.trials[len(history)]
    assert "inherited_from" not in first.user_attrs
    assert first.params == {"depth": best.params["depth"], "grow_policy": "SymmetricTree"}
