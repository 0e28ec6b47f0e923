"""Parallel workers: ``hpo run --jobs 1`` against ``--jobs 2``, in finished trials per minute.

What it measures
----------------
One study of ``--trials`` CatBoost fits on scikit-learn's diabetes data (validation ``pearson_r``,
``depth`` 6, ``--iterations`` 600; ``learning_rate`` and ``l2_leaf_reg`` sampled by the random
sampler; no pruner), run through ``hpo.run.run_study(space, jobs=J)``. Depth and iterations are
fixed and nothing is pruned, so every trial costs about the same whatever is sampled (0.5-0.9 s of
fitting on one core of the 2-core CI machine) and both sides do the same work.

Two variants, each with ``jobs`` 1 and 2, set CatBoost's ``thread_count`` in the space's ``fixed``:

* split cores:  thread_count = cpus // jobs, which is hpo's own default (2 threads for one worker,
                1 thread each for two workers on a 2-core machine). This is what ``hpo run --jobs``
                does, and the workers do not fight over cores.
* one thread:   thread_count = 1 for both jobs 1 and 2, so the ratio is pure process-parallel
                scaling (one core idles with ``--jobs 1``).

Per run it records:

* wall          ``RunResult.elapsed_seconds``: the trial loop; loading the data, creating the study
                and enqueueing the budget come before it. With ``--jobs 2`` the loop starts the workers
                (``_processes._run_processes``): on Linux they are forked from this process and inherit
                its imports and loaded data, then open their own storage and MLflow connections, INSIDE
                the elapsed time (elsewhere they are spawned and re-import and re-read everything).
                With ``--jobs 1`` the trials run in this process, which did all that before.
* trials/min    trials / wall x 60, the headline figure.
* span/min      trials / (last trial's ``datetime_complete`` - first trial's ``datetime_start``)
                x 60: the steady-state rate, without the workers' start-up.
* start-up      from the start of the trial loop to the first trial's start (the loop's start is
                taken as the return of ``run_study`` minus ``elapsed_seconds``): for ``--jobs 2`` the
                workers' spawn, imports, data loading and first MLflow query.
* tail          from the last trial's end to the return of ``run_study``: the last MLflow finish,
                the workers' exit (a worker with nothing to claim waits in 0.5 s polls while the
                other's trial runs), the parent's 0.5 s poll and the final snapshot.
* fit           median ``fit_seconds`` trial attribute (one fit; shows contention between workers).

Every run gets a fresh temporary workspace (Optuna SQLite under ``studies/``, ``MLFLOW_TRACKING_URI``
``sqlite:///<tmp>/mlflow.db``; made the current directory, which the workers inherit). Each repeat
runs the four configurations in an order reversed on odd repeats. The table shows medians over
repeats; the ratios are medians of the per-repeat ratios.

Run it from the repository root:

    .venv/bin/python benchmarks/parallel.py [--trials 48] [--repeats 3] [--iterations 600]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
from dataclasses import dataclass
from importlib.metadata import version

from _common import quiet, workspace, write_space  # benchmarks/ is on sys.path when a script runs

CPUS = os.cpu_count() or 1
VARIANTS = {"split cores": lambda jobs: max(1, CPUS // jobs), "one thread": lambda jobs: 1}


@dataclass(frozen=True)
class Measure:
    n: int
    wall: float
    span: float
    startup: float
    tail: float
    fits: list[float]

    @property
    def per_min(self) -> float:
        return self.n / self.wall * 60

    @property
    def span_per_min(self) -> float:
        return self.n / self.span * 60


def space_dict(n_trials: int, iterations: int, threads: int) -> dict:
    return {
        "study": "bench-parallel",
        "data": {
            "version": "v0.1.0",
            "source": "sklearn:diabetes",
            "target": "target",
            "split": {"validation": 0.2, "test": 0.2, "seed": 0},
        },
        "model": "catboost",
        "metric": "pearson_r",
        "n_trials": n_trials,
        "seed": 7,
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "params": {
            "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
            "l2_leaf_reg": {"type": "float", "low": 1, "high": 10},
        },
        "fixed": {"iterations": iterations, "depth": 6, "thread_count": threads},
    }


def run(jobs: int, threads: int, n: int, iterations: int) -> Measure:
    import optuna

    from hpo.run import run_study
    from hpo.storage import open_storage
    from hpo.workspace import load_workspace

    with workspace("parallel") as root:
        path = write_space(root, space_dict(n, iterations, threads))
        result = run_study(path, jobs=jobs, workspace=load_workspace(root))
        end = datetime.datetime.now()  # Optuna's trial datetimes are local and naive too
        study = optuna.load_study(study_name="bench-parallel", storage=open_storage(result.storage, create=False))
        trials = study.get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    if len(trials) != n or any(s != "COMPLETE" for s in states):
        raise SystemExit(f"jobs {jobs}: expected {n} COMPLETE trials, got {states}")
    first, last = min(t.datetime_start for t in trials), max(t.datetime_complete for t in trials)
    loop_start = end - datetime.timedelta(seconds=result.elapsed_seconds)
    return Measure(
        n,
        result.elapsed_seconds,
        (last - first).total_seconds(),
        (first - loop_start).total_seconds(),
        (end - last).total_seconds(),
        [t.user_attrs["fit_seconds"] for t in trials],
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=48, help="n_trials of every study (default 48, as in issue 15's goal)")
    ap.add_argument("--repeats", type=int, default=3, help="repetitions, the order reversed on odd ones (default 3)")
    ap.add_argument("--iterations", type=int, default=600, help="CatBoost iterations per trial (default 600, depth 6)")
    ap.add_argument("--warmup", type=int, default=2, help="trials of an untimed warm-up per jobs value (default 2; 0: none)")
    args = ap.parse_args()

    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "HPO_STORAGE")}
    quiet()
    print("parallel: hpo run --jobs 1 vs --jobs 2, finished trials per minute")
    print(
        f"date {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}; cpus {CPUS}"
    )
    print(
        f"hpo {version('hpo')}, optuna {version('optuna')}, mlflow {version('mlflow')}, catboost {version('catboost')}; "
        "stores: SQLite (Optuna) and sqlite:///.../mlflow.db (MLflow), fresh per run"
    )
    print(
        f"study: CatBoost on sklearn:diabetes, pearson_r, depth 6, {args.iterations} iterations, random sampler, no pruner; "
        f"{args.trials} trials x {args.repeats} repeats per configuration"
    )
    configs = [(v, jobs, f(jobs)) for v, f in VARIANTS.items() for jobs in (1, 2)]
    print("configurations: " + "; ".join(f"{v}: jobs {j} x thread_count {t}" for v, j, t in configs))
    print()

    runs: list[dict[tuple[str, int], Measure]] = []
    try:
        if args.warmup:
            for jobs in (1, 2):
                run(jobs, 1, args.warmup, args.iterations)
        for r in range(args.repeats):
            order = configs if r % 2 == 0 else configs[::-1]
            rep = {}
            for variant, jobs, threads in order:
                m = rep[variant, jobs] = run(jobs, threads, args.trials, args.iterations)
                print(
                    f"repeat {r + 1}: {variant}, jobs {jobs} x {threads} thread(s): wall {m.wall:.1f} s, "
                    f"{m.per_min:.1f} trials/min (span {m.span_per_min:.1f}/min), median fit {statistics.median(m.fits):.3f} s",
                    flush=True,
                )
            runs.append(rep)
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def med(key: tuple[str, int], f) -> float:
        return statistics.median(f(rep[key]) for rep in runs)

    print()
    print(f"medians of {args.repeats} repeats, {args.trials} trials each")
    print()
    print("| variant | jobs | thread_count | wall s | trials/min | span trials/min | start-up s | tail s | fit s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for variant, jobs, threads in configs:
        k = (variant, jobs)
        print(
            f"| {variant} | {jobs} | {threads} | {med(k, lambda m: m.wall):.1f} | {med(k, lambda m: m.per_min):.1f} "
            f"| {med(k, lambda m: m.span_per_min):.1f} | {med(k, lambda m: m.startup):.2f} | {med(k, lambda m: m.tail):.2f} "
            f"| {med(k, lambda m: statistics.median(m.fits)):.3f} |"
        )
    print()
    print("| variant | jobs 2 / jobs 1, trials/min | jobs 2 / jobs 1, span trials/min |")
    print("|---|---:|---:|")
    for variant in VARIANTS:
        a, b = (variant, 1), (variant, 2)
        ratio = statistics.median(rep[b].per_min / rep[a].per_min for rep in runs)
        span = statistics.median(rep[b].span_per_min / rep[a].span_per_min for rep in runs)
        print(f"| {variant} | {ratio:.2f}x | {span:.2f}x |")
    print()
    print("split cores: thread_count = cpus // jobs (hpo's default); one thread: thread_count 1 for both jobs values.")
    print("wall: RunResult.elapsed_seconds, which with jobs 2 includes starting the workers (forked on Linux); span: first")
    print("trial start to last trial end; start-up: loop start to first trial start; tail: last trial end to return;")
    print("fit: median fit_seconds of one trial")
    return 0


if __name__ == "__main__":
    sys.exit(main())
