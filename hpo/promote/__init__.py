"""Promotion: re-train a trial, prove that it reproduces, and record it in the data-version space.

A promoted run is the only kind of run the data-version space holds. It carries everything a
re-training needs (the :class:`Recipe`: model, metric, data section, split digests, parameters
and seed) in its tags and params, so :func:`reproduce` can re-train it from the run alone.

- :mod:`._promote`: ``hpo promote``; :mod:`._reproduce`: ``hpo reproduce``;
- :mod:`._recipe`: the recipe and its param encoding; :mod:`._checks`: what is checked first;
- :mod:`._writer`: what the promoted run holds; :mod:`._models`: its model packed for logging, and the
  logged model's prediction check; :mod:`._code`: what a pickled model needs to load elsewhere;
- :mod:`._degenerate`: whether the model learnt anything (one class, one value, the metric at its worst);
- :mod:`._lock`: one promotion of a trial at a time.

What talks to MLflow is in :mod:`hpo.tracking`: the run's transaction (``_promoted``), the models'
logging (``_models``), the Model Registry and the leaderboard (``_registry``), the runs looked up (``_runs``).
"""

from hpo.promote._checks import DEFAULT_ALIAS, DEFAULT_TOLERANCE, Check, PromoteOptions, PromotionInterrupted, ReproductionError
from hpo.promote._degenerate import DegenerateModel, degenerate
from hpo.promote._models import PackedModel, check_predictions, packed
from hpo.promote._promote import PromoteResult, promote
from hpo.promote._recipe import Recipe, decode_param, encode_param
from hpo.promote._reproduce import ReproduceResult, promoted_run_id, reproduce

# Promotion's MLflow half lives in hpo.tracking; its public names stay importable from here.
from hpo.tracking._models import NATIVE_NAME, NATIVE_NAMES, PYFUNC_NAME, LoggedModels, PredictionCheck, log_models
from hpo.tracking._registry import post_leaderboard, register_model
from hpo.tracking._runs import find_promoted

__all__ = [
    "DEFAULT_ALIAS",
    "DEFAULT_TOLERANCE",
    "NATIVE_NAME",
    "NATIVE_NAMES",
    "PYFUNC_NAME",
    "Check",
    "DegenerateModel",
    "LoggedModels",
    "PackedModel",
    "PredictionCheck",
    "PromoteOptions",
    "PromoteResult",
    "PromotionInterrupted",
    "Recipe",
    "ReproduceResult",
    "ReproductionError",
    "check_predictions",
    "decode_param",
    "degenerate",
    "encode_param",
    "find_promoted",
    "promoted_run_id",
    "log_models",
    "packed",
    "post_leaderboard",
    "promote",
    "register_model",
    "reproduce",
]
