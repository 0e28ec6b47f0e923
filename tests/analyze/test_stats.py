"""hpo.analyze's statistics on studies of known structure, built through Optuna's real (SQLite) storage."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest

from hpo.analyze import MIN_TRIALS, NumericAnalysis, analyze
from hpo.models import MODELS

optuna.logging.set_verbosity(optuna.logging.WARNING)
CATBOOST_LIMITS = MODELS["catboost"].hard_limits


def study_of(
    tmp_path: Path, objective: Callable[[optuna.Trial, np.random.Generator], float], n: int, direction: str = "maximize"
) -> list[optuna.trial.FrozenTrial]:
    """Run ``objective`` with random sampling into a SQLite study and read the trials back from it."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(
        storage=url, study_name="known", direction=direction, sampler=optuna.samplers.RandomSampler(seed=1)
    )
    study.optimize(lambda t: objective(t, np.random.default_rng(t.number)), n_trials=n)
    return optuna.load_study(study_name="known", storage=url).get_trials()


def width(low: float, high: float, log: bool) -> float:
    return math.log10(high) - math.log10(low) if log else high - low


def test_upper_edge_optimum_widens_past_the_edge_within_the_model_limit(tmp_path: Path) -> None:
    # Deeper is better all the way to depth 13, beyond the searched 2-10.
    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        depth = t.suggest_int("depth", 2, 10)
        lr = t.suggest_float("learning_rate", 0.01, 0.3, log=True)
        return -((depth - 13) ** 2) / 20 - (math.log10(lr) + 1) ** 2 + rng.normal(0, 0.3)

    a = analyze("known", study_of(tmp_path, objective, 60), "maximize", hard_limits=CATBOOST_LIMITS)
    depth = a.params["depth"]
    assert isinstance(depth, NumericAnalysis)
    assert depth.spearman_rho is not None and depth.spearman_rho > 0.5
    rec = depth.recommendation
    assert rec.kind == "widen", rec.reason
    assert rec.high > 10 and rec.high <= 16
    assert rec.low > 2  # the side the top trials avoid is tightened
    assert "upper edge" in rec.reason


def test_monotone_towards_the_lower_edge_widens_below_it_and_stays_log(tmp_path: Path) -> None:
    # Minimised loss that keeps falling as the learning rate falls.
    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        lr = t.suggest_float("learning_rate", 0.01, 0.3, log=True)
        return math.log10(lr) + rng.normal(0, 0.1)

    a = analyze("known", study_of(tmp_path, objective, 40, "minimize"), "minimize", hard_limits=CATBOOST_LIMITS)
    rec = a.params["learning_rate"].recommendation
    assert rec.kind == "widen", rec.reason
    assert rec.log is True
    assert 0 < rec.low < 0.01
    assert rec.high < 0.3


def test_an_estimators_declared_limit_bounds_a_widened_range(tmp_path: Path) -> None:
    # Shallower is better down to the edge of 2-10; scikit-learn declares max_depth >= 1, so the
    # widened range stops at 1 (a max_depth of 0 would fail every trial that drew it).
    from hpo.models import model_spec

    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        return -t.suggest_int("max_depth", 2, 10) + rng.normal(0, 0.5)

    limits = model_spec("sklearn.ensemble.HistGradientBoostingRegressor").hard_limits
    assert limits["max_depth"] == (1, None) and limits["max_bins"] == (2, 255)
    rec = analyze("known", study_of(tmp_path, objective, 40), "maximize", hard_limits=limits).params["max_depth"].recommendation
    assert rec.kind == "widen" and rec.low == 1 and "capped at the parameter's bound 1" in rec.reason, rec.reason


def test_monotone_up_to_the_model_limit_narrows_towards_it(tmp_path: Path) -> None:
    # subsample cannot exceed 1.0 in CatBoost: the best that can be done is to search near 1.0.
    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        return t.suggest_float("subsample", 0.1, 1.0) + rng.normal(0, 0.05)

    a = analyze("known", study_of(tmp_path, objective, 40), "maximize", hard_limits=CATBOOST_LIMITS)
    rec = a.params["subsample"].recommendation
    assert rec.kind == "narrow", rec.reason
    assert rec.high == 1.0 and rec.low > 0.1
    assert "limit" in rec.reason


def test_interior_optimum_on_a_log_parameter_narrows_around_it(tmp_path: Path) -> None:
    optimum = 0.01

    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        lr = t.suggest_float("learning_rate", 1e-4, 1.0, log=True)
        return -((math.log10(lr) - math.log10(optimum)) ** 2) + rng.normal(0, 0.1)

    a = analyze("known", study_of(tmp_path, objective, 60), "maximize")
    p = a.params["learning_rate"]
    rec = p.recommendation
    assert rec.kind == "narrow", rec.reason
    assert rec.log is True
    assert rec.low <= optimum <= rec.high
    assert width(rec.low, rec.high, True) < 0.6 * width(1e-4, 1.0, True)
    assert isinstance(p, NumericAnalysis) and p.top_low <= optimum * 3 and p.top_high >= optimum / 3


def test_interior_optimum_on_an_int_parameter_snaps_to_ints(tmp_path: Path) -> None:
    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        return -abs(t.suggest_int("depth", 1, 16) - 7) + rng.normal(0, 0.3)

    rec = analyze("known", study_of(tmp_path, objective, 50), "maximize").params["depth"].recommendation
    assert rec.kind == "narrow", rec.reason
    assert isinstance(rec.low, int) and isinstance(rec.high, int)
    assert rec.low <= 7 <= rec.high and rec.high - rec.low < 15


def test_a_parameter_with_no_effect_is_fixed_or_kept(tmp_path: Path) -> None:
    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        x = t.suggest_float("x", 0, 1)
        t.suggest_float("noise", 1, 10)
        return x + rng.normal(0, 0.1)

    trials = study_of(tmp_path, objective, 60)
    a = analyze("known", trials, "maximize")
    rec = a.params["noise"].recommendation
    assert rec.kind == "fix", rec.reason  # 60 trials is enough to call it: 3 x MIN_TRIALS
    best = max((t for t in trials if t.value is not None), key=lambda t: t.value)
    assert rec.value == pytest.approx(best.params["noise"], rel=1e-5)
    assert a.params["x"].importance > a.params["noise"].importance
    # With fewer trials the same parameter is only kept.
    few = analyze("known", trials[:20], "maximize").params["noise"].recommendation
    assert few.kind == "keep", few.reason


def test_a_clearly_worse_categorical_choice_is_dropped(tmp_path: Path) -> None:
    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        policy = t.suggest_categorical("grow_policy", ["SymmetricTree", "Depthwise", "Lossguide"])
        x = t.suggest_float("x", 0, 1)
        return x + (-1.0 if policy == "Lossguide" else 0.0) + rng.normal(0, 0.2)

    a = analyze("known", study_of(tmp_path, objective, 45), "maximize")
    p = a.params["grow_policy"]
    rec = p.recommendation
    assert rec.kind == "drop", rec.reason
    assert rec.choices == ["SymmetricTree", "Depthwise"]
    worse = {c.choice: c.worse for c in p.choices}
    assert worse == {"SymmetricTree": False, "Depthwise": False, "Lossguide": True}
    assert "Lossguide" in rec.reason and "Mann-Whitney" in rec.reason


def test_too_few_trials_recommends_nothing_and_says_why(tmp_path: Path) -> None:
    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        return t.suggest_int("depth", 2, 10) + t.suggest_float("lr", 0.01, 0.3, log=True)

    a = analyze("known", study_of(tmp_path, objective, MIN_TRIALS - 1), "maximize")
    assert not a.enough
    for p in a.params.values():
        assert p.recommendation.kind == "none"
        assert f"at least {MIN_TRIALS}" in p.recommendation.reason
    # The statistics are still there to read.
    assert a.params["depth"].spearman_rho == pytest.approx(1.0, abs=0.2)


def test_only_complete_trials_count_and_stats_follow_the_log_scale(tmp_path: Path) -> None:
    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        lr = t.suggest_float("lr", 1e-4, 1.0, log=True)
        if t.number % 4 == 0:
            raise optuna.TrialPruned()
        return math.log10(lr)  # exactly linear in log10(lr)

    trials = study_of(tmp_path, objective, 24)
    a = analyze("known", trials, "maximize")
    p = a.params["lr"]
    assert a.n_complete == 18 and a.n_trials == 24 and p.n == 18
    assert p.pearson_r == pytest.approx(1.0)  # linear in log10, not in lr
    assert sum(g.count for g in p.groups) == 18
    d = a.as_dict()
    assert set(d["params"]["lr"]) >= {"pearson_r", "spearman_rho", "importance", "recommendation"}
    assert set(d["params"]["lr"]["recommendation"]) >= {"kind", "low", "high", "choices", "value", "reason"}
    json.dumps(d, allow_nan=False)  # strict JSON: no NaN or Infinity


def test_derived_space_fixes_drops_and_carries_everything_else_over(tmp_path: Path) -> None:
    import yaml

    from hpo.analyze import derive_space, next_study_name
    from hpo.space import parse_space
    from tests.conftest import small_space

    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        x = t.suggest_float("l2_leaf_reg", 1, 10)
        t.suggest_float("random_strength", 0.1, 10)
        policy = t.suggest_categorical("grow_policy", ["SymmetricTree", "Depthwise", "Lossguide"])
        return -abs(x - 4) + (-2.0 if policy == "Lossguide" else 0.0) + rng.normal(0, 0.3)

    params = {
        "l2_leaf_reg": {"type": "float", "low": 1, "high": 10},
        "random_strength": {"type": "float", "low": 0.1, "high": 10},
        "grow_policy": {"type": "categorical", "choices": ["SymmetricTree", "Depthwise", "Lossguide"]},
    }
    parent = yaml.safe_dump(small_space(params=params), sort_keys=False)
    a = analyze("small", study_of(tmp_path, objective, 60), "maximize")
    assert [a.params[n].recommendation.kind for n in params] == ["narrow", "fix", "drop"]

    derived = derive_space(parent, a, study=next_study_name("small", {"small-gen2"}), at="t0", storage=None, warm_start=True)
    assert derived is not None and derived.study == "small-gen3"
    space = parse_space(derived.text)
    assert space.params["l2_leaf_reg"].low <= 4 <= space.params["l2_leaf_reg"].high
    assert space.fixed["random_strength"] == a.params["random_strength"].recommendation.value
    assert "random_strength" not in space.params
    assert space.params["grow_policy"].choices == ["SymmetricTree", "Depthwise"]
    assert space.derived_from is not None and len(space.derived_from.reasons) == 3
    assert space.search_hash() != parse_space(parent).search_hash()
    before, after = parse_space(parent), space
    assert (after.data, after.metric, after.seed, after.sampler, after.pruner, after.n_trials) == (
        before.data,
        before.metric,
        before.seed + 1,  # a new sampler seed: the derived study does not replay the parent's draws
        before.sampler,
        before.pruner,
        before.n_trials,
    )
    assert next_study_name("small-gen3", set()) == "small-gen4"


def tpe_study_of(tmp_path: Path, objective: Callable[[optuna.Trial], float], n: int) -> list[optuna.trial.FrozenTrial]:
    """A study as plain Optuna makes it: TPE, so the trials are chosen adaptively."""
    url = f"sqlite:///{tmp_path / 'tpe.db'}"
    study = optuna.create_study(storage=url, study_name="tpe", direction="maximize", sampler=optuna.samplers.TPESampler(seed=3))
    study.optimize(objective, n_trials=n)
    return optuna.load_study(study_name="tpe", storage=url).get_trials()


def test_a_study_of_pure_noise_keeps_every_parameter_and_says_why(tmp_path: Path) -> None:
    # Values independent of the params: nothing can be learned, so nothing may be fixed or narrowed.
    rng = np.random.default_rng(7)

    def objective(t: optuna.Trial) -> float:
        t.suggest_int("depth", 2, 10)
        t.suggest_float("learning_rate", 0.01, 0.3, log=True)
        t.suggest_float("l2_leaf_reg", 1, 10)
        t.suggest_categorical("grow_policy", ["SymmetricTree", "Depthwise", "Lossguide"])
        return float(rng.normal(0.7, 0.02))

    a = analyze("tpe", tpe_study_of(tmp_path, objective, 80), "maximize")
    assert {n: p.recommendation.kind for n, p in a.params.items()} == dict.fromkeys(a.params, "keep")
    assert a.message is not None and "cannot be told apart from noise" in a.message
    assert "more trials" in a.message
    assert a.as_dict()["message"] == a.message


def test_a_noise_floor_above_the_differences_keeps_everything(tmp_path: Path) -> None:
    # A clear trend of 0.1 over the range: real without a floor, noise when re-fits spread by 0.5.
    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        return 0.1 * t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 1) * 0 + rng.normal(0, 0.005)

    from hpo.analyze import Noise

    trials = study_of(tmp_path, objective, 60)
    assert analyze("known", trials, "maximize").message is None
    a = analyze("known", trials, "maximize", noise=Noise(0.5, "3 re-fits with other seeds", [0.1, 0.9, 0.5]))
    assert a.message is not None and "noise floor" in a.message
    assert a.params["y"].recommendation.kind == "keep"
    # x's strong monotone trend into its upper edge moves that edge out, and only that one (issue 25, item 14).
    x = a.params["x"].recommendation
    assert (x.kind, x.low) == ("widen", 0.0) and x.high > 1 and "strong monotone trend" in x.reason, x
    assert a.params["x"].recommendation.evidence["noise"] == 0.5


def test_evidence_is_stated_and_the_range_comes_from_resampling(tmp_path: Path) -> None:
    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        return -abs(t.suggest_int("depth", 1, 16) - 7) + rng.normal(0, 0.3)

    p = analyze("known", study_of(tmp_path, objective, 50), "maximize").params["depth"]
    rec = p.recommendation
    ev = rec.evidence
    assert ev["n_top"] >= ev["min_top"] == 5
    assert ev["bootstrap"]["resamples"] == 200
    # The resampled range holds the raw top range, and the narrowed range holds both with a margin.
    assert ev["bootstrap"]["low"] <= p.top_low and ev["bootstrap"]["high"] >= p.top_high
    assert rec.low <= ev["bootstrap"]["low"] and rec.high >= ev["bootstrap"]["high"]
    assert "descriptive" in rec.reason and "bootstrap" in rec.reason


def test_the_report_draws_no_box_for_a_value_never_tried(tmp_path: Path) -> None:
    # depth 5 was never tried, nor learning rates in the middle decade: their groups are empty.
    # An empty group is a gap on the axis (which lists every group in order), not a box at 0.
    from hpo.analyze import figures

    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        depth = t.suggest_int("depth", 1, 8)
        lr = t.suggest_float("learning_rate", 1e-3, 1.0, log=True)
        if depth == 5 or 1e-2 <= lr < 1e-1:
            raise optuna.TrialPruned()
        return -abs(depth - 6) - abs(math.log10(lr) + 1) + rng.normal(0, 0.3)

    trials = study_of(tmp_path, objective, 60)
    a = analyze("known", trials, "maximize")
    figs = figures(a, trials, "r2")
    for name in ("depth", "learning_rate"):
        p = a.params[name]
        assert isinstance(p, NumericAnalysis)
        empty = {g.label for g in p.groups if g.count == 0}
        assert empty and (name != "depth" or empty == {"5"})
        fig = figs[name]
        boxes = [d for d in fig.data if d.type == "box"]
        assert all(b.xaxis == "x2" for b in boxes)
        assert [b.x[0] for b in boxes] == [g.label for g in p.groups if g.count > 0]
        for b, g in zip(boxes, [g for g in p.groups if g.count > 0], strict=True):
            assert b.median[0] == pytest.approx(g.median) and b.lowerfence[0] is not None
        axis = fig.layout.xaxis2
        assert axis.type == "category" and axis.categoryorder == "array"
        assert list(axis.categoryarray) == [g.label for g in p.groups]


def test_a_space_derived_for_new_data_moves_edges_but_keeps_the_rest(tmp_path: Path) -> None:
    import yaml

    from hpo.analyze import derive_space
    from hpo.space import parse_space
    from tests.conftest import small_space

    def objective(t: optuna.Trial, rng: np.random.Generator) -> float:
        lr = t.suggest_float("learning_rate", 0.001, 0.01, log=True)  # better towards the upper edge
        depth = t.suggest_int("depth", 1, 16)  # an interior optimum at 7
        return math.log10(lr) - abs(depth - 7) / 4 + rng.normal(0, 0.05)

    params = {
        "learning_rate": {"type": "float", "low": 0.001, "high": 0.01, "log": True},
        "depth": {"type": "int", "low": 1, "high": 16},
    }
    parent = yaml.safe_dump(small_space(params=params), sort_keys=False)
    a = analyze("small", study_of(tmp_path, objective, 60), "maximize", hard_limits=CATBOOST_LIMITS)
    assert {n: p.recommendation.kind for n, p in a.params.items()} == {"learning_rate": "widen", "depth": "narrow"}
    same = parse_space(derive_space(parent, a, study="same", at="t", storage=None, warm_start=True).text)
    new = derive_space(parent, a, study="new", at="t", storage=None, warm_start=True, data={"version": "v0.2.0"})
    assert new is not None
    space = parse_space(new.text)
    assert space.data.version == "v0.2.0"
    assert space.params["learning_rate"] == same.params["learning_rate"]  # the moved edge carries over
    assert (space.params["depth"].low, space.params["depth"].high) == (1, 16)  # the narrowing does not
    assert (same.params["depth"].low, same.params["depth"].high) != (1, 16)
    assert any(r.startswith("depth: narrow not carried to new data") for r in new.changes)
