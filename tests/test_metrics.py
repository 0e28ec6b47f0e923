"""The metric registry agrees with scikit-learn, which defines what each metric means."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss

from hpo.metrics import METRICS


@pytest.mark.parametrize("n_classes", [2, 3, 7])
def test_logloss_is_scikit_learns_including_certain_and_wrong_predictions(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    proba = rng.dirichlet(np.ones(n_classes), size=300)
    y = rng.integers(0, n_classes, 300)
    proba[0] = np.eye(n_classes)[y[0]]  # certain and right: log(1 - eps)
    proba[1] = np.eye(n_classes)[(y[1] + 1) % n_classes]  # certain and wrong: clipped at eps, not inf
    ours = METRICS["logloss"].score(y, proba.argmax(axis=1), proba, n_classes)
    assert np.isfinite(ours)
    assert ours == pytest.approx(log_loss(y, proba, labels=list(range(n_classes))), rel=1e-12)
