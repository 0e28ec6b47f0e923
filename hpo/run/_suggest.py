"""Ask an Optuna trial for every parameter of a space."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpo.space import CategoricalParam, FloatParam, IntParam

if TYPE_CHECKING:
    import optuna


def suggest(trial: optuna.Trial, params: dict[str, IntParam | FloatParam | CategoricalParam]) -> dict[str, Any]:
    """Ask the trial for every parameter of the space."""
    out: dict[str, Any] = {}
    for name, p in params.items():
        if isinstance(p, IntParam):
            out[name] = trial.suggest_int(name, p.low, p.high, step=p.step, log=p.log)
        elif isinstance(p, FloatParam):
            out[name] = trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)
        else:
            out[name] = trial.suggest_categorical(name, p.choices)
    return out
