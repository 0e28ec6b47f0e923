"""Do derived spaces earn their keep? Four protocols, paired seeds, a Wilcoxon test per comparison.

Datasets (both ship with scikit-learn): diabetes (regression, validation R2, maximized) and
breast_cancer (classification, validation log loss, minimized). Each is written as two data
versions: v0.1.0, a random half of the rows, and v0.2.0, all of them; each version is split
60/20/20 the same way (ratio split, seed 0). Every (dataset, seed) runs in a fresh temporary
workspace through hpo's Python API, as a user runs the CLI (``run_study``, ``analyze_study`` with
its defaults: noise floor from 3 re-fits, soft warm start). CatBoost: 100 iterations, 32 borders
(so that a depth-8 fit takes under a second), one thread per fit, no pruner (pruning would add
noise of its own). TPE with 5 start-up trials. The wide space: depth 2-8, learning rate
0.005-0.5, l2_leaf_reg 0.5-30, random_strength 0.1-10 (the last three log).

Protocols (budget B = ``--budget``, default 30 trials):

* **transfer**: tune v0.1.0 in the wide space (B trials), ``hpo analyze --data-version v0.2.0``,
  then on v0.2.0 compare, at budgets 10, 20 and B (v0.1.0's trials not counted):
  ``cold`` (wide space, no knowledge), ``bests`` (wide space, v0.1.0's best 3 configurations
  run first) and ``derived`` (hpo's derived space: its ranges, and the same configurations first).
* **misspecified**: on v0.2.0, a space whose learning-rate range (0.0005-0.003 for 100
  iterations) excludes the optimum; after B trials, ``stay`` (B more in the same space) against
  ``derived`` (B in the derived space, soft warm start). Then derivations continue (B/2 trials a
  generation, at most 4 derivations) until the learning-rate range brackets the reference optimum.
* **same task**: on v0.2.0, ``wide`` (2B trials) against ``derived`` (B wide, analyze, B derived
  with the parent's history): equal budget.
* **harm**: how often a derived space (transfer and same task) excludes the best configuration of
  a long reference study (``--reference`` trials, default 150, wide space, v0.2.0).

For each arm and budget: the best validation value of the arm's own trials, and the test metric of
that trial re-trained as ``hpo promote`` does (its recipe: recorded space, params and seed).

Run it from the repository root:

    .venv/bin/python benchmarks/narrowing_quality.py [--seeds 20] [--budget 30] [--processes 2]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import quiet, workspace  # noqa: E402

DATASETS = {
    "diabetes": {"loader": "load_diabetes", "metric": "r2"},
    "breast_cancer": {"loader": "load_breast_cancer", "metric": "logloss"},
}
WIDE = {
    "depth": {"type": "int", "low": 2, "high": 8},
    "learning_rate": {"type": "float", "low": 0.005, "high": 0.5, "log": True},
    "l2_leaf_reg": {"type": "float", "low": 0.5, "high": 30, "log": True},
    "random_strength": {"type": "float", "low": 0.1, "high": 10, "log": True},
}
LOW_LR = {**WIDE, "learning_rate": {"type": "float", "low": 0.0005, "high": 0.003, "log": True}}
MAX_DERIVATIONS = 4


def space(dataset: str, study: str, version: str, params: dict[str, Any], n_trials: int, seed: int) -> dict[str, Any]:
    return {
        "study": study,
        "data": {
            "version": version,
            "source": f"{dataset}-{version}.csv",
            "target": "target",
            "split": {"validation": 0.2, "test": 0.2, "seed": 0},
        },
        "model": "catboost",
        "metric": DATASETS[dataset]["metric"],
        "n_trials": n_trials,
        "seed": seed,
        "sampler": {"name": "tpe", "n_startup_trials": 5},
        "pruner": {"name": "none"},
        "params": params,
        "fixed": {"iterations": 100, "border_count": 32, "thread_count": 1},
    }


@dataclass
class Point:
    """One arm of one protocol at one budget."""

    protocol: str
    arm: str
    budget: int
    val: float
    test: float


@dataclass
class JobResult:
    dataset: str
    seed: int
    points: list[Point] = field(default_factory=list)
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)  # protocol -> derived space params/fixed
    verdicts: dict[str, str] = field(default_factory=dict)  # protocol -> what the analysis said
    derivations_to_bracket: int | None = None  # misspecified: None = not within MAX_DERIVATIONS
    reference: dict[str, Any] | None = None  # reference job only: the best params
    seconds: float = 0.0


def write_versions(root: Path, dataset: str) -> None:
    import sklearn.datasets

    df = getattr(sklearn.datasets, DATASETS[dataset]["loader"])(as_frame=True).frame
    df.sample(frac=0.5, random_state=0).to_csv(root / f"{dataset}-v0.1.0.csv", index=False)
    df.to_csv(root / f"{dataset}-v0.2.0.csv", index=False)


class Job:
    def __init__(self, root: Path, dataset: str, seed: int) -> None:
        from hpo.workspace import load_workspace

        self.root, self.dataset, self.seed = root, dataset, seed
        (root / "search_spaces").mkdir()
        write_versions(root, dataset)
        self.ws = load_workspace(root)
        self.sign = 1 if DATASETS[dataset]["metric"] != "logloss" else -1

    def write(self, content: dict[str, Any]) -> Path:
        path = self.ws.search_spaces_dir / f"{content['study']}.yaml"
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        return path

    def run(self, path: Path, n_trials: int | None = None) -> str:
        from hpo.run import run_study

        if n_trials is not None:  # the budget may change when resuming
            raw = yaml.safe_load(path.read_text())
            raw["n_trials"] = n_trials
            path.write_text(yaml.safe_dump(raw, sort_keys=False))
        run_study(path, workspace=self.ws)
        return str(yaml.safe_load(path.read_text())["study"])

    def analyze(self, study: str, **kw: Any) -> tuple[Path | None, str]:
        from hpo.analyze import analyze_study

        r = analyze_study(study, workspace=self.ws, **kw)
        kinds = [f"{p}: {a.recommendation.kind}" for p, a in r.analysis.params.items() if a.recommendation.kind != "keep"]
        verdict = "noise: keep all" if r.analysis.message else ("; ".join(kinds) or "keep all")
        return r.derived_space, verdict

    def own_trials(self, study: str) -> list[Any]:
        """The study's own trials in the order they ran (inherited history left out)."""
        from hpo.studies import load_study

        s = load_study(self.ws.storage_url(), study)
        return [t for t in s.get_trials(deepcopy=False) if "inherited_from" not in t.user_attrs]

    def points(self, protocol: str, arm: str, segments: list[tuple[str, int, int]], budgets: list[int]) -> list[Point]:
        """Best validation and its test metric after each budget over the arm's trials, which are
        ``segments`` of (study, first own trial, count) in the order they ran."""
        trials = []
        for study, start, count in segments:
            trials += [(study, t) for t in self.own_trials(study)[start : start + count]]
        out = []
        for b in budgets:
            done = [(s, t) for s, t in trials[:b] if t.state.name == "COMPLETE" and t.value is not None]
            study, best = max(done, key=lambda st: self.sign * st[1].value)
            out.append(Point(protocol, arm, b, float(best.value), self.test_of(study, best.number)))
        return out

    def test_of(self, study: str, number: int) -> float:
        from hpo.models import evaluate
        from hpo.promote import Recipe
        from hpo.storage import trial_by_number
        from hpo.studies import load_study

        s = load_study(self.ws.storage_url(), study)
        recipe = Recipe.from_trial(s, trial_by_number(s, number))
        data = recipe.load_data(self.ws, f"{study}#{number}")
        fit = recipe.train(data)
        return float(evaluate(fit.model, data.test, data)[recipe.metric])

    def derived_params(self, path: Path) -> dict[str, Any]:
        raw = yaml.safe_load(path.read_text())
        return {"params": raw["params"], "fixed": raw.get("fixed") or {}}


def run_job(dataset: str, seed: int, budget: int) -> JobResult:
    quiet()
    started = time.perf_counter()
    out = JobResult(dataset, seed)
    half = budget // 2
    budgets = sorted({10, 20, budget})
    with workspace("derive") as root:
        j = Job(root, dataset, seed)
        # transfer: learn on v0.1.0, search v0.2.0
        v1 = j.run(j.write(space(dataset, "t-v1", "v0.1.0", WIDE, budget, seed)))
        derived, out.verdicts["transfer"] = j.analyze(v1, data_version="v0.2.0", data_source=f"{dataset}-v0.2.0.csv")
        assert derived is not None  # a transfer is always written
        out.derived["transfer"] = j.derived_params(derived)
        cold = j.run(j.write(space(dataset, "wide", "v0.2.0", WIDE, budget, seed)))
        bests = j.write(
            {**space(dataset, "t-bests", "v0.2.0", WIDE, budget, seed), "derived_from": {"study": v1, "warm_start": True}}
        )
        j.run(bests)
        j.run(derived)
        for arm, study in (("cold", cold), ("bests", "t-bests"), ("derived", yaml.safe_load(derived.read_text())["study"])):
            out.points += j.points("transfer", arm, [(study, 0, budget)], budgets)

        # same task, equal budget: the cold wide study's first B trials are the shared first half
        derived, out.verdicts["same"] = j.analyze(cold, name="s-derived")
        if derived is not None:
            out.derived["same"] = j.derived_params(derived)
            j.run(derived)
            second = [("s-derived", 0, budget)]
        else:  # nothing to change: the arm goes on in the wide space
            second = []
        j.run(j.ws.search_spaces_dir / "wide.yaml", n_trials=2 * budget)
        out.points += j.points("same", "wide", [(cold, 0, 2 * budget)], [2 * budget])
        out.points += j.points("same", "derived", [(cold, 0, budget), *(second or [(cold, budget, budget)])], [2 * budget])

        # misspecified bounds
        start = j.run(j.write(space(dataset, "m-start", "v0.2.0", LOW_LR, budget, seed)))
        derived, out.verdicts["misspecified"] = j.analyze(start, name="m-gen2")
        j.run(j.ws.search_spaces_dir / "m-start.yaml", n_trials=2 * budget)
        out.points += j.points("misspecified", "stay", [(start, 0, 2 * budget)], [2 * budget])
        if derived is None:
            out.points += j.points("misspecified", "derived", [(start, 0, 2 * budget)], [2 * budget])
        else:
            j.run(derived)
            out.points += j.points("misspecified", "derived", [(start, 0, budget), ("m-gen2", 0, budget)], [2 * budget])
        out.derived["misspecified"] = {} if derived is None else j.derived_params(derived)
        chain = [derived] if derived is not None else []
        while chain and len(chain) < MAX_DERIVATIONS:
            last = yaml.safe_load(chain[-1].read_text())
            if last["params"]["learning_rate"]["high"] >= REFERENCE_LR.get(dataset, math.inf):
                break
            if len(chain) > 1:
                j.run(chain[-1], n_trials=half)
            nxt, _ = j.analyze(last["study"])
            if nxt is None:
                break
            chain.append(nxt)
        lrs = [yaml.safe_load(p.read_text())["params"]["learning_rate"] for p in chain]
        hit = [i + 1 for i, lr in enumerate(lrs) if lr["low"] <= REFERENCE_LR.get(dataset, math.inf) <= lr["high"]]
        out.derivations_to_bracket = hit[0] if hit else None
    out.seconds = time.perf_counter() - started
    return out


REFERENCE_LR: dict[str, float] = {}  # set in each worker from the reference jobs


def run_reference(dataset: str, n: int) -> JobResult:
    quiet()
    started = time.perf_counter()
    with workspace("reference") as root:
        j = Job(root, dataset, 0)
        study = j.run(j.write(space(dataset, "reference", "v0.2.0", WIDE, n, 0)))
        from hpo.studies import load_study

        best = load_study(j.ws.storage_url(), study).best_trial
        out = JobResult(dataset, 0, reference=dict(best.params))
    out.seconds = time.perf_counter() - started
    return out


def _init(reference_lr: dict[str, float]) -> None:
    REFERENCE_LR.update(reference_lr)


def _job_result(d: dict[str, Any]) -> JobResult:
    return JobResult(**{**d, "points": [Point(**p) for p in d["points"]]})


def excludes(derived: dict[str, Any], best: dict[str, Any]) -> bool:
    """Whether a derived space cannot reach the reference best configuration."""
    for name, value in best.items():
        if name in derived["fixed"]:
            if not math.isclose(float(derived["fixed"][name]), float(value), rel_tol=1e-5):
                return True
        elif name in derived["params"]:
            p = derived["params"][name]
            if p["type"] == "categorical":
                if value not in p["choices"]:
                    return True
            elif not p["low"] <= value <= p["high"]:
                return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="paired seeds per dataset (default 20)")
    parser.add_argument("--budget", type=int, default=30, help="trials per arm and protocol (default 30)")
    parser.add_argument("--reference", type=int, default=150, help="trials of the reference study (default 150)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--processes", type=int, default=2, help="jobs at a time (default 2)")
    parser.add_argument("--save", type=Path, help="also write the raw results to this JSON file")
    parser.add_argument("--load", type=Path, help="print the report of raw results saved with --save; run nothing")
    args = parser.parse_args()
    if args.load:
        raw = json.loads(args.load.read_text())
        print(raw["header"])
        results = [_job_result(r) for r in raw["results"]]
        refs = {r.dataset: r for r in map(_job_result, raw["references"])}
        print(report(results, refs, raw["datasets"], raw["budget"]))
        return
    if args.budget < 20:
        parser.error("--budget must be >= 20 (the analysis needs its 10 COMPLETE trials, the figures budgets 10 and 20)")

    import catboost
    import optuna

    started = time.time()
    with ProcessPoolExecutor(max_workers=args.processes) as pool:
        refs = {r.dataset: r for r in pool.map(run_reference, args.datasets, [args.reference] * len(args.datasets))}
    reference_lr = {d: float(r.reference["learning_rate"]) for d, r in refs.items()}  # type: ignore[index]
    jobs = [(d, 1000 + i, args.budget) for d in args.datasets for i in range(args.seeds)]
    with ProcessPoolExecutor(max_workers=args.processes, initializer=_init, initargs=(reference_lr,)) as pool:
        results = list(pool.map(run_job, *zip(*jobs, strict=True)))

    header = (
        f"# hpo derived spaces, {datetime.date.today()}\n"
        f"{os.cpu_count()} cores, Python {platform.python_version()}, Optuna {optuna.__version__}, "
        f"CatBoost {catboost.__version__}; {args.seeds} paired seeds per dataset, budget {args.budget}, "
        f"reference {args.reference} trials; {(time.time() - started) / 60:.1f} min "
        f"(median job {statistics.median(r.seconds for r in results):.0f} s)\n"
    )
    if args.save:
        args.save.write_text(
            json.dumps(
                {
                    "header": header,
                    "datasets": args.datasets,
                    "budget": args.budget,
                    "results": [asdict(r) for r in results],
                    "references": [asdict(r) for r in refs.values()],
                }
            )
        )
    print(header)
    print(report(results, refs, args.datasets, args.budget))


def report(results: list[JobResult], refs: dict[str, JobResult], datasets: list[str], budget: int) -> str:
    from scipy import stats

    from hpo.metrics import METRICS

    comparisons = (
        [("transfer", "derived", "cold", b) for b in sorted({10, 20, budget})]
        + [("transfer", "bests", "cold", b) for b in sorted({10, 20, budget})]
        + [("transfer", "derived", "bests", b) for b in sorted({10, 20, budget})]
        + [("misspecified", "derived", "stay", 2 * budget), ("same", "derived", "wide", 2 * budget)]
    )
    lines = [
        "| dataset | protocol | budget | arm vs baseline | median val (arm / base) | median test (arm / base) "
        "| arm better (val / test) | Wilcoxon p (val / test) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in datasets:
        metric = METRICS[DATASETS[d]["metric"]]
        sign = 1 if metric.higher_is_better else -1
        rs = [r for r in results if r.dataset == d]

        def get(r: JobResult, protocol: str, arm: str, b: int) -> Point:
            return next(p for p in r.points if (p.protocol, p.arm, p.budget) == (protocol, arm, b))

        for protocol, arm, base, b in comparisons:
            a = [get(r, protocol, arm, b) for r in rs]
            c = [get(r, protocol, base, b) for r in rs]
            cells = []
            for attr in ("val", "test"):
                x = [getattr(p, attr) for p in a]
                y = [getattr(p, attr) for p in c]
                diff = [sign * (u - v) for u, v in zip(x, y, strict=True)]
                wins = sum(v > 0 for v in diff)
                p = stats.wilcoxon(diff).pvalue if any(diff) else 1.0
                cells.append((statistics.median(x), statistics.median(y), wins, p))
            (mv, bv, wv, pv), (mt, bt, wt, pt) = cells
            lines.append(
                f"| {d} ({metric.name}) | {protocol} | {b} | {arm} vs {base} | {mv:.4f} / {bv:.4f} | {mt:.4f} / {bt:.4f} "
                f"| {wv}/{len(rs)} / {wt}/{len(rs)} | {pv:.3g} / {pt:.3g} |"
            )
    lines.append("")
    for d in datasets:
        rs = [r for r in results if r.dataset == d]
        best = refs[d].reference or {}
        spaces = [r.derived[p] for r in rs for p in ("transfer", "same") if p in r.derived]
        harmed = sum(excludes(s, best) for s in spaces)
        brackets = [r.derivations_to_bracket for r in rs]
        counts = {k: sum(1 for b in brackets if b == k) for k in sorted({b for b in brackets if b is not None})}
        lines.append(
            f"{d}: harm rate {harmed}/{len(spaces)} derived spaces exclude the reference best "
            f"({', '.join(f'{k}={_num(v)}' for k, v in best.items())}); misspecified learning rate bracketed "
            f"after {', '.join(f'{k} derivation(s) in {v} seeds' for k, v in counts.items()) or 'no derivation'}"
            f", not within {MAX_DERIVATIONS} in {sum(b is None for b in brackets)} seeds"
        )
    lines += ["", "What the analyses said:"]
    for r in results:
        lines.append(f"- {r.dataset} seed {r.seed}: " + "; ".join(f"{k}: {v}" for k, v in r.verdicts.items()))
    return "\n".join(lines)


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


if __name__ == "__main__":
    sys.exit(main())
