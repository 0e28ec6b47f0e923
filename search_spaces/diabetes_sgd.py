"""Example training function for ``model: search_spaces.diabetes_sgd:fit`` (the study in
``diabetes-sgd.yaml``): a team's own training loop, which hpo calls with the arguments it declares.

A linear model trained by stochastic gradient descent, one epoch at a time; after each epoch it
reports the validation Pearson r, and stops when ``report`` says the trial is pruned.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import SGDRegressor
from sklearn.preprocessing import StandardScaler


class Model:
    """Standardises the features, predicts in the target's units."""

    def __init__(self, scaler: StandardScaler, regressor: SGDRegressor, mean: float, sd: float) -> None:
        self.scaler, self.regressor, self.mean, self.sd = scaler, regressor, mean, sd

    def predict(self, X: Any) -> np.ndarray:
        return self.regressor.predict(self.scaler.transform(X)) * self.sd + self.mean


def fit(params: dict[str, Any], train: Any, validation: Any, seed: int, report: Any) -> Model:
    scaler = StandardScaler().fit(train.X)
    mean, sd = float(train.y.mean()), float(train.y.std())
    regressor = SGDRegressor(
        alpha=params["alpha"], eta0=params["eta0"], learning_rate="constant", penalty=params["penalty"], random_state=seed
    )
    model = Model(scaler, regressor, mean, sd)
    X = scaler.transform(train.X)
    y = (train.y.to_numpy(dtype=float) - mean) / sd
    for epoch in range(int(params["epochs"])):
        regressor.partial_fit(X, y)
        r = float(np.corrcoef(model.predict(validation.X), validation.y)[0, 1])
        if not report(epoch, r):
            break  # pruned: hpo records the trial as PRUNED
    return model
