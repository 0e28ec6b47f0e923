"""hpo's per-trial overhead next to bare Optuna loops with the same objective: no MLflow, manual MLflow, MLflowCallback.

What it measures
----------------
All four arms run the same trials: real CatBoost training through ``hpo.models.train`` on
scikit-learn's diabetes data (30 iterations, one thread, ``depth`` and ``learning_rate``
sampled at random), with the same parameters trial by trial (the Optuna arms' RandomSampler gets
the seed hpo's worker derives) and the same trial seeds. The fit is kept cheap on purpose, so
that the bookkeeping around it shows.

The three Optuna arms share one objective and one set-up: ``optuna.create_study`` on SQLite and
``study.optimize``; the objective reports every intermediate value (``trial.report``). They differ
only in how (and whether) a trial reaches MLflow:

* none:     no MLflow at all, the floor: what Optuna and the fit cost by themselves.
* manual:   the objective logs the trial the plain way at its end: ``mlflow.start_run(run_name=...)``
            + ``mlflow.log_params`` (the 4 fixed and tuned parameters) + ``mlflow.log_metrics``
            (``val_<metric>`` for every validation metric ``train`` returns, and ``fit_seconds``).
* callback: ``study.optimize(objective, n_trials, callbacks=[optuna_integration.MLflowCallback(...)])``
            with ``tracking_uri=<the store>``, ``metric_name="val_<metric>"`` and the defaults
            otherwise (``create_experiment=True``, no ``mlflow_kwargs``, ``tag_study_user_attrs=False``,
            ``tag_trial_user_attrs=True``). After each trial is told, the callback calls
            ``mlflow.set_experiment(<study name>)`` (an experiment lookup, every trial),
            ``mlflow.start_run(run_name=<trial number>)``, ``log_metrics`` (the objective value only),
            ``log_params`` (the 2 tuned parameters only) and ``set_tags`` (7 tags: number, start and
            complete times, state, direction, one distribution per parameter). The experiment is
            created before the timed loop, as set-up. Needs ``optuna-integration`` (not a dependency
            of hpo); its FutureWarning (MLflowCallback is deprecated in optuna-integration 4.9) is
            silenced in this arm only.
* hpo:      a space YAML in a temporary workspace and ``hpo.run.run_study(space, jobs=1)``:
            budget slots claimed from the storage, heartbeats, trial attributes, and one MLflow child
            run per trial (created at trial start with hpo's provenance tags, filled with one
            ``log_batch`` at the end: parameters, validation metrics, fit_seconds, best_iteration and
            the per-iteration history). hpo opens its SQLite storage in WAL mode, the Optuna arms use
            Optuna's default journal, so hpo's intermediate-value writes cost less: "none" is the floor
            of a plain Optuna loop, not of hpo.

Every arm uses SQLite for Optuna and ``sqlite:///<tmp>/mlflow.db`` for MLflow (the "none" arm
never touches its MLflow store), fresh files in a temporary folder every repetition; nothing is
written outside those folders.

Per arm and repetition it records:

* fit_seconds  ``FitResult.fit_seconds`` (hpo's ``fit_seconds`` trial attribute). With 30 iterations
               ``train`` reports the validation value every iteration, and each report is a write to
               the Optuna storage made from inside CatBoost's callback, so fit_seconds holds those
               writes too. To split them out, every arm calls ``train`` through the same thin
               wrapper that times the ``report`` callback (for hpo: ``hpo.run._objective.train`` is
               swapped for the wrapper while the benchmark runs; no hpo file is changed).
* catboost     fit_seconds - reports: the fit alone
* reports      time spent in ``report`` (``trial.report``, i.e. intermediate-value writes)
* optuna trial ``datetime_complete - datetime_start`` of the Optuna trials. For hpo this leaves
               out the MLflow finish, which happens after ``study.tell``, and for the callback arm all
               of its MLflow logging (Optuna runs callbacks after ``tell``); for the manual arm it
               includes the MLflow logging (it is inside the objective).
* per trial    wall time of the trial loop / number of trials, the honest figure for every arm.
               One-off set-up is left out: for hpo, ``RunResult.elapsed_seconds`` (which excludes
               loading data, creating the study and the MLflow experiment); for the Optuna arms,
               only ``study.optimize`` is timed (callbacks included).
* overhead     per trial - mean catboost: everything a trial costs besides training the model
               (intermediate values, trial bookkeeping, MLflow).

Repetitions rotate the order of the four arms (repetition r starts at arm r mod 4 of none, manual,
callback, hpo), so machine noise is spread over them; a multiple of 4 repetitions puts every arm in
every position equally often. The table shows medians across repetitions; the ratio columns and
lines are medians of the per-repetition ratios. The last lines give, for the manual and callback arms
only, MLflow's cost per trial: their per trial minus the "none" arm's (median of the per-repetition
differences).

Run it from the repository root:

    .venv/bin/python benchmarks/logging_overhead.py [--trials 20] [--repeats 3] [--warmup 2]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass

from _common import quiet, workspace, write_space  # benchmarks/ is on sys.path when a script runs

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
    """``hpo.models.train`` with the time spent in its ``report`` callback recorded per call."""

    def __init__(self) -> None:
        from hpo.models import train

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


def hpo_sampler_seed() -> int:
    """The RandomSampler seed of hpo's first worker on a new study (see hpo.run._worker._worker_loop)."""
    import numpy as np

    return int(np.random.SeedSequence([STUDY_SEED, 0, 0]).generate_state(1)[0])


def mlflow_callback_class():
    """``optuna_integration.MLflowCallback``, or a one-line exit naming the package to install."""
    try:
        from optuna_integration.mlflow import MLflowCallback
    except ImportError as e:
        raise SystemExit(
            f"the MLflowCallback arm needs optuna-integration: pip install 'optuna-integration[mlflow]' ({e})"
        ) from None
    return MLflowCallback


def run_optuna(data, n: int, arm: str) -> Measure:
    """A bare Optuna loop; ``arm`` is how trials reach MLflow: "none", "manual" or "callback"."""
    import mlflow
    import optuna

    from hpo.models import trial_seed

    train = TimedTrain()
    with workspace(arm) as root, warnings.catch_warnings():
        uri = os.environ["MLFLOW_TRACKING_URI"]
        callbacks = []
        if arm == "manual":
            mlflow.set_experiment("bench-manual")
        elif arm == "callback":
            MLflowCallback = mlflow_callback_class()
            # In this arm only: MLflowCallback is deprecated (a FutureWarning when it is created) and
            # parts of it are experimental.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            mlflow.set_experiment("bench")  # set-up: the callback looks this experiment up every trial
            callbacks.append(MLflowCallback(tracking_uri=uri, metric_name=f"val_{METRIC}"))
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
            if arm == "manual":
                metrics = {f"val_{k}": v for k, v in result.metrics.items()}
                metrics["fit_seconds"] = result.fit_seconds
                with mlflow.start_run(run_name=f"bench-{trial.number}"):
                    mlflow.log_params(params)
                    mlflow.log_metrics(metrics)
            return result.objective

        start = time.perf_counter()
        study.optimize(objective, n_trials=n, callbacks=callbacks)
        elapsed = time.perf_counter() - start
        trials = study.get_trials(deepcopy=False)
        check_trials(trials, n, arm)
        if arm != "none":
            check_runs(n, arm)
        fits, reports = (list(x) for x in zip(*train.calls, strict=True))
        return Measure(n, elapsed, fits, reports, durations(trials), [dict(t.params) for t in trials])


def run_hpo(n: int) -> Measure:
    import optuna

    import hpo.run._objective
    from hpo.run import run_study
    from hpo.storage import open_storage

    train = TimedTrain()

    with workspace("hpo") as root:
        space = write_space(root, space_dict(n))
        hpo.run._objective.train = train  # the same timing wrapper as the bare loop's
        try:
            result = run_study(space, jobs=1)
        finally:
            hpo.run._objective.train = train._train
        study = optuna.load_study(study_name="bench", storage=open_storage(result.storage, create=False))
        trials = study.get_trials(deepcopy=False)
        check_trials(trials, n, "hpo")
        # train.calls holds the fit_seconds hpo stores as a trial attribute (unrounded).
        fits, reports = (list(x) for x in zip(*train.calls, strict=True))
        return Measure(n, result.elapsed_seconds, fits, reports, durations(trials), [dict(t.params) for t in trials])


def check_trials(trials: list, n: int, arm: str) -> None:
    states = [t.state.name for t in trials]
    if len(trials) != n or any(s != "COMPLETE" for s in states):
        raise SystemExit(f"{arm}: expected {n} complete trials, got {states}")


def check_runs(n: int, arm: str) -> None:
    """The arm's MLflow store holds one finished run per trial (checked after the timed loop)."""
    import mlflow

    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    if len(runs) != n or any(r.info.status != "FINISHED" for r in runs):
        raise SystemExit(f"{arm}: expected {n} finished MLflow runs, got {[r.info.status for r in runs]}")


def durations(trials: list) -> list[float]:
    return [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]


def load_data():
    """The diabetes data version, loaded once through hpo (as the Optuna arms' objective uses it)."""
    from hpo.prepare import prepare

    with workspace("data") as root:
        return prepare(write_space(root, space_dict(1))).data


def ms(x: float) -> str:
    return f"{x * 1000:8.1f}"


ARMS = ("none", "manual", "callback", "hpo")
LABELS = {
    "none": "optuna, no MLflow",
    "manual": "optuna + manual MLflow",
    "callback": "optuna + MLflowCallback",
    "hpo": "hpo",
}


def run_arm(arm: str, data, n: int) -> Measure:
    return run_hpo(n) if arm == "hpo" else run_optuna(data, n, arm)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20, help="trials per arm and repetition (default 20)")
    ap.add_argument(
        "--repeats", type=int, default=3, help="repetitions, rotating the order of the 4 arms (default 3; 4 balances the order)"
    )
    ap.add_argument("--warmup", type=int, default=2, help="trials per arm in an untimed warm-up run (default 2; 0: none)")
    args = ap.parse_args()

    mlflow_callback_class()  # exits at once, with the package to install, if optuna-integration is missing
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "HPO_STORAGE", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT")}
    quiet()
    import catboost
    import mlflow
    import optuna
    import optuna_integration

    import hpo

    # MLflow prints run URLs on start_run only for a tracking server, which this benchmark does not use.
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"

    print("hpo logging overhead: hpo run vs bare Optuna loops with no MLflow, manual MLflow logging and MLflowCallback")
    print(
        f"date {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}; cpus {os.cpu_count()}"
    )
    print(
        f"hpo {hpo.__version__}, optuna {optuna.__version__}, optuna-integration {optuna_integration.__version__}, "
        f"mlflow {mlflow.__version__}, catboost {catboost.__version__}; "
        "stores: SQLite (Optuna) and sqlite:///.../mlflow.db (MLflow), fresh per repetition"
    )
    print(
        f"objective: CatBoost on sklearn:diabetes, {ITERATIONS} iterations, 1 thread, depth {DEPTH[0]}-{DEPTH[1]}, "
        f"learning_rate {LEARNING_RATE[0]}-{LEARNING_RATE[1]} (log); {args.trials} trials x {args.repeats} repeats per arm"
    )
    print()

    data = load_data()
    try:
        for arm in ARMS if args.warmup else ():
            run_arm(arm, data, args.warmup)
        runs: list[dict[str, Measure]] = []
        for r in range(args.repeats):
            k = r % len(ARMS)
            order = ARMS[k:] + ARMS[:k]
            rep = {arm: run_arm(arm, data, args.trials) for arm in order}
            differ = [arm for arm in ARMS if rep[arm].params != rep[ARMS[0]].params]
            if differ:
                print(f"note: repeat {r + 1}: {', '.join(differ)} sampled other parameters than {ARMS[0]}", file=sys.stderr)
            runs.append(rep)
            print(
                f"repeat {r + 1} (order {', '.join(order)}): per trial "
                + ", ".join(f"{arm} {rep[arm].per_trial * 1000:.1f}" for arm in ARMS)
                + " ms"
            )
    finally:
        for key, v in saved_env.items():
            if v is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = v

    def med(f) -> float:
        return statistics.median(f(rep) for rep in runs)

    def ratio(arm: str, base: str, f=lambda m: m.per_trial) -> float:
        return med(lambda rep: f(rep[arm]) / f(rep[base]))

    print()
    print("milliseconds per trial, median of repeats; ratios: per trial / the other arm's per trial, median of repeats")
    cols = [
        ("fit_seconds", lambda m: statistics.median(m.fits)),
        ("catboost", lambda m: statistics.median(m.catboost)),
        ("reports", lambda m: statistics.median(m.reports)),
        ("optuna trial", lambda m: statistics.median(m.durations)),
        ("per trial", lambda m: m.per_trial),
        ("overhead", lambda m: m.overhead),
    ]
    versus = [("vs MLflowCallback", "callback"), ("vs no MLflow", "none")]
    width = max(len(label) for label in LABELS.values())
    header = f"{'arm':<{width}}" + "".join(f"{name:>13}" for name, _ in cols) + "".join(f"{name:>19}" for name, _ in versus)
    print(header)
    print("-" * len(header))
    for arm in ARMS:
        print(
            f"{LABELS[arm]:<{width}}"
            + "".join(f"{ms(med(lambda rep, f=f, arm=arm: f(rep[arm]))):>13}" for _, f in cols)
            + "".join(f"{ratio(arm, base):>18.2f}x" for _, base in versus)
        )
    print()
    print("fit_seconds: train()'s fit time, which includes the reports; catboost: fit_seconds - reports;")
    print("reports: trial.report calls (intermediate-value writes) made during the fit; optuna trial: Optuna's")
    print("start-to-complete (leaves out hpo's MLflow finish and all of MLflowCallback's logging, which run after")
    print("tell); per trial: trial loop wall time / trials, set-up excluded; overhead: per trial - mean catboost")
    print()
    n = args.trials
    print(f"hpo against each arm (medians of {args.repeats} per-repeat ratios, {n} trials each):")
    for base in ("manual", "callback", "none"):
        over = ratio("hpo", base, lambda m: m.overhead)
        extra = med(lambda rep, base=base: rep["hpo"].per_trial - rep[base].per_trial)
        print(
            f"  hpo/{base + ':':<9} overhead {over:5.2f}x, per trial {ratio('hpo', base):5.2f}x "
            f"({extra * 1000:+.1f} ms per trial)"
        )
    # Only for the Optuna arms, which share everything but MLflow: hpo's SQLite storage is in WAL mode,
    # which makes its intermediate-value writes cheaper, so "hpo - no MLflow" is not MLflow's cost.
    print("MLflow's cost per trial in the Optuna arms (per trial - no MLflow's per trial, median of repeats):")
    for arm in ("manual", "callback"):
        extra = med(lambda rep, arm=arm: rep[arm].per_trial - rep["none"].per_trial)
        print(f"  {LABELS[arm] + ':':<{width + 1}} {extra * 1000:+.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
