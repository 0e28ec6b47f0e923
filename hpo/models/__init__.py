"""Models: what a trial trains, one module per family behind one interface (:class:`ModelSpec`).

- :mod:`._interface`: the interface a family implements (its ``fit`` and parameter rules);
- :mod:`._catboost`: CatBoost, the built-in family;
- :mod:`._registry`: ``MODELS``, name -> family, and the check of a space's parameters;
- :mod:`._fit`: one training and its scores, for any family (trials, promotion, reproduction).
"""

from hpo.models._fit import FitResult, evaluate, predict, score, train, trial_seed
from hpo.models._interface import REPORTS_PER_FIT, Fitted, ModelSpec, Reporter
from hpo.models._registry import MODELS, check_model_params

__all__ = [
    "MODELS",
    "REPORTS_PER_FIT",
    "FitResult",
    "Fitted",
    "ModelSpec",
    "Reporter",
    "check_model_params",
    "evaluate",
    "predict",
    "score",
    "train",
    "trial_seed",
]
