"""Samplers and pruners: one model per variant, keyed by `name`."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import (
    Field,
)

from hpo.space._params import _Model


class TPESamplerConfig(_Model):
    name: Literal["tpe"]
    n_startup_trials: int = Field(10, ge=0)
    multivariate: bool = False


class RandomSamplerConfig(_Model):
    name: Literal["random"]


class CmaEsSamplerConfig(_Model):
    name: Literal["cmaes"]
    n_startup_trials: int = Field(1, ge=0)


class GPSamplerConfig(_Model):
    name: Literal["gp"]
    n_startup_trials: int = Field(10, ge=0)


class QMCSamplerConfig(_Model):
    name: Literal["qmc"]
    qmc_type: Literal["sobol", "halton"] = "sobol"
    scramble: bool = True


class GridSamplerConfig(_Model):
    """Every combination once, in an order shuffled by the study seed."""

    name: Literal["grid"]


SamplerConfig = Annotated[
    Union[
        TPESamplerConfig,
        RandomSamplerConfig,
        CmaEsSamplerConfig,
        GPSamplerConfig,
        QMCSamplerConfig,
        GridSamplerConfig,
    ],
    Field(discriminator="name"),
]


class NoPrunerConfig(_Model):
    name: Literal["none"]


class MedianPrunerConfig(_Model):
    name: Literal["median"]
    n_startup_trials: int = Field(5, ge=0)
    n_warmup_steps: int = Field(0, ge=0)


class HyperbandPrunerConfig(_Model):
    name: Literal["hyperband"]
    min_resource: int = Field(1, ge=1)
    reduction_factor: int = Field(3, ge=2)


class SuccessiveHalvingPrunerConfig(_Model):
    name: Literal["successive_halving"]
    min_resource: int = Field(1, ge=1)
    reduction_factor: int = Field(4, ge=2)


PrunerConfig = Annotated[
    Union[NoPrunerConfig, MedianPrunerConfig, HyperbandPrunerConfig, SuccessiveHalvingPrunerConfig],
    Field(discriminator="name"),
]
