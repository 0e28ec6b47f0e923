"""Start-up time: ``hpo --help`` next to ``optuna --help``, ``mlflow --help`` and a bare ``python -c pass``.

What it measures
----------------
The wall time of a new process, from ``subprocess.run`` to its exit, as a user waits for it:
``time.perf_counter()`` around ``subprocess.run(cmd, stdout=DEVNULL, stderr=DEVNULL)``. Commands:

* python -c pass   the interpreter alone (``sys.executable``): the floor under every other row
* hpo --help       hpo's CLI (Typer); hpo imports Optuna, MLflow, CatBoost and the rest lazily,
                   so ``--help`` should stay close to the floor
* optuna --help    Optuna's CLI
* mlflow --help    MLflow's CLI

The three CLIs are the console scripts next to ``sys.executable`` (the virtualenv's ``bin/``), run as
a user runs them. Every command runs ``--runs`` times, each in a fresh process, round-robin: one run
of each command per round, the order rotated by one from round to round, so that each command goes
first equally often (with ``--runs`` a multiple of 4). ``--warmup`` untimed rounds come first (the first start after an
install compiles ``.pyc`` files and fills the page cache). Every process runs in an empty temporary
folder with ``MLFLOW_TRACKING_URI`` pointing into it, so nothing is written elsewhere; a command that
exits non-zero stops the benchmark.

The table shows the median and the minimum per command and their ratios to ``hpo --help``.

Run it from the repository root:

    .venv/bin/python benchmarks/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

BIN = Path(sys.executable).parent  # not resolved: the virtualenv's bin/, where the console scripts are


def commands() -> dict[str, list[str]]:
    cmds = {"python -c pass": [sys.executable, "-c", "pass"]}
    for name in ("hpo", "optuna", "mlflow"):
        exe = BIN / name
        if not exe.exists():
            raise SystemExit(f"{exe} not found: install the project into this interpreter's environment (pip install -e .)")
        cmds[f"{name} --help"] = [str(exe), "--help"]
    return cmds


def time_once(cmd: list[str], cwd: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with code {proc.returncode}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="timed runs of every command, each a new process (default 10)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds before (default 1; 0: none)")
    args = ap.parse_args()

    cmds = commands()
    names = list(cmds)
    print("start-up: hpo --help vs optuna --help, mlflow --help and python -c pass (new process each run)")
    print(
        f"date {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}; cpus {os.cpu_count()}"
    )
    print(
        f"hpo {version('hpo')}, typer {version('typer')}, optuna {version('optuna')}, mlflow {version('mlflow')}; "
        f"executables in {BIN}; {args.runs} runs each, {args.warmup} warm-up round(s)"
    )
    print()

    times: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "HPO_STORAGE"}
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        for r in range(-args.warmup, args.runs):
            k = r % len(names)
            order = names[k:] + names[:k]
            for name in order:
                t = time_once(cmds[name], tmp, env)
                if r >= 0:
                    times[name].append(t)
            if r >= 0:
                print(f"round {r + 1}: " + ", ".join(f"{n} {times[n][-1] * 1000:.0f} ms" for n in order), flush=True)

    hpo_med = statistics.median(times["hpo --help"])
    hpo_min = min(times["hpo --help"])
    print()
    print(f"milliseconds of wall time, {args.runs} runs each")
    print()
    print("| command | median ms | min ms | median / hpo | min / hpo |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        med, low = statistics.median(times[name]), min(times[name])
        print(f"| `{name}` | {med * 1000:.0f} | {low * 1000:.0f} | {med / hpo_med:.2f}x | {low / hpo_min:.2f}x |")
    print()
    floor = statistics.median(times["python -c pass"])
    print(f"hpo --help above the interpreter floor: {(hpo_med - floor) * 1000:.0f} ms (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
