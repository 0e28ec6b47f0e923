"""Models: what a trial trains, one module per family behind one interface (:class:`ModelSpec`).

- :mod:`._interface`: the interface a family implements (its ``fit`` and parameter rules);
- :mod:`._catboost`: CatBoost, the built-in family;
- :mod:`._sklearn`: any scikit-learn estimator class, named by its import path;
- :mod:`._inputs`: the encoding an estimator needs (text, missing values), read off its input tags;
- :mod:`._entry`: the team's own training function, named ``module:function``;
- :mod:`._registry`: ``MODELS``, name -> family, and the check of a space's parameters;
- :mod:`._fit`: one training and its scores, for any family (trials, promotion, reproduction);
- :mod:`._cv`: cross-validated training (one fit per fold) and the final model of such a trial.
"""

from hpo.models._cv import CVResult, cross_validate, fit_final
from hpo.models._entry import is_entry_point
from hpo.models._fit import FitResult, evaluate, predict, score, train, trial_seed
from hpo.models._inputs import InputPlan, ModelInputError
from hpo.models._interface import REPORTS_PER_FIT, Fitted, ModelSpec, Reporter
from hpo.models._registry import MODELS, check_model_params, model_spec
from hpo.models._sklearn import ModelImportError, estimator_inputs, estimator_kind, is_class_path

__all__ = [
    "MODELS",
    "ModelImportError",
    "ModelInputError",
    "InputPlan",
    "REPORTS_PER_FIT",
    "CVResult",
    "FitResult",
    "Fitted",
    "ModelSpec",
    "Reporter",
    "check_model_params",
    "cross_validate",
    "fit_final",
    "estimator_inputs",
    "estimator_kind",
    "is_class_path",
    "is_entry_point",
    "model_spec",
    "evaluate",
    "predict",
    "score",
    "train",
    "trial_seed",
]
