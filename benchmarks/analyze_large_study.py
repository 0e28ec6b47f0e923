"""How long `hpo analyze` takes on a 5,000-trial study.

Run from a clean clone (set-up included):

    python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python benchmarks/analyze_large_study.py

What it builds
--------------
A temporary workspace whose SQLite storage holds one study shaped like a long `hpo run`: the
study attributes hpo writes (space YAML, data version, metric, model), 5,000 COMPLETE trials
over four parameters (an int, a log float, a float and a categorical) with a known trend, and
``--steps`` intermediate values per trial (hpo reports 50 per CatBoost fit by default). MLflow
is a fresh SQLite store in the same folder, with the study's parent run already there, so the
report artifact is logged as it would be for a real study.

What it times
-------------
* ``hpo analyze --study big`` as a user runs it (a new process each time: imports, loading the
  trials, statistics for every parameter, figures, the HTML, the dashboard note and figures, the
  MLflow artifact and the derived space), ``--repeats`` times; the median is the figure.
* the same with ``--dry-run`` (no writes), and a breakdown of one in-process run by stage.

Building the study is not timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACE = """study: big
data: {version: v0.1.0, source: "sklearn:diabetes", target: target, split: {validation: 0.2, test: 0.2, seed: 0}}
model: catboost
metric: pearson_r
n_trials: 5000
seed: 0
sampler: {name: tpe}
params:
  depth: {type: int, low: 2, high: 12}
  learning_rate: {type: float, low: 0.005, high: 0.5, log: true}
  l2_leaf_reg: {type: float, low: 1, high: 10}
  grow_policy: {type: categorical, choices: [SymmetricTree, Depthwise, Lossguide]}
fixed: {iterations: 500}
"""


def build(folder: Path, n_trials: int, steps: int) -> str:
    import math

    import numpy as np
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from hpo.space import parse_space
    from hpo.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{folder / 'studies' / 'hpo.db'}"
    (folder / "studies").mkdir()
    # Optuna writes one trial per transaction (~75 ms each here with 50 reports): building takes
    # minutes, and is not what is measured.
    study = optuna.create_study(storage=open_storage(url), study_name="big", direction="maximize")
    space = parse_space(SPACE)
    for key, value in {
        "space_yaml": SPACE,
        "search_hash": space.search_hash(),
        "data_version": "v0.1.0",
        "model": "catboost",
        "metric": "pearson_r",
        "hpo_ready": True,
    }.items():
        study.set_user_attr(key, value)
    dists = {
        "depth": IntDistribution(2, 12),
        "learning_rate": FloatDistribution(0.005, 0.5, log=True),
        "l2_leaf_reg": FloatDistribution(1, 10),
        "grow_policy": CategoricalDistribution(["SymmetricTree", "Depthwise", "Lossguide"]),
    }
    rng = np.random.default_rng(0)
    trials = []
    for i in range(n_trials):
        p = {
            "depth": int(rng.integers(2, 13)),
            "learning_rate": float(10 ** rng.uniform(math.log10(0.005), math.log10(0.5))),
            "l2_leaf_reg": float(rng.uniform(1, 10)),
            "grow_policy": ["SymmetricTree", "Depthwise", "Lossguide"][i % 3],
        }
        value = 0.6 + 0.01 * p["depth"] - 0.05 * (math.log10(p["learning_rate"]) + 1) ** 2
        value += -0.05 * (p["grow_policy"] == "Lossguide") + float(rng.normal(0, 0.02))
        curve = {s * 10: value - 0.2 * math.exp(-s / 10) for s in range(steps)}
        trials.append(
            optuna.trial.create_trial(
                params=p, distributions=dists, value=value, intermediate_values=curve, user_attrs={"seed": i, "budget_slot": i}
            )
        )
    study.add_trials(trials)
    return url


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"benchmark: {' '.join(cmd)} failed:\n{r.stderr}")
    return elapsed


def breakdown(folder: Path) -> dict[str, float]:
    """One in-process analysis, stage by stage (imports already paid)."""
    import optuna

    from hpo.analyze import DASHBOARD_POINTS, analyze, figures, html_page, markdown
    from hpo.analyze._study import _save_to_dashboard
    from hpo.models import MODELS
    from hpo.studies import complete_trials

    out: dict[str, float] = {}
    study = optuna.load_study(study_name="big", storage=f"sqlite:///{folder / 'studies' / 'hpo.db'}")
    t = time.perf_counter()
    study.get_trials(deepcopy=False)
    out["load trials: Optuna's get_trials (not used)"] = time.perf_counter() - t
    t = time.perf_counter()
    trials = complete_trials(study)
    out["load trials: hpo.studies.complete_trials"] = time.perf_counter() - t
    t = time.perf_counter()
    a = analyze("big", trials, "maximize", hard_limits=dict(MODELS["catboost"].hard_limits))
    out["statistics + importance"] = time.perf_counter() - t
    t = time.perf_counter()
    figs = figures(a, trials, "pearson_r")
    page = html_page(a, figs, "pearson_r", None)
    out["figures + HTML"] = time.perf_counter() - t
    t = time.perf_counter()
    small = figures(a, trials, "pearson_r", max_points=DASHBOARD_POINTS)
    _save_to_dashboard(study, small, markdown(a, "pearson_r", None), print)
    out["dashboard figures + note (into SQLite)"] = time.perf_counter() - t
    out["HTML size MB"] = len(page) / 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=50, help="intermediate values per trial")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of an earlier hpo (e.g. `git worktree add /tmp/hpo-old <rev>`): its `hpo analyze` "
        "runs on the same study, interleaved with this one, for a side-by-side ratio",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hpo-bench-analyze-") as tmp:
        folder = Path(tmp)
        (folder / "search_spaces").mkdir()
        t = time.perf_counter()
        build(folder, args.trials, args.steps)
        took = time.perf_counter() - t
        print(f"built a study of {args.trials} COMPLETE trials x {args.steps} intermediate values in {took:.1f}s")
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
        env.pop("HPO_STORAGE", None)
        hpo = [sys.executable, "-m", "hpo", "analyze", "--study", "big"]
        # The first run also creates the MLflow store and the parent run; keep it out of the median.
        timed([*hpo, "--json"], folder, env)
        full, dry, base = [], [], []
        base_env = {**env, "PYTHONPATH": str(args.baseline.resolve())} if args.baseline else env
        for i in range(args.repeats):
            dry.append(timed([*hpo, "--dry-run", "--json"], folder, env))
            full.append(timed([*hpo, "--json", "--name", f"big-next{i}"], folder, env))
            if args.baseline:
                base.append(timed([*hpo, "--json", "--name", f"big-base{i}"], folder, base_env))
        help_s = timed([sys.executable, "-m", "hpo", "--help"], folder, env)
        stages = breakdown(folder)

    print()
    print(f"{'what':<44} {'median s':>9} {'runs':>22}")
    print(f"{'hpo analyze (report, note, artifact, space)':<44} {statistics.median(full):>9.2f} {_runs(full):>22}")
    print(f"{'hpo analyze --dry-run':<44} {statistics.median(dry):>9.2f} {_runs(dry):>22}")
    if base:
        print(f"{'baseline hpo analyze (' + args.baseline.name + ')':<44} {statistics.median(base):>9.2f} {_runs(base):>22}")
        print(
            f"{'ratio, this / baseline (median of pairs)':<44} "
            f"{statistics.median(f / b for f, b in zip(full, base, strict=True)):>9.2f}"
        )
    print(f"{'hpo --help (process start-up)':<44} {help_s:>9.2f}")
    print()
    print("one in-process run, by stage:")
    for stage, value in stages.items():
        print(f"  {stage:<42} {value:>9.2f}")


def _runs(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


if __name__ == "__main__":
    main()
