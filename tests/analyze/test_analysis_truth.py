"""`hpo analyze` says what it did: the top trials it took, where its noise floor came from, why it
keeps a range, every edge it moves, and that a study without a COMPLETE trial has nothing to analyse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from hpo.space import load_space
from tests.analyze.test_analyze import dashboard_study, storage
from tests.conftest import invoke, shared_workspace, write_space

# A deterministic estimator: HistGradientBoosting without early stopping fits the same model for
# every seed, so re-fits with other seeds measure no noise at all.
HGB = {
    "model": "sklearn.ensemble.HistGradientBoostingRegressor",
    "metric": "r2",
    "n_trials": 12,
    "params": {
        "max_depth": {"type": "int", "low": 2, "high": 4},
        "learning_rate": {"type": "float", "low": 0.001, "high": 0.3, "log": True},
    },
    "fixed": {"max_iter": 30, "early_stopping": False},
}
# CatBoost with more iterations doing better: a strong monotone trend with the best trial on the
# upper edge (rho=+0.78, p<0.001), in a study whose values are otherwise within its noise floor.
ITERATIONS = {
    "n_trials": 16,
    "params": {"iterations": {"type": "int", "low": 10, "high": 60}},
    "fixed": {"thread_count": 1, "learning_rate": 0.05},
}


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with shared_workspace(tmp_path_factory, "truth") as ws:
        for name, space in (("hgb", HGB), ("iterations", ITERATIONS)):
            path = write_space(ws / "search_spaces", f"{name}.yaml", study=name, **space)
            assert invoke("run", str(path), "--quiet")[0] == 0
        yield ws


def analysis(*args: str) -> dict:
    code, out, err = invoke("analyze", "--json", "--importance", "none", *args)
    assert code == 0, err
    return json.loads(out)


def test_a_deterministic_estimator_gets_a_noise_floor_from_its_validation_rows(studies: Path) -> None:
    result = analysis("--study", "hgb", "--dry-run")
    noise = result["noise"]
    assert noise["sd"] > 0.001, noise  # from re-fits with other seeds alone it was 0: no evidence gate at all
    # Re-fits with other seeds all give the same value: that source alone made the floor 0.
    assert noise["seed_sd"] == 0 and len(set(noise["values"])) == 1
    # The validation rows give one: a paired bootstrap of the best and the median trial's predictions.
    assert noise["basis"] == "validation rows" and noise["rows"] == 88
    assert noise["sd"] == noise["rows_sd"] > 0.001
    assert "paired bootstrap resamples of the 88 validation rows" in noise["source"]
    assert "all gave the same value (a deterministic fit)" in noise["source"]
    assert result["params"]["learning_rate"]["recommendation"]["evidence"]["noise"] == noise["sd"]


def test_the_report_says_how_many_top_trials_it_took_and_why(studies: Path) -> None:
    code, out, err = invoke("analyze", "--study", "hgb", "--importance", "none")
    assert code == 0, err
    # 20% of 12 trials is 2.4: 3 were taken, 25% of them, and the report says so rather than "the best 20% (3)".
    taken = "3 of 12 COMPLETE trials (25%): the best 20% of 12 is 2.4, rounded up to 3"
    note = (studies / "studies" / "hgb" / "analysis.md").read_text()
    page = (studies / "studies" / "hgb" / "analysis.html").read_text()
    served = dashboard_study(studies, "hgb")["note"]["body"]
    for text in (out, note, page, served):
        assert f"Top trials: {taken}" in text.replace("\n", " ")
        assert "the best 20% (" not in text
    result = json.loads((studies / "studies" / "hgb" / "analysis.json").read_text())
    assert result["top_count"] == 3 and result["top_reason"] == taken
    assert f"Noise floor: sd {result['noise']['sd']:.3g} (validation rows: sd" in out  # and where it came from
    derived = load_space(studies / "search_spaces" / "hgb-gen2.yaml").space
    assert derived.derived_from is not None
    assert any("lower edge 0.001 -> " in r and "upper edge 0.3 -> " in r for r in derived.derived_from.reasons)


def test_a_widened_range_names_every_edge_it_moved_and_a_kept_one_says_why(studies: Path) -> None:
    result = analysis("--study", "hgb", "--dry-run")
    # The widened learning rate moved both edges: the reason names each, old and new.
    rec = result["params"]["learning_rate"]["recommendation"]
    assert rec["kind"] == "widen" and rec["low"] > 0.001 and 0.3 < rec["high"] <= 1, rec  # a boosting step stays <= 1
    assert f"lower edge 0.001 -> {rec['low']:.4g}, in to where the resampled top trials start" in rec["reason"]
    assert f"upper edge 0.3 -> {rec['high']:.4g}, out by the searched width" in rec["reason"]

    # A kept range says which gate failed, with its numbers.
    depth = result["params"]["max_depth"]["recommendation"]
    assert depth["kind"] == "keep"
    assert depth["reason"].startswith("no clear effect after 12 trials: its smallest descriptive p-value, ")
    assert "is not below 0.05" in depth["reason"] and depth["reason"].endswith(": keep 2-4")


def test_a_strong_trend_into_an_edge_moves_it_even_in_a_noisy_study(studies: Path) -> None:
    result = analysis("--study", "iterations", "--dry-run")
    it = result["params"]["iterations"]
    assert it["spearman_rho"] > 0.7 and it["spearman_p"] < 0.001 and it["best"] == 60
    # The study is within its noise floor, which used to keep iterations at 10-60 without a word on the trend.
    assert result["message"].startswith("the study's values cannot be told apart from noise")
    assert "Every parameter is kept but iterations, whose edge a strong monotone trend presses against" in result["message"]
    rec = it["recommendation"]
    assert (rec["kind"], rec["low"], rec["high"]) == ("widen", 10, 110), rec
    reason = rec["reason"]
    assert "at the upper edge, and the trend points past it, a strong monotone trend (rho=+0.78" in reason
    assert "but not the size gate: the spread of its groups' true means" in reason
    assert "upper edge 60 -> 110, out by the searched width; the lower edge is kept" in reason


def test_a_study_without_a_complete_trial_is_refused_and_nothing_is_written(workspace: Path, mlflow_store: str) -> None:
    (workspace / "studies").mkdir()
    study = optuna.create_study(storage=storage(workspace), study_name="empty")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 0:
            raise ValueError("a failed fit")
        raise optuna.TrialPruned(x)

    study.optimize(objective, n_trials=3, catch=(ValueError,))

    def files() -> list[Path]:  # SQLite's -wal and -shm files come and go with connections
        return sorted(p.relative_to(workspace) for p in workspace.rglob("*") if not p.name.endswith(("-wal", "-shm")))

    before = files()
    for args in ((), ("--dry-run",)):
        code, out, err = invoke("analyze", "--study", "empty", *args)
        assert code == 2 and out == "", out
        assert err == "error: study 'empty' has no COMPLETE trial: 3 trials, states 1 FAIL, 2 PRUNED\n"
    assert files() == before
    code, _, err = invoke("reproduce", "--study", "empty")
    assert code == 2 and err == "error: study 'empty' has no COMPLETE trial to reproduce\n", err
