"""hpo against its peers on the same trials (issue 27): per-trial overhead, throughput, single commands, memory.

What it measures
----------------
1. Peers. Five arms run the same study, each in a fresh process and a fresh temporary folder: real CatBoost
   fits through ``hpo.models.train`` on scikit-learn's diabetes data (``--iterations`` 100, one thread;
   ``depth``, ``learning_rate``, ``l2_leaf_reg`` tuned), TPE, no pruner, the same trial seeds
   (``hpo.models.trial_seed``). The Optuna arms build TPE exactly as hpo's first worker does (seed
   ``SeedSequence([seed, 0, 0])``, ``multivariate=False``, ``constant_liar=True``), so the parameters match
   trial by trial (a note is printed where they do not).

   * hpo:       ``hpo run space.yaml`` (the CLI, in its own process; Optuna SQLite under studies/).
   * none:      plain Optuna on SQLite, ``study.optimize``, no tracking.
   * manual:    plain Optuna + one MLflow parent run per study and a child run per trial, by hand
                (``start_run(nested=True)``, ``log_params``, ``log_metrics``, ``set_tags``).
   * callback:  Optuna + ``optuna_integration.MLflowCallback`` (its defaults, ``metric_name="val_pearson_r"``).
   * ray:       Ray Tune + ``OptunaSearch`` (the same TPE), one trial at a time, ``reuse_actors=True``.
                Skipped with a printed reason when Ray does not import or start.

   Arms are interleaved: round r runs them in an order rotated by r. Per arm and round:
   overhead per trial = (end of the trial loop - first trial's start - sum of the fits) / trials, where the
   fits are ``FitResult.fit_seconds`` and the loop's end is taken in the arm's process after its loop (after
   hpo's last MLflow finish and the callbacks); whole process per trial = the process's wall time (Python
   start-up, imports, data, stores) / trials. Medians over rounds; ratios are to the ``manual`` arm.
   The plain arms get the prepared data as a pickle (a hand-written loop loads its data its own way).

2. Throughput. A trivial model (``sklearn.linear_model.Ridge``, ``alpha`` by the random sampler: coordination
   only), ``--tp-trials`` trials shared by N processes on one storage, N = 1, 2, 4, on SQLite and on PostgreSQL
   (a real server on loopback, started with tests/servers.py's helpers; a fresh database per run):
   ``hpo run --jobs N`` against N plain Optuna processes (``load_study`` + ``optimize``) with and without an
   MLflow run per trial (MLflow store: SQLite in the temporary folder). Trials/s = trials / (last trial's
   complete - first trial's start), from the storage.

3. Single commands, as subprocesses, median of ``--rounds``: ``hpo try`` against a bare script doing the same
   fit and scores (CatBoost + scikit-learn only; its own 60/20/20 split of the same data), the same script
   logging its run to MLflow (what ``hpo try`` also does), ``hpo validate``, and ``hpo promote best`` on a
   finished 3-trial study.

4. Memory. Peak over time of the sum of PSS (``/proc/<pid>/smaps_rollup``, sampled every 50 ms over the process
   tree found through ``/proc/<pid>/task/<tid>/children``) of ``hpo run --jobs 2`` against ``--jobs 1``
   (CatBoost space, 8 trials); also the largest single process's RSS, which is what ``time -v`` reports.

Everything is written under one temporary folder (stores, Ray's session folder, PostgreSQL's cluster), which is
removed at exit, servers stopped first.

Run it from the repository root with a virtualenv that has the peers (the project's .venv stays as it is):

    python3 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install -e . optuna-integration mlflow 'ray[tune]' 'psycopg[binary]' pytest
    /work/peers-venv/bin/python benchmarks/peers.py --quick      # plumbing check: ~5 min idle, 15 min loaded (2 cores)
    /work/peers-venv/bin/python benchmarks/peers.py              # the issue's table: ~25 min idle

Versions that worked (2026-12-03): Python 3.11, optuna 5.1.0, optuna-integration 5.0.0, mlflow 3.17.2,
catboost 1.2.10, scikit-learn 1.9.1, SQLAlchemy 2.1.9, ray 2.60.0, psycopg 3.3.9, pytest 9.2.0 (tests/servers.py imports it).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED = 42
METRIC = "pearson_r"
PARAMS: dict[str, dict[str, Any]] = {
    "depth": {"type": "int", "low": 2, "high": 8},
    "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
    "l2_leaf_reg": {"type": "float", "low": 1.0, "high": 10.0},
}
ARMS = ("hpo", "none", "manual", "callback", "ray")
LABELS = {
    "hpo": "hpo run",
    "none": "plain Optuna, no tracking",
    "manual": "Optuna + MLflow child run by hand",
    "callback": "Optuna + MLflowCallback",
    "ray": "Ray Tune + OptunaSearch",
}


# --------------------------------------------------------------------------------------------- spaces and stores


def catboost_space(n_trials: int, iterations: int, study: str = "peers") -> dict[str, Any]:
    return {
        "study": study,
        "data": {
            "version": "v0.1.0",
            "source": "sklearn:diabetes",
            "target": "target",
            "split": {"validation": 0.2, "test": 0.2, "seed": 0},
        },
        "model": "catboost",
        "metric": METRIC,
        "n_trials": n_trials,
        "seed": SEED,
        "sampler": {"name": "tpe"},
        "pruner": {"name": "none"},
        "params": PARAMS,
        "fixed": {"iterations": iterations, "thread_count": 1},
    }


def trivial_space(n_trials: int) -> dict[str, Any]:
    space = catboost_space(n_trials, 1, study="trivial")
    space.update(
        model="sklearn.linear_model.Ridge",
        metric="rmse",
        sampler={"name": "random"},
        params={"alpha": {"type": "float", "low": 1e-3, "high": 10.0, "log": True}},
        fixed={},
    )
    return space


def new_workspace(parent: Path, name: str, space: dict[str, Any]) -> tuple[Path, Path]:
    """A workspace folder with its space file; returns (folder, space path)."""
    root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=parent))
    (root / "search_spaces").mkdir()
    path = root / "search_spaces" / f"{space['study']}.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return root, path


def child_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HPO_STORAGE", "MLFLOW_TRACKING_URI")}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}",
        MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true",
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONWARNINGS="ignore",
        TMPDIR=str(root),  # anything a library puts in a temporary folder stays in ours
    )
    return env


def hpo_command() -> list[str]:
    return [sys.executable, "-m", "hpo"]


def hpo_sampler_seed(trials_at_start: int = 0, index: int = 0) -> int:
    """The TPE seed of hpo's worker ``index`` on a study with ``trials_at_start`` trials (hpo.run._worker)."""
    import numpy as np

    return int(np.random.SeedSequence([SEED, trials_at_start, index]).generate_state(1)[0])


def hpo_like_tpe(seed: int) -> Any:
    """TPE as hpo builds it (hpo.samplers._tpe with the space's defaults): note ``multivariate=False``."""
    import optuna

    return optuna.samplers.TPESampler(n_startup_trials=10, multivariate=False, constant_liar=True, seed=seed)


def optuna_trials(url: str, study: str) -> list[Any]:
    import optuna

    s = optuna.load_study(study_name=study, storage=url)
    return [t for t in s.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]


# --------------------------------------------------------------------------------------------- child processes


def child_main(args: argparse.Namespace) -> int:
    """One arm in this process; writes result.json in ``args.dir``."""
    root = Path(args.dir)
    os.chdir(root)
    out: dict[str, Any] = {}
    if args.child == "hpo":
        from hpo.cli import main

        # As a user runs it: with its progress display (on stderr, here a pipe), which takes a snapshot per trial.
        sys.argv = ["hpo", "run", args.space, *([] if args.storage is None else ["--storage", args.storage])]
        sys.argv += ["--jobs", str(args.jobs)]
        try:
            main()
        except SystemExit as e:
            if e.code not in (0, None):
                raise
        out["end"] = time.time()
    elif args.child in ("none", "manual", "callback"):
        out = optuna_arm(args.child, root, args.trials, args.iterations)
    elif args.child == "ray":
        out = ray_arm(root, args.trials, args.iterations)
    elif args.child.startswith("tp-"):
        out = throughput_worker(args.child[3:], root, args.storage, args.trials)
    (root / f"result-{os.getpid()}.json").write_text(json.dumps(out))
    return 0


def load_data(root: Path) -> Any:
    with open(root.parent / "data.pkl", "rb") as f:
        return pickle.load(f)


def suggest(trial: Any) -> dict[str, Any]:
    return {
        "depth": trial.suggest_int("depth", 2, 8),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 10.0),
    }


def optuna_arm(arm: str, root: Path, n: int, iterations: int) -> dict[str, Any]:
    import optuna

    from hpo.models import train, trial_seed

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_data(root)
    callbacks = []
    parent = None
    if arm in ("manual", "callback"):
        import mlflow

        mlflow.set_experiment(f"peers-{arm}")
        if arm == "manual":
            parent = mlflow.start_run(run_name="study")
        else:
            from optuna_integration.mlflow import MLflowCallback

            callbacks.append(MLflowCallback(tracking_uri=os.environ["MLFLOW_TRACKING_URI"], metric_name=f"val_{METRIC}"))
    sampler = hpo_like_tpe(hpo_sampler_seed())
    study = optuna.create_study(
        storage=f"sqlite:///{root / 'optuna.db'}", study_name="peers", direction="maximize", sampler=sampler
    )
    fits: dict[int, float] = {}

    def objective(trial: optuna.Trial) -> float:
        params = {"iterations": iterations, "thread_count": 1, **suggest(trial)}
        r = train(model="catboost", metric=METRIC, data=data, params=params, seed=trial_seed(SEED, trial.number), thread_count=1)
        fits[trial.number] = r.fit_seconds
        if arm == "manual":
            import mlflow

            with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
                mlflow.log_params(params)
                mlflow.log_metrics({**{f"val_{k}": v for k, v in r.metrics.items()}, "fit_seconds": r.fit_seconds})
                mlflow.set_tags({"optuna.study": "peers", "optuna.trial": str(trial.number)})
        return r.objective

    study.optimize(objective, n_trials=n, callbacks=callbacks)
    if parent is not None:
        import mlflow

        mlflow.end_run()
    return {"end": time.time(), "fits": fits}


def ray_arm(root: Path, n: int, iterations: int) -> dict[str, Any]:
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from hpo.models import train, trial_seed

    data = load_data(root)
    ray.init(num_cpus=1, include_dashboard=False, _temp_dir=str(root / "ray"), log_to_driver=False, logging_level="ERROR")

    def trainable(config: dict[str, Any]) -> None:
        start = time.time()
        number = int(config["number"])
        params = {"iterations": iterations, "thread_count": 1, **{k: config[k] for k in PARAMS}}
        r = train(model="catboost", metric=METRIC, data=data, params=params, seed=trial_seed(SEED, number), thread_count=1)
        tune.report({"objective": r.objective, "fit_seconds": r.fit_seconds, "start": start, "end": time.time()})

    searcher = OptunaSearch(space=ray_space, metric="objective", mode="max", sampler=hpo_like_tpe(hpo_sampler_seed()))
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=n, max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(root / "ray_results"), verbose=0),
    )
    results = tuner.fit()
    end = time.time()
    ordered = sorted(results, key=lambda r: r.config["number"])
    ray.shutdown()
    return {
        "end": end,
        "fits": {r.config["number"]: r.metrics["fit_seconds"] for r in ordered},
        "starts": [r.metrics["start"] for r in ordered],
        "params": [{k: r.config[k] for k in PARAMS} for r in ordered],
    }


def ray_space(trial: Any) -> dict[str, Any]:
    """OptunaSearch's define-by-run space (module level: Ray pickles it); the constants carry the trial's number."""
    suggest(trial)
    return {"number": trial.number}


def throughput_worker(kind: str, root: Path, url: str, n: int) -> dict[str, Any]:
    """One of N plain Optuna processes on a shared study: ``kind`` "none" or "mlflow" (a run per trial)."""
    import optuna

    from hpo.models import train

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_data(root)
    study = optuna.load_study(study_name="trivial", storage=url, sampler=optuna.samplers.RandomSampler())
    train(model="sklearn.linear_model.Ridge", metric="rmse", data=data, params={"alpha": 1.0}, seed=0)  # imports, not a trial
    if kind == "mlflow":
        import mlflow

        mlflow.set_experiment("trivial")  # made by the parent

    def objective(trial: optuna.Trial) -> float:
        alpha = trial.suggest_float("alpha", 1e-3, 10.0, log=True)
        r = train(model="sklearn.linear_model.Ridge", metric="rmse", data=data, params={"alpha": alpha}, seed=trial.number)
        if kind == "mlflow":
            import mlflow

            with mlflow.start_run(run_name=f"trial-{trial.number}"):
                mlflow.log_params({"alpha": alpha})
                mlflow.log_metrics({f"val_{k}": v for k, v in r.metrics.items()})
        return r.objective

    study.optimize(objective, n_trials=n)
    return {"end": time.time()}


# --------------------------------------------------------------------------------------------- the parent


def run_child(root: Path, *extra: str, env: dict[str, str] | None = None) -> float:
    """Run this script as a child in ``root``; its wall time (seconds). A failure stops the benchmark with its stderr."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *extra, "--dir", str(root)]
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=root, env=env or child_env(root), capture_output=True, text=True)
    wall = time.perf_counter() - start
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(extra[:2])} failed:\n{r.stderr[-3000:]}")
    return wall


def result_of(root: Path) -> dict[str, Any]:
    [path] = root.glob("result-*.json")
    return dict(json.loads(path.read_text()))


def peers_round(tmp: Path, arm: str, n: int, iterations: int) -> dict[str, Any]:
    root, space = new_workspace(tmp, f"peer-{arm}", catboost_space(n, iterations))
    args = ["hpo", "--space", str(space)] if arm == "hpo" else [arm]
    wall = run_child(root, *args, "--trials", str(n), "--iterations", str(iterations))
    out = result_of(root)
    if arm == "ray":
        fits, starts, params = list(out["fits"].values()), out["starts"], out["params"]
    else:
        from hpo.workspace import DEFAULT_STORAGE_FILE

        store = root / "studies" / DEFAULT_STORAGE_FILE if arm == "hpo" else root / "optuna.db"
        trials = sorted(optuna_trials(f"sqlite:///{store}", "peers"), key=lambda t: t.number)
        if arm == "hpo":
            fits = [float(t.user_attrs["fit_seconds"]) for t in trials]
        else:
            fits = [out["fits"][str(t.number)] for t in trials]
        starts = [t.datetime_start.timestamp() for t in trials]
        params = [dict(t.params) for t in trials]
    shutil.rmtree(root, ignore_errors=True)
    if len(fits) != n:
        raise RuntimeError(f"{arm}: {len(fits)} of {n} trials completed")
    # From the second trial's start: the first one pays the lazy imports (catboost, scipy, TPE), which
    # are start-up, counted in the whole-process time.
    loop = out["end"] - starts[1]
    return {"overhead": (loop - sum(fits[1:])) / (n - 1), "whole": wall / n, "fit": statistics.median(fits), "params": params}


def ray_problem() -> str | None:
    try:
        import ray  # noqa: F401
        from ray.tune.search.optuna import OptunaSearch  # noqa: F401
    except Exception as e:  # any import failure of an optional peer: say why and skip it
        return f"{type(e).__name__}: {e}"
    return None


def part_peers(tmp: Path, rounds: int, n: int, iterations: int) -> None:
    arms = list(ARMS)
    why = ray_problem()
    if why:
        print(f"ray arm skipped: Ray Tune does not import ({why})")
        arms.remove("ray")
    res: dict[str, list[dict[str, Any]]] = {a: [] for a in arms}
    for r in range(rounds):
        order = arms[r % len(arms) :] + arms[: r % len(arms)]
        for arm in order:
            try:
                res[arm].append(peers_round(tmp, arm, n, iterations))
            except RuntimeError as e:
                if arm != "ray":
                    raise
                print(f"ray arm skipped: it did not run ({str(e).strip().splitlines()[-1]})")
                arms.remove("ray")
                del res["ray"]
        print(f"  round {r + 1}/{rounds} (order {', '.join(order)}) done", flush=True)
        differ = [a for a in arms if res[a] and res[a][-1]["params"] != res["none"][-1]["params"]]
        if differ:
            print(f"  note: {', '.join(differ)} sampled other parameters than plain Optuna in round {r + 1}")

    def med(arm: str, key: str) -> float:
        return statistics.median(x[key] for x in res[arm])

    def ratio(arm: str, key: str) -> float:
        return statistics.median(a[key] / b[key] for a, b in zip(res[arm], res["manual"], strict=True))

    print(f"\n{n} TPE trials, CatBoost {iterations} iterations 1 thread, no pruner; medians of {rounds} rounds (ms per trial)")
    print(f"{'arm':<36}{'overhead':>10}{'whole':>9}{'fit':>8}{'overhead/manual':>17}{'whole/manual':>14}")
    for arm in arms:
        print(
            f"{LABELS[arm]:<36}{med(arm, 'overhead') * 1e3:>10.1f}{med(arm, 'whole') * 1e3:>9.1f}{med(arm, 'fit') * 1e3:>8.1f}"
            f"{ratio(arm, 'overhead'):>16.2f}x{ratio(arm, 'whole'):>13.2f}x"
        )


def start_postgres(tmp: Path) -> tuple[str, Callable[[], None]]:
    """A PostgreSQL cluster under ``tmp`` (tests/servers.py's helpers); its server URL and how to stop it."""
    import pwd

    sys.path.insert(0, str(ROOT))
    from tests.servers import _pg_stop, _start_cluster, find_pg_binaries

    binaries = find_pg_binaries()
    if binaries is None:
        raise RuntimeError("no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin")
    initdb, pg_ctl = binaries
    root = Path(tempfile.mkdtemp(prefix="pg-", dir=tmp))
    if os.geteuid() == 0:  # initdb refuses root; the helpers run it as `nobody`
        pw = pwd.getpwnam("nobody")
        os.chmod(tmp, 0o755)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    url = _start_cluster(initdb, pg_ctl, root)
    return url, lambda: _pg_stop(pg_ctl, root) if (root / "data" / "postmaster.pid").exists() else None


def throughput_run(tmp: Path, storage: str, server: str | None, arm: str, jobs: int, n: int) -> float:
    """Trials per second of one arm with ``jobs`` processes on a fresh study."""
    import optuna

    root, space = new_workspace(tmp, f"tp-{arm}-{jobs}", trivial_space(n))
    if server is not None:
        sys.path.insert(0, str(ROOT))
        from tests.servers import drop_database, fresh_database

        url = fresh_database(server, f"tp_{arm}_{jobs}_{os.getpid()}_{int(time.time() * 1000) % 10**8}")
    else:
        url = f"sqlite:///{root / 'optuna.db'}"
    try:
        if arm == "hpo":
            run_child(root, "hpo", "--space", str(space), "--storage", url, "--jobs", str(jobs))
        else:
            optuna.create_study(storage=url, study_name="trivial", direction="minimize")
            if arm == "mlflow":  # the store's tables made once: N processes migrating a new store at once collide
                import mlflow

                mlflow.MlflowClient(tracking_uri=child_env(root)["MLFLOW_TRACKING_URI"]).create_experiment("trivial")
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", f"tp-{arm}", "--dir", str(root), "--storage", url]
            share = [n // jobs + (i < n % jobs) for i in range(jobs)]
            procs = [
                subprocess.Popen([*cmd, "--trials", str(k)], cwd=root, env=child_env(root), stderr=subprocess.PIPE, text=True)
                for k in share
            ]
            for p in procs:
                _, err = p.communicate()
                if p.returncode != 0:
                    raise RuntimeError(f"tp-{arm} failed:\n{err[-3000:]}")
        trials = optuna_trials(url, "trivial")
        if len(trials) != n:
            raise RuntimeError(f"tp {arm} x{jobs}: {len(trials)} of {n} trials completed")
        span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
        return n / span.total_seconds()
    finally:
        if server is not None:
            drop_database(url)
        shutil.rmtree(root, ignore_errors=True)


def part_throughput(tmp: Path, n: int, jobs_list: list[int], rounds: int = 1) -> None:
    print(
        f"\ntrivial model (Ridge, random sampler), {n} trials on one storage by N processes: trials/s, median of {rounds} "
        "rounds in rotating order (ratio hpo/plain)"
    )
    stores: list[tuple[str, str | None]] = [("sqlite", None)]
    stop = None
    try:
        server, stop = start_postgres(tmp)
        stores.append(("postgresql", server))
    except Exception as e:  # noqa: BLE001  (the SQLite half still runs)
        print(f"PostgreSQL skipped: {e}")
    try:
        print(f"{'storage':<11}{'N':>3}{'hpo':>8}{'optuna':>9}{'optuna+mlflow':>15}{'hpo/optuna':>12}{'hpo/optuna+mlflow':>19}")
        for name, server in stores:
            for jobs in jobs_list:
                runs: dict[str, list[float]] = {"hpo": [], "none": [], "mlflow": []}
                for r in range(rounds):
                    order = list(runs)[r % 3 :] + list(runs)[: r % 3]
                    for arm in order:
                        runs[arm].append(throughput_run(tmp, name, server, arm, jobs, n))
                tp = {arm: statistics.median(v) for arm, v in runs.items()}
                print(
                    f"{name:<11}{jobs:>3}{tp['hpo']:>8.1f}{tp['none']:>9.1f}{tp['mlflow']:>15.1f}"
                    f"{tp['hpo'] / tp['none']:>11.2f}x{tp['hpo'] / tp['mlflow']:>18.2f}x",
                    flush=True,
                )
    finally:
        if stop is not None:
            stop()


BARE_SCRIPT = """
import time
t = time.perf_counter()
import numpy as np
from catboost import CatBoostRegressor
from scipy.stats import pearsonr
from sklearn.datasets import load_diabetes
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

X, y = load_diabetes(return_X_y=True, as_frame=True)
X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
X_tr, X_va, y_tr, y_va = train_test_split(X_rest, y_rest, test_size=0.25, random_state=0)
m = CatBoostRegressor(iterations={iterations}, depth=5, learning_rate=0.0548, l2_leaf_reg=5.5, thread_count=1,
                      random_seed=0, verbose=False, allow_writing_files=False)
m.fit(X_tr, y_tr, eval_set=(X_va, y_va))
p = m.predict(X_va)
print("pearson_r", pearsonr(y_va, p)[0], "rmse", mean_squared_error(y_va, p) ** 0.5, "mae", mean_absolute_error(y_va, p),
      "r2", r2_score(y_va, p))
"""


# The bare script, then what `hpo try` also does: the fit's run in MLflow (a user's own script that tracks).
BARE_MLFLOW_TAIL = """
import mlflow
mlflow.set_experiment("bare")
with mlflow.start_run(run_name="bare"):
    mlflow.log_params({"depth": 5, "learning_rate": 0.0548, "l2_leaf_reg": 5.5, "iterations": {iterations}})
    mlflow.log_metrics({"val_pearson_r": pearsonr(y_va, p)[0], "val_rmse": mean_squared_error(y_va, p) ** 0.5})
"""


def timed(cmd: list[str], root: Path) -> float:
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=root, env=child_env(root), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[-3:])} failed:\n{r.stderr[-3000:]}")
    return time.perf_counter() - start


def part_commands(tmp: Path, rounds: int, iterations: int) -> None:
    root, space = new_workspace(tmp, "commands", catboost_space(3, iterations))
    (root / "bare.py").write_text(BARE_SCRIPT.replace("{iterations}", str(iterations)))
    (root / "bare_mlflow.py").write_text((BARE_SCRIPT + BARE_MLFLOW_TAIL).replace("{iterations}", str(iterations)))
    names = ("bare script", "bare script + MLflow run", "hpo try", "hpo validate", "hpo promote best")
    times: dict[str, list[float]] = {k: [] for k in names}
    run_child(root, "hpo", "--space", str(space))  # the study that promote reads
    for _ in range(rounds):
        times["bare script"].append(timed([sys.executable, "bare.py"], root))
        times["bare script + MLflow run"].append(timed([sys.executable, "bare_mlflow.py"], root))
        times["hpo try"].append(timed([*hpo_command(), "try", str(space)], root))
        times["hpo validate"].append(timed([*hpo_command(), "validate", str(space)], root))
        times["hpo promote best"].append(
            timed([*hpo_command(), "promote", "best", "--study", "peers", "--allow-dirty", "--again"], root)
        )
    shutil.rmtree(root, ignore_errors=True)
    bare = statistics.median(times["bare script"])
    print(f"\nsingle commands (CatBoost {iterations} iterations), wall seconds, median of {rounds}")
    for name, values in times.items():
        m = statistics.median(values)
        print(f"  {name:<26}{m:>7.2f} s{m / bare:>8.2f}x the bare script")


def tree_pids(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def rollup(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of ``pid`` in kB, (0, 0) once it has gone."""
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def peak_memory(cmd: list[str], root: Path) -> tuple[float, float, float]:
    """Peak summed PSS, peak summed RSS and peak single-process RSS (MB) of ``cmd``'s tree, sampled every 50 ms."""
    proc = subprocess.Popen(cmd, cwd=root, env=child_env(root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peaks = [0, 0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rows = [rollup(p) for p in tree_pids(proc.pid)]
            peaks[0] = max(peaks[0], sum(r[0] for r in rows))
            peaks[1] = max(peaks[1], sum(r[1] for r in rows))
            peaks[2] = max(peaks[2], max((r[1] for r in rows), default=0))
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    done.set()
    t.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return peaks[0] / 1024, peaks[1] / 1024, peaks[2] / 1024


def part_memory(tmp: Path, iterations: int, n: int) -> None:
    print(f"\nprocess-tree memory of `hpo run` ({n} CatBoost trials), MB")
    print(f"  {'jobs':<6}{'peak sum PSS':>14}{'peak sum RSS':>14}{'largest RSS':>13}")
    pss = {}
    for jobs in (1, 2):
        root, space = new_workspace(tmp, f"mem-{jobs}", catboost_space(n, iterations))
        pss[jobs], rss, largest = peak_memory([*hpo_command(), "run", str(space), "--jobs", str(jobs)], root)
        shutil.rmtree(root, ignore_errors=True)
        print(f"  {jobs:<6}{pss[jobs]:>14.0f}{rss:>14.0f}{largest:>13.0f}")
    print(f"  --jobs 2 / --jobs 1 (PSS): {pss[2] / pss[1]:.2f}x")


def header() -> None:
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "-"

    pkgs = ("hpo", "optuna", "optuna-integration", "mlflow", "catboost", "scikit-learn", "ray", "psycopg")
    print(f"hpo against its peers (issue 27); python {platform.python_version()}, {os.cpu_count()} cpus, load {os.getloadavg()}")
    print("  " + ", ".join(f"{p} {v(p)}" for p in pkgs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="plumbing check: 2 rounds of 12 trials, 40 throughput trials")
    ap.add_argument("--rounds", type=int, help="rounds of the interleaved arms, and of the single commands (5; quick 2)")
    ap.add_argument("--trials", type=int, help="TPE trials per arm and round (40; quick 12)")
    ap.add_argument("--iterations", type=int, default=100, help="CatBoost iterations (100)")
    ap.add_argument("--tp-trials", type=int, help="trivial-model trials per throughput run (200; quick 40)")
    ap.add_argument("--tp-rounds", type=int, help="rounds of each throughput configuration, arms rotated (3; quick 1)")
    ap.add_argument("--parts", default="peers,throughput,commands,memory", help="comma-separated parts to run (all)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--space", help=argparse.SUPPRESS)
    ap.add_argument("--storage", help=argparse.SUPPRESS)
    ap.add_argument("--jobs", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args)
    for key, full, quick in (("rounds", 5, 2), ("trials", 40, 12), ("tp_trials", 200, 40), ("tp_rounds", 3, 1)):
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    parts = set(args.parts.split(","))

    header()
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="hpo-peers-"))
    try:
        sys.path.insert(0, str(HERE))
        from _common import quiet, workspace, write_space

        quiet()
        from hpo.prepare import prepare

        with workspace("data") as root:
            data = prepare(write_space(root, catboost_space(1, args.iterations))).data
        with open(tmp / "data.pkl", "wb") as f:
            pickle.dump(data, f)
        if "peers" in parts:
            part_peers(tmp, args.rounds, args.trials, args.iterations)
        if "throughput" in parts:
            part_throughput(tmp, args.tp_trials, [1, 2, 4], args.tp_rounds)
        if "commands" in parts:
            part_commands(tmp, args.rounds, args.iterations)
        if "memory" in parts:
            part_memory(tmp, args.iterations, 8)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
