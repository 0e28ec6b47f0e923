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

from hpo.data import CVConfig, DataConfig
from hpo.metrics import METRICS
from hpo.models import MODELS, is_class_path, is_entry_point
from hpo.space._grid import GRID_MAX_POINTS, GridOrder, GridPoints
from hpo.space._keys import key_refusal
from hpo.space._params import FloatParam, Param, _Model
from hpo.space._strategies import GridSamplerConfig, MedianPrunerConfig, PrunerConfig, SamplerConfig, TPESamplerConfig
from hpo.space._suggest import did_you_mean

# `\Z`, not `$`: `$` also matches before a trailing newline, and `study: "nl\n"` would pass.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")

# Keys that change the budget but not what a trial computes: a study may be resumed with new ones.
BUDGET_KEYS = frozenset({"n_trials", "timeout"})
# Keys the search hash leaves out besides the budget: lineage, and what MLflow is shown of a trial.
NOT_HASHED = frozenset({"derived_from", "tracking"})

HISTORY_POINTS = 20  # `history: sampled` keeps at most this many steps of a trial's per-iteration history


class TrackingConfig(_Model):
    """What a trial's MLflow run holds beyond its params, metrics and tags."""

    history: Literal["all", "sampled", "none"] = Field(
        "sampled",
        description=(
            f"the per-iteration validation history `val_<metric>_by_iteration`: every step, at most {HISTORY_POINTS} "
            "evenly spaced steps (always the first, the best and the last), or none"
        ),
    )


class DerivedFrom(_Model):
    """Lineage: the study and analysis a space was derived from."""

    study: str
    at: str | None = None
    storage: str | None = None
    reasons: list[str] = Field(default_factory=list)
    warm_start: bool = False


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
    tracking: TrackingConfig = Field(default_factory=lambda: TrackingConfig.model_validate({}))

    @field_validator("study")
    @classmethod
    def _check_study(cls, v: str) -> str:
        if not NAME_RE.fullmatch(v):
            raise ValueError(f"must start with a letter or digit and hold only letters, digits, '.', '_', '-', but got {v!r}")
        return v

    @field_validator("metric")
    @classmethod
    def _check_metric(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"must be one of {', '.join(METRICS)}, but got {v!r}{did_you_mean(v, METRICS)}")
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
        _check_keys(v)
        return v

    @field_validator("fixed")
    @classmethod
    def _check_fixed(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_keys(v)
        return v

    @model_validator(mode="after")
    def _check(self) -> SpaceFile:
        problems = space_rules(
            budget=self.n_trials is not None or self.timeout is not None,
            sampler=self.sampler.name,
            params=list(self.params),
            fixed=list(self.fixed),
            task=self.task,
            metric=self.metric,
            warmup=getattr(self.pruner, "n_warmup_steps", 0),
            fits=None if self.cv is None else self.cv.fits,
        )
        if problems:
            raise ValueError("\n".join(problems))
        if isinstance(self.sampler, GridSamplerConfig):
            for name, p in self.params.items():
                if isinstance(p, FloatParam) and p.step is None:
                    raise ValueError(f"sampler `grid` needs `step` on float param `params.{name}`")
            points = GridPoints(self.params)
            if points.size > GRID_MAX_POINTS:
                counts = ", ".join(f"params.{k}: {_count(n)}" for k, n in sorted(points.counts().items(), key=lambda kv: -kv[1]))
                raise ValueError(
                    f"sampler `grid` would enumerate {_count(points.size)} points ({counts}), more than the "
                    f"{GRID_MAX_POINTS:.0e} hpo allows; use a larger `step` or fewer `choices`, or a sampler "
                    "that samples the ranges (tpe, random, qmc)"
                )
        return self

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        return METRICS[self.metric].direction

    def search_hash(self) -> str:
        """Hash of everything that decides what a trial computes (not the budget, lineage, tracking or comments)."""
        body = self.model_dump(mode="json", exclude=set(BUDGET_KEYS | NOT_HASHED))
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def grid(self) -> GridPoints:
        """All combinations of the parameter values, for the grid sampler (a sequence; each point built when read)."""
        return GridPoints(self.params)

    def grid_size(self) -> int:
        """The number of grid points: the product of each parameter's number of values (nothing is built)."""
        return GridPoints(self.params).size

    def grid_order(self) -> GridOrder:
        """The grid in run order, shuffled by ``seed``: slot ``k`` of the budget runs ``grid_order()[k]``."""
        return GridOrder(GridPoints(self.params), self.seed)


def space_rules(
    budget: bool, sampler: Any, params: list[Any], fixed: list[Any], task: Any, metric: Any, warmup: Any, fits: Any
) -> list[str]:
    """The rules across the top-level keys of a space file, each a sentence naming its keys.

    Plain values, not the model: a file whose other keys break a rule is checked against these too
    (a value that is itself wrong is given as ``None`` and its rules skipped), so that every
    problem is reported at once."""
    problems = []
    if not budget and sampler != "grid":
        problems.append("set `n_trials`, `timeout` or both, so that a run ends")
    both = sorted(set(map(str, params)) & set(map(str, fixed)))
    if both:
        problems.append(f"{both[0]!r} is in both `params` and `fixed`; keep it in one")
    if task is not None and metric in METRICS and METRICS[metric].task != task:
        problems.append(f"`metric` {metric!r} is a {METRICS[metric].task} metric, but `task` is {task!r}")
    if isinstance(fits, int) and isinstance(warmup, int) and warmup >= fits:
        problems.append(
            f"`pruner.n_warmup_steps` is {warmup}, but with `cv` a pruner's step is a fold and there are "
            f"{fits}; it would never prune (set it below {fits}, e.g. 1, or `pruner: {{name: none}}`)"
        )
    return problems


def _check_keys(names: dict[str, Any]) -> None:
    for name in names:
        why = key_refusal(str(name))
        if why is not None:
            raise ValueError(f"`{name}` {why}")


def _count(n: int) -> str:
    if n < 10**7:
        return str(n)
    return f"{n:.1e}" if n < 10**300 else f"about 1e{int(n.bit_length() * math.log10(2))}"
