"""What a model family gives hpo: its parameter rules and a fit function, behind one interface.

A family's ``fit`` trains on the train split, reports the validation objective through
``report`` while it trains (``False`` back stops it: the trial is pruned), and returns the
fitted estimator. The estimator follows scikit-learn's API (``predict``; ``predict_proba`` and
``classes_`` for classifiers), which is all scoring, promotion and serving use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Report an intermediate value about this many times per fit: enough for pruners to act early,
# few enough that a shared storage is not written to on every iteration.
REPORTS_PER_FIT = 50

# report(step, value) -> False stops training (the trial is then pruned).
Reporter = Callable[[int, float], bool]


class Fitted(NamedTuple):
    """What a family's ``fit`` returns."""

    estimator: Any
    best_iteration: int | None
    stopped_at: int | None  # the step at which ``report`` asked to stop, if it did
    fit_seconds: float


FitFunction = Callable[..., Fitted]  # fit(*, metric, data, params, seed, thread_count, report) -> Fitted


@dataclass(frozen=True)
class ModelSpec:
    """What hpo needs to know of a model family.

    ``hard_limits`` bound parameters the library itself rejects outside a range (used to check
    space files and to keep a widened range legal). ``reserved`` are constructor arguments hpo
    sets itself, so a space file must not. ``known_params`` lists the arguments the library
    takes (None: any name is accepted). ``default_iterations`` is the library's number of boosting
    iterations when a space sets none (the pruners' resource).
    """

    name: str
    library: str
    fit: FitFunction
    hard_limits: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    reserved: frozenset[str] = frozenset()
    integer_params: frozenset[str] = frozenset()
    known_params: Callable[[], set[str]] | None = None
    default_iterations: int = 1000
    # With ``cv``, the final model's parameters from the trial's and each fold's best iteration
    # (CatBoost picks its best iteration on the eval set, which the final fit on train +
    # validation does not have). None: the trial's parameters as they are.
    final_params: Callable[[dict[str, Any], list[int | None]], dict[str, Any]] | None = None
