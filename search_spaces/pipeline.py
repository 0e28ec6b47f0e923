"""Example factory for ``model: search_spaces.pipeline:fit`` (the study in ``breast-cancer-pipeline.yaml``):
a scikit-learn pipeline whose parameters the space file names as ``step__param``.
"""

from __future__ import annotations

from typing import Any

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def fit(params: dict[str, Any], train: Any, seed: int) -> Pipeline:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    return pipeline.set_params(**params).fit(train.X, train.y)
