"""Pruning: the shipped example study with its median pruner against the same study without a pruner,
and the same comparison on a second, larger dataset.

What it measures
----------------
The study is ``search_spaces/diabetes-catboost.yaml`` as shipped, read when the benchmark starts:
CatBoost on scikit-learn's diabetes data (442 rows), validation ``pearson_r`` (maximized), TPE with
``n_startup_trials: 8``, ``depth`` 2-10, ``learning_rate`` 0.01-0.3 (log), ``l2_leaf_reg`` 1-10 and
``iterations: 300``. The second dataset, ``digits``, is the same file with scikit-learn's digits
(1,797 rows, 64 features, 10 classes), validation ``logloss`` (minimized) and ``depth`` 2-6, so that
a fit takes seconds rather than a fraction of one. The two arms differ only in the pruner:

* median: the file's pruner, ``{name: median, n_startup_trials: 5, n_warmup_steps: 100}``
* none:   ``{name: none}``

``n_trials`` is replaced by ``--trials`` (default: 40 for diabetes, as in the example; 24 for
digits) and ``seed`` by each of ``--seeds`` study seeds (the file's seed, then the following
integers). Both arms of one seed get the same trial seeds and the same TPE sampler seed, so their
first trials (TPE's random start-up) have the same parameters and the same fits. After the first
pruned trial TPE sees different histories (a pruned trial counts with its last intermediate value),
so the arms then sample different points: the comparison is of two studies with the same settings,
not of the same trials.

``thread_count`` is not set: hpo's default applies, the CPU count divided by ``--jobs`` (1 here), so
every fit uses all cores, in both arms.

Per dataset, arm and seed it records:

* wall         ``RunResult.elapsed_seconds``: the trial loop (trials, their intermediate values,
               MLflow runs); loading the data, creating the study and the MLflow experiment are not
               in it.
* best         ``RunResult.after.best.value``: the best validation value of the COMPLETE trials
               (a PRUNED trial cannot be the best).
* states       trials COMPLETE / PRUNED / FAIL.

The arms of one seed run back to back, and which goes first alternates from seed to seed. Each run
gets a fresh temporary workspace (Optuna SQLite under ``studies/``, ``MLFLOW_TRACKING_URI`` set to
``sqlite:///<tmp>/mlflow.db``, made the current directory), so nothing is written outside it. The
tables show medians over seeds; the ratios are medians of the per-seed ratios and differences.
Issue 15's goal: median wall time <= 0.8x the no-pruner arm's, with the median best within 1%.

Run it from the repository root:

    .venv/bin/python benchmarks/pruning.py [--seeds 5] [--datasets diabetes,digits] [--trials N]
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
from pathlib import Path

import yaml
from _common import quiet, workspace, write_space  # benchmarks/ is on sys.path when a script runs

EXAMPLE = Path(__file__).resolve().parents[1] / "search_spaces" / "diabetes-catboost.yaml"
ARMS = ("median", "none")
# The example as shipped, and the example on a larger table; with the trials each gets by default.
DATASETS: dict[str, tuple[dict, int]] = {
    "diabetes": ({}, 40),
    "digits": (
        {
            "data": {
                "version": "v0.1.0",
                "source": "sklearn:digits",
                "target": "target",
                "split": {"validation": 0.2, "test": 0.2, "seed": 0},
            },
            "metric": "logloss",
            "params_override": {"depth": {"type": "int", "low": 2, "high": 6}},
        },
        24,
    ),
}


@dataclass(frozen=True)
class Outcome:
    wall: float
    best: float
    states: dict[str, int]


def dataset_space(base: dict, name: str) -> dict:
    overrides = dict(DATASETS[name][0])
    params = dict(base["params"], **overrides.pop("params_override", {}))
    return dict(base, **overrides, params=params)


def arm_space(base: dict, arm: str, seed: int, n_trials: int) -> dict:
    space = dict(base, study=f"bench-pruning-{arm}-{seed}", n_trials=n_trials, seed=seed)
    if arm == "none":
        space["pruner"] = {"name": "none"}
    return space


def run_arm(space: dict) -> Outcome:
    from hpo.run import run_study
    from hpo.workspace import load_workspace

    with workspace("pruning") as root:
        result = run_study(write_space(root, space), jobs=1, workspace=load_workspace(root))
    if result.after.best is None:
        raise SystemExit(f"{space['study']}: no COMPLETE trial")
    return Outcome(result.elapsed_seconds, result.after.best.value, dict(result.after.states))


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="study seeds, from the example's seed upward (default 5)")
    ap.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)} (default: all)")
    ap.add_argument("--trials", type=int, help="n_trials of every study (default: 40 for diabetes, 24 for digits)")
    ap.add_argument("--warmup", type=int, default=2, help="trials of an untimed warm-up study (default 2; 0: none)")
    args = ap.parse_args()

    example = yaml.safe_load(EXAMPLE.read_text())
    seeds = [int(example.get("seed", 0)) + i for i in range(args.seeds)]
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise SystemExit(f"--datasets: unknown {', '.join(unknown)} (known: {', '.join(DATASETS)})")
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "HPO_STORAGE")}
    quiet()

    print("pruning: the example study with its median pruner vs no pruner (same seeds), on diabetes and digits")
    print(
        f"date {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}; cpus {os.cpu_count()}"
    )
    print(
        f"hpo {version('hpo')}, optuna {version('optuna')}, mlflow {version('mlflow')}, catboost {version('catboost')}; "
        "stores: SQLite (Optuna) and sqlite:///.../mlflow.db (MLflow), fresh per study"
    )
    print(
        f"study: {EXAMPLE.name}: sampler {example.get('sampler')}, params {', '.join(example['params'])}, "
        f"fixed {example.get('fixed')}; thread_count hpo's default ({os.cpu_count()} = cpus / 1 job)"
    )
    print(f"arms: pruner {example.get('pruner')} vs {{'name': 'none'}}; seeds {seeds}")
    print()

    results: dict[str, list[dict[str, Outcome]]] = {}
    try:
        if args.warmup:
            run_arm(arm_space(example, "none", seeds[0], args.warmup))
        for name in names:
            base = dataset_space(example, name)
            trials = args.trials or DATASETS[name][1]
            runs = results[name] = []
            for i, seed in enumerate(seeds):
                order = ARMS if i % 2 == 0 else ARMS[::-1]
                rep = {arm: run_arm(arm_space(base, arm, seed, trials)) for arm in order}
                runs.append(rep)
                m, n = rep["median"], rep["none"]
                print(
                    f"{name} seed {seed} ({order[0]} first, {trials} trials): median {m.wall:.1f} s best {m.best:.4f} "
                    f"{fmt_states(m.states)}; none {n.wall:.1f} s best {n.best:.4f} {fmt_states(n.states)} -> "
                    f"time median/none {m.wall / n.wall:.2f}x, best {rel(m.best, n.best):+.2f}%",
                    flush=True,
                )
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    print()
    print(f"summary: medians over {len(seeds)} seeds; trial states summed over them")
    print()
    rows = []
    for name, runs in results.items():
        metric = dataset_space(example, name)["metric"]
        ratios = [r["median"].wall / r["none"].wall for r in runs]
        diffs = [rel(r["median"].best, r["none"].best) for r in runs]
        for arm in ARMS:
            total = {s: sum(r[arm].states.get(s, 0) for r in runs) for s in ("COMPLETE", "PRUNED")}
            rows.append(
                [name if arm == "median" else "", arm, metric, f"{statistics.median(r[arm].wall for r in runs):.1f}",
                 f"{statistics.median(r[arm].best for r in runs):.4f}", f"{total['COMPLETE']} / {total['PRUNED']}",
                 f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})" if arm == "median" else "",
                 f"{statistics.median(diffs):+.2f}% ({min(diffs):+.2f} to {max(diffs):+.2f})" if arm == "median" else ""]
            )  # fmt: skip
    print(table(["dataset", "pruner", "metric", "wall s", "best", "COMPLETE / PRUNED", "median/none time", "best vs none"], rows))
    print()
    print("median/none time: per-seed wall-time ratios (goal <= 0.80x); best vs none: the median arm's best relative")
    print("to the no-pruner arm's, in % of it, positive when the median arm's is higher (goal: within 1% either way);")
    print("wall: RunResult.elapsed_seconds (the trial loop); best: best validation value of the COMPLETE trials")
    return 0


def rel(a: float, b: float) -> float:
    return (a - b) / abs(b) * 100 if b else 0.0


def fmt_states(states: dict[str, int]) -> str:
    return "(" + " ".join(f"{n} {s[0]}" for s, n in states.items() if n) + ")"


if __name__ == "__main__":
    sys.exit(main())
