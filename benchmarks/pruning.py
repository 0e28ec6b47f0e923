"""Pruning: the shipped example study with its median pruner against the same study without a pruner.

What it measures
----------------
The study is ``search_spaces/diabetes-catboost.yaml`` as shipped, read when the benchmark starts:
CatBoost on scikit-learn's diabetes data, validation ``pearson_r`` (maximized), TPE with
``n_startup_trials: 8``, ``depth`` 2-10, ``learning_rate`` 0.01-0.3 (log), ``l2_leaf_reg`` 1-10 and
``iterations: 300``. The two arms differ only in the pruner:

* median: the file's pruner, ``{name: median, n_startup_trials: 5, n_warmup_steps: 100}``
* none:   ``{name: none}``

``n_trials`` is replaced by ``--trials`` and ``seed`` by each of ``--seeds`` study seeds (the file's
seed, then the following integers). Both arms of one seed get the same trial seeds and the same TPE
sampler seed, so their first trials (TPE's random start-up) have the same parameters and the same
fits. After the first pruned trial TPE sees different histories (a pruned trial counts with its last
intermediate value), so the arms then sample different points: the comparison is of two studies
with the same settings, not of the same trials.

``thread_count`` is not set: hpo's default applies, the CPU count divided by ``--jobs`` (1 here), so
every fit uses all cores, in both arms.

Per arm and seed it records:

* wall         ``RunResult.elapsed_seconds``: the trial loop (trials, their intermediate values,
               MLflow runs); loading the data, creating the study and the MLflow experiment are not
               in it.
* best         ``RunResult.after.best.value``: the best validation pearson_r of the COMPLETE trials
               (a PRUNED trial cannot be the best).
* states       trials COMPLETE / PRUNED / FAIL.

The arms of one seed run back to back, and which goes first alternates from seed to seed. Each run
gets a fresh temporary workspace (Optuna SQLite under ``studies/``, ``MLFLOW_TRACKING_URI`` set to
``sqlite:///<tmp>/mlflow.db``, made the current directory), so nothing is written outside it. The
table shows medians over seeds; the ratios are medians of the per-seed ratios and differences.

Run it from the repository root:

    .venv/bin/python benchmarks/pruning.py [--seeds 5] [--trials 40]
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


@dataclass(frozen=True)
class Outcome:
    wall: float
    best: float
    states: dict[str, int]


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
    ap.add_argument("--trials", type=int, default=40, help="n_trials of every study (default 40, as in the example)")
    ap.add_argument("--warmup", type=int, default=2, help="trials of an untimed warm-up study (default 2; 0: none)")
    args = ap.parse_args()

    base = yaml.safe_load(EXAMPLE.read_text())
    seeds = [int(base.get("seed", 0)) + i for i in range(args.seeds)]
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "HPO_STORAGE")}
    quiet()

    print("pruning: the example study with its median pruner vs no pruner (same seeds)")
    print(
        f"date {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}; cpus {os.cpu_count()}"
    )
    print(
        f"hpo {version('hpo')}, optuna {version('optuna')}, mlflow {version('mlflow')}, catboost {version('catboost')}; "
        "stores: SQLite (Optuna) and sqlite:///.../mlflow.db (MLflow), fresh per study"
    )
    print(
        f"study: {EXAMPLE.name}: sampler {base.get('sampler')}, params {', '.join(base['params'])}, fixed {base.get('fixed')}; "
        f"thread_count hpo's default ({os.cpu_count()} = cpus / 1 job)"
    )
    print(f"arms: pruner {base.get('pruner')} vs {{'name': 'none'}}; {args.trials} trials x seeds {seeds}")
    print()

    runs: list[dict[str, Outcome]] = []
    try:
        if args.warmup:
            run_arm(arm_space(base, "none", seeds[0], args.warmup))
        for i, seed in enumerate(seeds):
            order = ARMS if i % 2 == 0 else ARMS[::-1]
            rep = {arm: run_arm(arm_space(base, arm, seed, args.trials)) for arm in order}
            runs.append(rep)
            m, n = rep["median"], rep["none"]
            print(
                f"seed {seed} ({order[0]} first): median {m.wall:.1f} s best {m.best:.4f} {fmt_states(m.states)}; "
                f"none {n.wall:.1f} s best {n.best:.4f} {fmt_states(n.states)} -> time none/median {n.wall / m.wall:.2f}x, "
                f"best median-none {m.best - n.best:+.4f}",
                flush=True,
            )
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    print()
    print(f"per seed ({args.trials} trials each)")
    print()
    rows = [
        [str(seed), f"{r['median'].wall:.1f}", f"{r['none'].wall:.1f}", f"{r['none'].wall / r['median'].wall:.2f}x",
         f"{r['median'].best:.4f}", f"{r['none'].best:.4f}", f"{r['median'].best - r['none'].best:+.4f}",
         f"{r['median'].states.get('PRUNED', 0)}"]
        for seed, r in zip(seeds, runs, strict=True)
    ]  # fmt: skip
    print(table(["seed", "median s", "none s", "none/median", "best median", "best none", "median-none", "pruned"], rows))
    print()
    print(f"summary: medians over {len(seeds)} seeds; trial states summed over them")
    print()
    rows = []
    for arm in ARMS:
        total = {s: sum(r[arm].states.get(s, 0) for r in runs) for s in ("COMPLETE", "PRUNED", "FAIL")}
        rows.append(
            [arm, f"{statistics.median(r[arm].wall for r in runs):.1f}", f"{statistics.median(r[arm].best for r in runs):.4f}",
             str(total["COMPLETE"]), str(total["PRUNED"]), str(total["FAIL"])]
        )  # fmt: skip
    print(table(["pruner", "wall s", "best pearson_r", "COMPLETE", "PRUNED", "FAIL"], rows))
    print()
    ratios = [r["none"].wall / r["median"].wall for r in runs]
    diffs = [r["median"].best - r["none"].best for r in runs]
    wins = sum(d > 0 for d in diffs)
    ties = sum(d == 0 for d in diffs)
    print(f"time none/median:     {statistics.median(ratios):.2f}x (per seed {min(ratios):.2f}-{max(ratios):.2f}x)")
    print(f"best median - none:   {statistics.median(diffs):+.4f} (per seed {min(diffs):+.4f} to {max(diffs):+.4f})")
    print(f"median pruner better in {wins} of {len(diffs)} seeds" + (f", equal in {ties}" if ties else ""))
    print("wall: RunResult.elapsed_seconds (the trial loop); best: best validation pearson_r of the COMPLETE trials")
    return 0


def fmt_states(states: dict[str, int]) -> str:
    return "(" + " ".join(f"{n} {s[0]}" for s, n in states.items() if n) + ")"


if __name__ == "__main__":
    sys.exit(main())
