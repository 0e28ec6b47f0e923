"""Cross-validation's cost: one trial of the shipped example with 5-fold CV against a single validation split.

What it measures
----------------
The model, data and parameter ranges are ``search_spaces/diabetes-catboost.yaml`` as shipped
(CatBoost, scikit-learn's diabetes data, ``iterations: 300``, ``depth`` 2-10, ``learning_rate``
0.01-0.3 log, ``l2_leaf_reg`` 1-10). ``--configs`` configurations (default 16) are drawn from those
ranges with a fixed seed, the way TPE's random start-up would. Each configuration is trained both
ways, back to back, alternating which goes first:

* split:  ``hpo.models.train`` on train, scored on validation (what a trial of the example does);
* cv:     ``hpo.models.cross_validate`` with ``cv: {folds: 5}`` over train + validation
          (what a trial of ``search_spaces/diabetes-catboost-cv.yaml`` does when nothing prunes it).

Both call the library as a trial does (``thread_count`` unset: every core), without a study or
MLflow, so the figure is the training work CV adds, not storage overhead. It prints each arm's
median seconds per trial and the median per-configuration ratio, and how far the validation value
moves between the two (the single split's optimism).

Run it from the repository root:

    .venv/bin/python benchmarks/cv.py [--configs 16] [--folds 5]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", type=int, default=16)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    import numpy as np

    from hpo.data import folds, load_data
    from hpo.models import cross_validate, train
    from hpo.space import CVConfig, load_space

    space = load_space(ROOT / "search_spaces" / "diabetes-catboost.yaml").space
    data = load_data(space.data, task=space.task, base=ROOT)
    cv_folds = folds(data, CVConfig(folds=args.folds))
    rng = np.random.default_rng(0)
    rows = []
    for i in range(args.configs):
        params = {
            **space.fixed,
            "depth": int(rng.integers(2, 11)),
            "learning_rate": float(np.exp(rng.uniform(np.log(0.01), np.log(0.3)))),
            "l2_leaf_reg": float(rng.uniform(1, 10)),
        }
        timing: dict[str, tuple[float, float]] = {}
        for arm in ("split", "cv") if i % 2 == 0 else ("cv", "split"):
            start = time.perf_counter()
            if arm == "split":
                value = train(model=space.model, metric=space.metric, data=data, params=params, seed=i).objective
            else:
                value = cross_validate(model=space.model, metric=space.metric, folds=cv_folds, params=params, seed=i).objective
            timing[arm] = (time.perf_counter() - start, value)
        rows.append((params, timing))
        print(
            f"  config {i:2d} depth {params['depth']:2d}: split {timing['split'][0]:6.2f} s, cv {timing['cv'][0]:6.2f} s "
            f"({timing['cv'][0] / timing['split'][0]:4.1f}x); pearson_r split {timing['split'][1]:.4f}, cv {timing['cv'][1]:.4f}",
            flush=True,
        )

    split = [t["split"][0] for _, t in rows]
    cv = [t["cv"][0] for _, t in rows]
    ratios = [t["cv"][0] / t["split"][0] for _, t in rows]
    gaps = [t["split"][1] - t["cv"][1] for _, t in rows]
    print()
    print(f"cv.py, {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, {args.configs} configurations")
    print(f"  median seconds per trial: split {statistics.median(split):.2f}, {args.folds}-fold cv {statistics.median(cv):.2f}")
    spread = f"range {min(ratios):.2f}-{max(ratios):.2f}"
    print(f"  median ratio cv / split (per configuration): {statistics.median(ratios):.2f}x ({spread})")
    print(f"  median pearson_r split - cv: {statistics.median(gaps):+.4f} (the single validation split against the fold mean)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
