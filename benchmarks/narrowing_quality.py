"""Does analyse-and-narrow find better models than one wide study, for the same trial budget?

What it compares
----------------
On two datasets scikit-learn ships (diabetes: regression scored by validation Pearson r;
breast_cancer: classification scored by validation log loss), for each seed, at an equal total
budget B of trials (default 60):

* wide        one TPE study over the wide space, B trials.
* narrow+warm a wide study of B/2 trials, then ``hpo analyze`` (every parameter, its defaults),
              then the derived study for the other B/2 trials, warm-started with the parent's
              trials that lie inside it (hpo's default).
* narrow      the same, without warm start (``--no-warm-start``).

If the analysis recommends no change, there is no derived space; the second half then resumes the
wide study, so the arm still spends B trials.

For each arm it records the best validation metric over all the arm's trials, and the test metric
of that best trial, re-trained the way ``hpo promote`` does it (the trial's recipe: recorded space,
params and seed; ``hpo.promote.Recipe``) and scored on the test split, which no arm ever saw.

Everything runs through hpo's Python API as a user would run the CLI (``run_study``,
``analyze_study``), each (dataset, seed) in a fresh temporary workspace with its own SQLite
storage and MLflow store. CatBoost uses one thread per fit and two (dataset, seed) jobs run at a
time on the 2-core machine; the figures are metric values, not times, so that is safe.

The wide space is the example's, made wider the way a user starts out (depth 2-10, learning rate
0.005-0.5, l2_leaf_reg 0.5-30, random_strength 0.1-10; 300 iterations; median pruner).

Run it from the repository root:

    .venv/bin/python benchmarks/narrowing_quality.py [--seeds 5] [--budget 60]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DATASETS = {
    "diabetes": {"source": "sklearn:diabetes", "metric": "pearson_r"},
    "breast_cancer": {"source": "sklearn:breast_cancer", "metric": "logloss"},
}
ARMS = ("wide", "narrow+warm", "narrow")


def space(dataset: str, study: str, n_trials: int, seed: int) -> dict[str, Any]:
    d = DATASETS[dataset]
    return {
        "study": study,
        "data": {
            "version": "v0.1.0",
            "source": d["source"],
            "target": "target",
            "split": {"validation": 0.2, "test": 0.2, "seed": 0},
        },
        "model": "catboost",
        "metric": d["metric"],
        "n_trials": n_trials,
        "seed": seed,
        "sampler": {"name": "tpe", "n_startup_trials": 8},
        "pruner": {"name": "median", "n_startup_trials": 5, "n_warmup_steps": 100},
        "params": {
            "depth": {"type": "int", "low": 2, "high": 10},
            "learning_rate": {"type": "float", "low": 0.005, "high": 0.5, "log": True},
            "l2_leaf_reg": {"type": "float", "low": 0.5, "high": 30, "log": True},
            "random_strength": {"type": "float", "low": 0.1, "high": 10, "log": True},
        },
        "fixed": {"iterations": 300, "thread_count": 1},
    }


@dataclass
class Outcome:
    dataset: str
    seed: int
    arm: str
    best_val: float
    test: float
    changes: str  # what the analysis changed (narrow arms)
    seconds: float


def run_job(dataset: str, seed: int, budget: int) -> list[Outcome]:
    """All arms for one dataset and seed, in a fresh workspace."""
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="hpo-bench-narrow-") as tmp:
        root = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
        os.environ.pop("HPO_STORAGE", None)
        (root / "search_spaces").mkdir()
        from hpo.workspace import load_workspace

        ws = load_workspace(root)
        out = []

        start = time.perf_counter()
        wide = _run(ws, space(dataset, "wide", budget, seed))
        out.append(_outcome(ws, dataset, seed, "wide", [wide], "", time.perf_counter() - start))

        start = time.perf_counter()
        half = _run(ws, space(dataset, "half", budget // 2, seed))
        # Both analyses read the same B/2 trials before either second half runs.
        arms = (("narrow+warm", True), ("narrow", False))
        derived = {arm: _analyze(ws, half, arm.replace("+", "-"), warm) for arm, warm in arms}
        first_half = time.perf_counter() - start
        for arm, (path, study, changes) in derived.items():
            start = time.perf_counter()
            if path is None:
                # Nothing to change: the arm spends its second half on the wide study (once for both arms).
                resumed = ws.search_spaces_dir / "half-resumed.yaml"
                if not resumed.exists():
                    resumed.write_text(yaml.safe_dump(space(dataset, half, budget, seed), sort_keys=False))
                    _resume(ws, resumed)
                studies = [half]
            else:
                # The derived space keeps the parent's n_trials (half the budget): exactly the second half.
                _resume(ws, path)
                studies = [half, study]
            out.append(_outcome(ws, dataset, seed, arm, studies, changes, first_half + time.perf_counter() - start))
        return out


def _run(ws: Any, content: dict[str, Any], name: str | None = None) -> str:
    from hpo.run import run_study

    path = ws.search_spaces_dir / f"{name or content['study']}.yaml"
    if not path.exists():
        path.write_text(yaml.safe_dump(content, sort_keys=False))
    run_study(path, workspace=ws)
    return content["study"]


def _analyze(ws: Any, parent: str, name: str, warm: bool) -> tuple[Path | None, str | None, str]:
    """``hpo analyze`` of every parameter: the derived space (None when nothing changes) and what changed."""
    from hpo.analyze import analyze_study

    result = analyze_study(parent, workspace=ws, name=name, warm_start=warm)
    kinds = {p: a.recommendation.kind for p, a in result.analysis.params.items()}
    changes = "; ".join(f"{p}: {k}" for p, k in kinds.items() if k not in ("keep", "none"))
    return result.derived_space, result.derived_study, changes or "no change"


def _resume(ws: Any, path: Path) -> None:
    from hpo.run import run_study

    run_study(path, workspace=ws)


def _outcome(ws: Any, dataset: str, seed: int, arm: str, names: list[str], changes: str, seconds: float) -> Outcome:
    from hpo.metrics import METRICS
    from hpo.models import evaluate
    from hpo.promote import Recipe
    from hpo.studies import load_study

    metric = METRICS[DATASETS[dataset]["metric"]]
    url = ws.storage_url()
    best = None
    for name in names:
        s = load_study(url, name)
        t = s.best_trial
        if best is None or (t.value > best[1].value if metric.higher_is_better else t.value < best[1].value):
            best = (s, t)
    assert best is not None
    recipe = Recipe.from_trial(*best)
    data = recipe.load_data(ws, f"{arm} best")
    fit = recipe.train(data)
    test = evaluate(fit.model, data.test, data)[metric.name]
    return Outcome(dataset, seed, arm, float(best[1].value), float(test), changes, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="study seeds per dataset (default 5)")
    parser.add_argument("--budget", type=int, default=60, help="trials per arm in total (default 60)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--processes", type=int, default=2, help="(dataset, seed) jobs at a time (default 2)")
    args = parser.parse_args()
    if args.budget < 20 or args.budget % 2:
        parser.error("--budget must be even and >= 20 (each half needs the analysis's 10 COMPLETE trials)")

    import catboost
    import optuna

    started = time.time()
    jobs = [(d, 1000 + i, args.budget) for d in args.datasets for i in range(args.seeds)]
    with ProcessPoolExecutor(max_workers=args.processes) as pool:
        results = [o for outcomes in pool.map(run_job, *zip(*jobs, strict=True)) for o in outcomes]

    print(f"# hpo narrowing quality, {datetime.date.today()}")
    print(
        f"{os.cpu_count()} cores, Python {platform.python_version()}, Optuna {optuna.__version__}, "
        f"CatBoost {catboost.__version__}; budget {args.budget} trials per arm, {args.seeds} seeds, "
        f"{(time.time() - started) / 60:.1f} min\n"
    )
    print(report(results, args.datasets))


def report(results: list[Outcome], datasets: list[str]) -> str:
    from hpo.metrics import METRICS

    lines = [
        "| dataset (metric) | arm | median best validation | median test of best | seeds better than wide (val / test) |",
        "|---|---|---|---|---|",
    ]
    verdicts, details = [], []
    for d in datasets:
        metric = METRICS[DATASETS[d]["metric"]]
        sign = 1 if metric.higher_is_better else -1
        by = {a: {o.seed: o for o in results if o.dataset == d and o.arm == a} for a in ARMS}
        seeds = sorted(by["wide"])
        medians = {}
        for a in ARMS:
            val = statistics.median(by[a][s].best_val for s in seeds)
            test = statistics.median(by[a][s].test for s in seeds)
            medians[a] = (val, test)
            if a == "wide":
                wins = "-"
            else:
                v = sum(sign * (by[a][s].best_val - by["wide"][s].best_val) > 0 for s in seeds)
                t = sum(sign * (by[a][s].test - by["wide"][s].test) > 0 for s in seeds)
                wins = f"{v}/{len(seeds)} / {t}/{len(seeds)}"
            lines.append(f"| {d} ({metric.name}, {metric.direction}) | {a} | {val:.4f} | {test:.4f} | {wins} |")
        best_val = max(ARMS, key=lambda a: sign * medians[a][0])
        best_test = max(ARMS, key=lambda a: sign * medians[a][1])
        verdicts.append(f"{d}: best median validation: {best_val}; best median test: {best_test}")
        for a in ARMS[1:]:
            details += [f"{d} seed {s} {a}: {by[a][s].changes}" for s in seeds]
    return "\n".join(lines + ["", *verdicts, "", "What the analyses changed:", *details])


if __name__ == "__main__":
    sys.exit(main())
