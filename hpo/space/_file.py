"""The space file as a whole: its keys, cross-key rules, search hash and grid."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from hpo.metrics import METRICS
from hpo.models import MODELS, is_class_path, is_entry_point
from hpo.space._data import DataConfig
from hpo.space._params import CategoricalParam, FloatParam, IntParam, Param, _Model
from hpo.space._strategies import GridSamplerConfig, MedianPrunerConfig, PrunerConfig, SamplerConfig, TPESamplerConfig

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# Keys that change the budget but not what a trial computes: a study may be resumed with new ones.
BUDGET_KEYS = frozenset({"n_trials", "timeout"})


class DerivedFrom(_Model):
    """Lineage: the study and analysis a space was derived from."""

    study: str
    at: str | None = None
    storage: str | None = None
    reasons: list[str] = Field(default_factory=list)
    warm_start: bool = False


class CVConfig(_Model):
    """k-fold cross-validation over train and validation merged (stratified for classification).

    Every trial sees the same folds (they depend on ``seed``, not on the trial), so trials are
    compared fold for fold; the test split is never part of a fold.
    """

    folds: int = Field(ge=2, description="folds per repeat; at most the rows of train + validation")
    repeats: int = Field(1, ge=1, le=100, description="times the folds are drawn again, each time shuffled anew")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="the shuffle of the rows into folds")

    @property
    def fits(self) -> int:
        return self.folds * self.repeats


class SpaceFile(_Model):
    """A search-space file (see README, "Space file")."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"title": "hpo search space"})

    study: str
    data: DataConfig
    model: str = "catboost"
    task: Literal["regression", "classification"] | None = None
    metric: str
    n_trials: int | None = Field(None, gt=0)
    timeout: float | None = Field(None, gt=0, description="seconds for one `hpo run`")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="numpy and Optuna's samplers take seeds below 2**32")
    sampler: SamplerConfig = Field(default_factory=lambda: TPESamplerConfig.model_validate({"name": "tpe"}))
    pruner: PrunerConfig = Field(default_factory=lambda: MedianPrunerConfig.model_validate({"name": "median"}))
    params: dict[str, Param]
    fixed: dict[str, Any] = Field(default_factory=dict)
    cv: CVConfig | None = None
    derived_from: DerivedFrom | None = None

    @field_validator("study")
    @classmethod
    def _check_study(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"must start with a letter or digit and hold only letters, digits, '.', '_', '-', but got {v!r}")
        return v

    @field_validator("metric")
    @classmethod
    def _check_metric(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"must be one of {', '.join(METRICS)}, but got {v!r}")
        return v

    @field_validator("model")
    @classmethod
    def _check_model(cls, v: str) -> str:
        if v not in MODELS and not is_class_path(v) and not is_entry_point(v):
            raise ValueError(
                f"must be one of {', '.join(MODELS)}, an estimator class's import path "
                f"(e.g. sklearn.ensemble.HistGradientBoostingRegressor) or module:function (e.g. train:fit), but got {v!r}"
            )
        return v

    @field_validator("params")
    @classmethod
    def _check_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("must define at least one parameter to tune")
        return v

    @model_validator(mode="after")
    def _check(self) -> SpaceFile:
        if self.n_trials is None and self.timeout is None and not isinstance(self.sampler, GridSamplerConfig):
            raise ValueError("set `n_trials`, `timeout` or both, so that a run ends")
        both = sorted(set(self.params) & set(self.fixed))
        if both:
            raise ValueError(f"{both[0]!r} is in both `params` and `fixed`; keep it in one")
        if self.task is not None and METRICS[self.metric].task != self.task:
            raise ValueError(f"`metric` {self.metric!r} is a {METRICS[self.metric].task} metric, but `task` is {self.task!r}")
        warmup = getattr(self.pruner, "n_warmup_steps", 0)
        if self.cv is not None and warmup >= self.cv.fits:
            raise ValueError(
                f"`pruner.n_warmup_steps` is {warmup}, but with `cv` a pruner's step is a fold and there are "
                f"{self.cv.fits}; it would never prune (set it below {self.cv.fits}, e.g. 1, or `pruner: {{name: none}}`)"
            )
        if isinstance(self.sampler, GridSamplerConfig):
            for name, p in self.params.items():
                if isinstance(p, FloatParam) and p.step is None:
                    raise ValueError(f"sampler `grid` needs `step` on float param `params.{name}`")
        return self

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        return METRICS[self.metric].direction

    def search_hash(self) -> str:
        """Hash of everything that decides what a trial computes (not the budget, not comments)."""
        body = self.model_dump(mode="json", exclude=set(BUDGET_KEYS) | {"derived_from"})
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def grid(self) -> list[dict[str, Any]]:
        """All combinations of the parameter values, for the grid sampler."""
        import itertools

        axes = {name: _grid_values(p) for name, p in self.params.items()}
        return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]

    def grid_size(self) -> int:
        return math.prod(len(_grid_values(p)) for p in self.params.values())


def _grid_values(p: IntParam | FloatParam | CategoricalParam) -> list[Any]:
    if isinstance(p, CategoricalParam):
        return list(p.choices)
    if isinstance(p, IntParam):
        return list(range(p.low, p.high + 1, p.step))
    assert p.step is not None
    n = int(math.floor((p.high - p.low) / p.step + 1e-9)) + 1
    return [round(p.low + i * p.step, 12) for i in range(n)]
