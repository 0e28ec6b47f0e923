"""Promotion: re-train a trial, prove that it reproduces, and record it in the data-version space.

A promoted run is the only kind of run the data-version space holds. It carries everything a
re-training needs (the :class:`Recipe`: model, metric, data section, split digests, parameters
and seed) in its tags and params, so :func:`reproduce` can re-train it from the run alone.

- :mod:`._promote`: ``hpo promote``; :mod:`._reproduce`: ``hpo reproduce``;
- :mod:`._recipe`: the recipe and its param encoding; :mod:`._checks`: what is checked first;
- :mod:`._writer`: the promoted run; :mod:`._models`: its models (the raw-rows pyfunc and the model's own
  flavor) and their prediction check; :mod:`._code`: what a pickled model needs to load elsewhere;
- :mod:`._degenerate`: whether the model learnt anything (one class, one value, the metric at its worst);
- :mod:`._registry`: the Model Registry and the leaderboard; :mod:`._lock`: one promotion of a trial at a time.
"""

from hpo.promote._checks import DEFAULT_ALIAS, DEFAULT_TOLERANCE, Check, PromotionInterrupted, ReproductionError
from hpo.promote._degenerate import DegenerateModel, degenerate
from hpo.promote._models import (
    NATIVE_NAME,
    NATIVE_NAMES,
    PYFUNC_NAME,
    LoggedModels,
    PackedModel,
    PredictionCheck,
    check_predictions,
    log_models,
    packed,
)
from hpo.promote._promote import PromoteResult, find_promoted, promote
from hpo.promote._recipe import Recipe, decode_param, encode_param
from hpo.promote._registry import post_leaderboard, register_model
from hpo.promote._reproduce import ReproduceResult, promoted_run_id, reproduce

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
