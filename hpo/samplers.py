"""Sampler and pruner registries: space-file config in, Optuna object out.

Adding a sampler is one config model in ``hpo.space`` and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError
from hpo.space import (
    CmaEsSamplerConfig,
    GPSamplerConfig,
    GridSamplerConfig,
    HyperbandPrunerConfig,
    MedianPrunerConfig,
    NoPrunerConfig,
    QMCSamplerConfig,
    RandomSamplerConfig,
    SuccessiveHalvingPrunerConfig,
    TPESamplerConfig,
)

if TYPE_CHECKING:
    import optuna


def _tpe(c: TPESamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    # constant_liar keeps parallel workers from sampling the same point while trials run.
    return optuna.samplers.TPESampler(
        n_startup_trials=c.n_startup_trials, multivariate=c.multivariate, constant_liar=True, seed=seed
    )


def _random(c: RandomSamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _cmaes(c: CmaEsSamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.CmaEsSampler(n_startup_trials=c.n_startup_trials, seed=seed)


def _gp(c: GPSamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    try:
        import torch  # noqa: F401
    except ImportError:
        raise HpoError("sampler `gp` needs PyTorch: pip install 'hpo[gp]' (or choose tpe)") from None
    return optuna.samplers.GPSampler(n_startup_trials=c.n_startup_trials, seed=seed)


def _qmc(c: QMCSamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.QMCSampler(qmc_type=c.qmc_type, scramble=c.scramble, seed=seed)


def _grid(c: GridSamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    # hpo enqueues every grid point itself (see runner), so each trial arrives with its
    # parameters fixed; the sampler is never asked for a value.
    return optuna.samplers.RandomSampler(seed=seed)


SAMPLERS: dict[str, Callable[[Any, int], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": _random,
    "cmaes": _cmaes,
    "gp": _gp,
    "qmc": _qmc,
    "grid": _grid,
}


def _none(c: NoPrunerConfig, max_resource: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.NopPruner()


def _median(c: MedianPrunerConfig, max_resource: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=c.n_startup_trials, n_warmup_steps=c.n_warmup_steps)


def _hyperband(c: HyperbandPrunerConfig, max_resource: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.HyperbandPruner(
        min_resource=c.min_resource, max_resource=max_resource, reduction_factor=c.reduction_factor
    )


def _successive_halving(c: SuccessiveHalvingPrunerConfig, max_resource: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(min_resource=c.min_resource, reduction_factor=c.reduction_factor)


PRUNERS: dict[str, Callable[[Any, int], optuna.pruners.BasePruner]] = {
    "none": _none,
    "median": _median,
    "hyperband": _hyperband,
    "successive_halving": _successive_halving,
}


def make_sampler(
    config: Any, seed: int, source_trials: list[optuna.trial.FrozenTrial] | None = None
) -> optuna.samplers.BaseSampler:
    """``source_trials``: a parent study's trials, which warm-start a ``cmaes`` sampler (WS-CMA-ES)."""
    if source_trials and config.name == "cmaes":
        import warnings

        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.CmaEsSampler(n_startup_trials=config.n_startup_trials, seed=seed, source_trials=source_trials)
    return SAMPLERS[config.name](config, seed)


def make_pruner(config: Any, max_resource: int) -> optuna.pruners.BasePruner:
    """``max_resource`` is the number of boosting iterations of a full fit."""
    return PRUNERS[config.name](config, max_resource)
