"""hpo's per-trial overhead next to a bare Optuna + MLflow loop with the same objective.

What it measures
----------------
Both sides run the same trials: real CatBoost training through ``hpo.trainer.train`` on
scikit-learn's diabetes data (30 iterations, one thread, ``depth`` and ``learning_rate``
sampled at random), with the same parameters trial by trial (the bare loop's RandomSampler gets
the seed hpo's worker derives) and the same trial seeds. The fit is kept cheap on purpose, so
that the bookkeeping around it shows.

* bare:  ``optuna.create_study`` on SQLite, ``study.optimize``; the objective reports every
  intermediate value (``trial.report``) and then logs the trial to MLflow the plain way:
  ``mlflow.start_run(run_name=...)`` + ``mlflow.log_params`` + ``mlflow.log_metrics``.
* hpo:   a space YAML in a temporary workspace and ``hpo.runner.run_study(space, jobs=1)``:
  budget slots claimed from the storage, heartbeats, trial attributes, and one MLflow child run
  per trial (created at trial start, filled with one ``log_batch`` at the end, which also holds
  the per-iteration history).

Both sides use SQLite for Optuna and ``sqlite:///<tmp>/mlflow.db`` for MLflow, fresh files in a
temporary folder every repetition; nothing is written outside those folders.

Per side and repetition it records:

* fit_seconds  ``FitResult.fit_seconds`` (hpo's ``fit_seconds`` trial attribute). With 30 iterations
               ``train`` reports the validation value every iteration, and each report is a write to
               the Optuna storage made from inside CatBoost's callback, so fit_seconds holds those
               writes too. To split them out, both sides call ``train`` through the same thin
               wrapper that times the ``report`` callback (for hpo: ``hpo.objective.train`` is
               swapped for the wrapper while the benchmark runs; no hpo file is changed).
* catboost     fit_seconds - reports: the fit alone
* reports      time spent in ``report`` (``trial.report``, i.e. intermediate-value writes)
* optuna trial ``datetime_complete - datetime_start`` of the Optuna trials. For hpo this leaves
               out the MLflow finish, which happens after ``study.tell``; for the bare loop it
               includes the MLflow logging (it is inside the objective).
* per trial    wall time of the trial loop / number of trials, the honest figure for both sides.
               One-off set-up is left out: for hpo, ``RunResult.elapsed_seconds`` (which excludes
               loading data, creating the study and the MLflow experiment); for the bare loop,
               only ``study.optimize`` is timed.
* overhead     per trial - mean catboost: everything a trial costs besides training the model
               (intermediate values, trial bookkeeping, MLflow).

Repetitions alternate which side goes first, so machine noise hits both alike; the table shows
medians across repetitions and the ratios are medians of the per-repetition ratios.

Run it from the repository root:

    .venv/bin/python benchmarks/logging_overhead.py [--trials 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

STUDY_SEED = 7
ITERATIONS = 30
DEPTH = (2, 4)
LEARNING_RATE = (0.03, 0.3)
METRIC = "pearson_r"


def space_dict(n_trials: int) -> dict:
    return {
        "study": "bench",
        "data": {
            "version": "v0.1.0",
            "source": "sklearn:diabetes",
            "target": "target",
            "split": {"validation": 0.2, "test": 0.2, "seed": 0},
        },
        "model": "catboost",
        "metric": METRIC,
        "n_trials": n_trials,
        "seed": STUDY_SEED,
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "params": {
            "depth": {"type": "int", "low": DEPTH[0], "high": DEPTH[1]},
            "learning_rate": {"type": "float", "low": LEARNING_RATE[0], "high": LEARNING_RATE[1], "log": True},
        },
        "fixed": {"iterations": ITERATIONS, "thread_count": 1},
    }


@dataclass(frozen=True)
class Measure:
    n: int
    elapsed: float  # the trial loop, without one-off set-up
    fits: list[float]  # FitResult.fit_seconds, reports included
    reports: list[float]  # time inside the report callback, per trial
    durations: list[float]  # Optuna's datetime_complete - datetime_start
    params: list[dict]

    @property
    def catboost(self) -> list[float]:
        return [f - r for f, r in zip(self.fits, self.reports, strict=True)]

    @property
    def per_trial(self) -> float:
        return self.elapsed / self.n

    @property
    def overhead(self) -> float:
        return self.per_trial - statistics.fmean(self.catboost)


class TimedTrain:
    """``hpo.trainer.train`` with the time spent in its ``report`` callback recorded per call."""

    def __init__(self) -> None:
        from hpo.trainer import train

        self._train = train
        self.calls: list[tuple[float, float]] = []  # (fit_seconds, seconds in report)

    def __call__(self, **kwargs):
        report = kwargs.get("report")
        spent = 0.0
        if report is not None:

            def timed(step: int, value: float) -> bool:
                nonlocal spent
                t = time.perf_counter()
                try:
                    return report(step, value)
                finally:
                    spent += time.perf_counter() - t

            kwargs["report"] = timed
        result = self._train(**kwargs)
        self.calls.append((result.fit_seconds, spent))
        return result


def quiet() -> None:
    import mlflow  # noqa: F401  (MLflow sets its loggers to INFO when imported)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")


@contextlib.contextmanager
def workspace(kind: str) -> Iterator[tuple[Path, str]]:
    """A fresh temporary folder, made the current directory, with its MLflow store selected."""
    import mlflow

    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix=f"hpo-bench-{kind}-") as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        os.environ.pop("HPO_STORAGE", None)
        # A URI set with mlflow.set_tracking_uri overrides the environment variable for the
        # whole process, so both sides set it (hpo's MlflowClient() would otherwise follow the
        # bare loop's previous store).
        mlflow.set_tracking_uri(uri)
        os.chdir(root)  # MLflow's default artifact root (./mlruns) and hpo's studies/ land here
        try:
            yield root, uri
        finally:
            os.chdir(old)


def hpo_sampler_seed() -> int:
    """The RandomSampler seed of hpo's first worker on a new study (see hpo.runner._worker_loop)."""
    import numpy as np

    return int(np.random.SeedSequence([STUDY_SEED, 0, 0]).generate_state(1)[0])


def run_bare(data, n: int) -> Measure:
    import mlflow
    import optuna

    from hpo.trainer import trial_seed

    train = TimedTrain()
    with workspace("bare") as (root, _):
        mlflow.set_experiment("bench-bare")
        study = optuna.create_study(
            storage=f"sqlite:///{root / 'optuna.db'}",
            study_name="bench",
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(seed=hpo_sampler_seed()),
        )

        def objective(trial: optuna.Trial) -> float:
            tuned = {
                "depth": trial.suggest_int("depth", *DEPTH),
                "learning_rate": trial.suggest_float("learning_rate", *LEARNING_RATE, log=True),
            }
            params = {"iterations": ITERATIONS, "thread_count": 1, **tuned}
            result = train(
                model="catboost",
                metric=METRIC,
                data=data,
                params=params,
                seed=trial_seed(STUDY_SEED, trial.number),
                thread_count=1,
                report=lambda step, v: (trial.report(v, step), True)[1],
            )
            metrics = {f"val_{k}": v for k, v in result.metrics.items()}
            metrics["fit_seconds"] = result.fit_seconds
            with mlflow.start_run(run_name=f"bench-{trial.number}"):
                mlflow.log_params(params)
                mlflow.log_metrics(metrics)
            return result.objective

        start = time.perf_counter()
        study.optimize(objective, n_trials=n)
        elapsed = time.perf_counter() - start
        trials = study.get_trials(deepcopy=False)
        check_trials(trials, n, "bare")
        fits, reports = (list(x) for x in zip(*train.calls, strict=True))
        return Measure(n, elapsed, fits, reports, durations(trials), [dict(t.params) for t in trials])


def run_hpo(n: int) -> Measure:
    import optuna

    import hpo.objective
    from hpo.runner import run_study
    from hpo.storage import open_storage

    train = TimedTrain()

    with workspace("hpo") as (root, _):
        (root / "search_spaces").mkdir()
        space = root / "search_spaces" / "bench.yaml"
        space.write_text(yaml.safe_dump(space_dict(n), sort_keys=False))
        hpo.objective.train = train  # the same timing wrapper as the bare loop's
        try:
            result = run_study(space, jobs=1)
        finally:
            hpo.objective.train = train._train
        study = optuna.load_study(study_name="bench", storage=open_storage(result.storage, create=False))
        trials = study.get_trials(deepcopy=False)
        check_trials(trials, n, "hpo")
        # train.calls holds the fit_seconds hpo stores as a trial attribute (unrounded).
        fits, reports = (list(x) for x in zip(*train.calls, strict=True))
        return Measure(n, result.elapsed_seconds, fits, reports, durations(trials), [dict(t.params) for t in trials])


def check_trials(trials: list, n: int, side: str) -> None:
    states = [t.state.name for t in trials]
    if len(trials) != n or any(s != "COMPLETE" for s in states):
        raise SystemExit(f"{side}: expected {n} complete trials, got {states}")


def durations(trials: list) -> list[float]:
    return [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]


def load_data():
    """The diabetes data version, loaded once through hpo (as the bare loop's objective uses it)."""
    from hpo.prepare import prepare

    with workspace("data") as (root, _):
        space = root / "space.yaml"
        space.write_text(yaml.safe_dump(space_dict(1), sort_keys=False))
        return prepare(space).data


def ms(x: float) -> str:
    return f"{x * 1000:8.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20, help="trials per side and repetition (default 20)")
    ap.add_argument("--repeats", type=int, default=3, help="repetitions, alternating which side goes first (default 3)")
    ap.add_argument("--warmup", type=int, default=2, help="trials per side in an untimed warm-up run (default 2; 0: none)")
    args = ap.parse_args()

    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "HPO_STORAGE")}
    quiet()
    import catboost
    import mlflow
    import optuna

    import hpo

    print("hpo logging overhead: hpo run vs a bare Optuna loop logging to MLflow the plain way")
    print(
        f"date {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}; cpus {os.cpu_count()}"
    )
    print(
        f"hpo {hpo.__version__}, optuna {optuna.__version__}, mlflow {mlflow.__version__}, catboost {catboost.__version__}; "
        "stores: SQLite (Optuna) and sqlite:///.../mlflow.db (MLflow), fresh per repetition"
    )
    print(
        f"objective: CatBoost on sklearn:diabetes, {ITERATIONS} iterations, 1 thread, depth {DEPTH[0]}-{DEPTH[1]}, "
        f"learning_rate {LEARNING_RATE[0]}-{LEARNING_RATE[1]} (log); {args.trials} trials x {args.repeats} repeats per side"
    )
    print()

    data = load_data()
    try:
        if args.warmup:
            run_bare(data, args.warmup)
            run_hpo(args.warmup)
        runs: list[dict[str, Measure]] = []
        for r in range(args.repeats):
            order = ("bare", "hpo") if r % 2 == 0 else ("hpo", "bare")
            rep: dict[str, Measure] = {}
            for side in order:
                rep[side] = run_bare(data, args.trials) if side == "bare" else run_hpo(args.trials)
            if rep["bare"].params != rep["hpo"].params:
                print(f"note: repeat {r + 1}: the two sides sampled different parameters", file=sys.stderr)
            runs.append(rep)
            print(
                f"repeat {r + 1} ({order[0]} first): per trial bare {rep['bare'].per_trial * 1000:.1f} ms, "
                f"hpo {rep['hpo'].per_trial * 1000:.1f} ms -> {rep['hpo'].per_trial / rep['bare'].per_trial:.2f}x"
            )
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def med(side: str, f) -> float:
        return statistics.median(f(rep[side]) for rep in runs)

    print()
    print("milliseconds per trial, median of repeats")
    cols = [
        ("fit_seconds", lambda m: statistics.median(m.fits)),
        ("catboost", lambda m: statistics.median(m.catboost)),
        ("reports", lambda m: statistics.median(m.reports)),
        ("optuna trial", lambda m: statistics.median(m.durations)),
        ("per trial", lambda m: m.per_trial),
        ("overhead", lambda m: m.overhead),
    ]
    header = f"{'side':<6}" + "".join(f"{name:>13}" for name, _ in cols)
    print(header)
    print("-" * len(header))
    for side in ("bare", "hpo"):
        print(f"{side:<6}" + "".join(f"{ms(med(side, f)):>13}" for _, f in cols))
    print()
    print("fit_seconds: train()'s fit time, which includes the reports; catboost: fit_seconds - reports;")
    print("reports: trial.report calls (intermediate-value writes) made during the fit; optuna trial: Optuna's")
    print("start-to-complete (hpo's leaves out its MLflow finish); per trial: trial loop wall time / trials,")
    print("set-up excluded; overhead: per trial - mean catboost")
    print()
    ratio = statistics.median(rep["hpo"].per_trial / rep["bare"].per_trial for rep in runs)
    over = statistics.median(rep["hpo"].overhead / rep["bare"].overhead for rep in runs)
    n = args.trials
    print(f"ratio hpo/bare overhead:  {over:.2f}x (median of {args.repeats} repeats, {n} trials each)")
    print(f"ratio hpo/bare per trial: {ratio:.2f}x (median of {args.repeats} repeats, {n} trials each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
