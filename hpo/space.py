"""The search-space file: typed models, loading, validation and the JSON Schema.

A space file is parsed into :class:`SpaceFile` as soon as it is read; nothing past this module
sees a raw dict. Every problem in a file is reported at once, one line each, naming the file,
the key path and the rule.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from hpo.errors import SpaceError
from hpo.metrics import METRICS

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSION_RE = re.compile(r"^v\d+\.\d+\.\d+$")

# Keys that change the budget but not what a trial computes: a study may be resumed with new ones.
BUDGET_KEYS = frozenset({"n_trials", "timeout"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- parameters -------------------------------------------------------------------------------


class IntParam(_Model):
    """An integer parameter sampled from [low, high]."""

    type: Literal["int"]
    low: int
    high: int
    step: int = 1
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.step if self.step != 1 else None)
        if self.step < 1:
            raise ValueError(f"`step` must be >= 1, but got step={self.step}")
        return self


class FloatParam(_Model):
    """A float parameter sampled from [low, high]; ``log`` samples on a log scale."""

    type: Literal["float"]
    low: float
    high: float
    step: float | None = None
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"`low` and `high` must be finite, but got low={self.low}, high={self.high}")
        _check_range(self.low, self.high, self.log, self.step)
        if self.step is not None and self.step <= 0:
            raise ValueError(f"`step` must be > 0, but got step={self.step}")
        return self


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"`low` must be <= `high`, but got low={low}, high={high}")
    if log and low <= 0:
        raise ValueError(f"`low` must be > 0 when `log` is true, but got low={low}")
    if log and step is not None:
        raise ValueError("`step` and `log: true` cannot be combined")


Choice = Union[bool, int, float, str, None]


class CategoricalParam(_Model):
    """A parameter chosen from a list of values."""

    type: Literal["categorical"]
    choices: list[Choice]

    @field_validator("choices")
    @classmethod
    def _check_choices(cls, choices: list[Choice]) -> list[Choice]:
        if not choices:
            raise ValueError("`choices` must list at least one value, but got []")
        seen: list[Choice] = []
        for c in choices:
            if c in seen:
                raise ValueError(f"`choices` must not repeat a value, but {c!r} appears twice")
            seen.append(c)
        return choices


Param = Annotated[Union[IntParam, FloatParam, CategoricalParam], Field(discriminator="type")]


# --- samplers and pruners: one model per variant, keyed by `name` ------------------------------


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


# --- data -------------------------------------------------------------------------------------


class RatioSplit(_Model):
    """Split one table by ratios: a seeded shuffle of row positions (stratified for classes)."""

    validation: float = Field(gt=0, lt=1)
    test: float = Field(gt=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> RatioSplit:
        if self.validation + self.test >= 1:
            raise ValueError(
                f"`validation` + `test` must be < 1 to leave rows for training, but got {self.validation} + {self.test}"
            )
        return self


class ColumnSplit(_Model):
    """Split one table by a column whose values name the split of each row."""

    column: str
    train: str = "train"
    validation: str = "validation"
    test: str = "test"


class SplitFiles(_Model):
    """One file per split."""

    train: str
    validation: str
    test: str


def _source_kind(v: Any) -> str:
    return "files" if isinstance(v, (dict, SplitFiles)) else "path"


def _split_kind(v: Any) -> str:
    if isinstance(v, ColumnSplit) or (isinstance(v, dict) and "column" in v):
        return "column"
    return "ratio"


class DataConfig(_Model):
    version: str
    source: Annotated[
        Union[Annotated[str, Tag("path")], Annotated[SplitFiles, Tag("files")]],
        Discriminator(_source_kind),
    ]
    target: str = "target"
    split: (
        Annotated[
            Union[Annotated[RatioSplit, Tag("ratio")], Annotated[ColumnSplit, Tag("column")]],
            Discriminator(_split_kind),
        ]
        | None
    ) = None
    drop: list[str] = Field(default_factory=list)

    @field_validator("version")
    @classmethod
    def _check_version(cls, v: str) -> str:
        if not _VERSION_RE.match(v):
            raise ValueError(f"must look like vMAJOR.MINOR.PATCH (e.g. v0.1.0), but got {v!r}")
        return v

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        three_files = isinstance(self.source, SplitFiles)
        if three_files and self.split is not None:
            raise ValueError("`split` must be omitted when `source` names three files")
        if not three_files and self.split is None:
            raise ValueError(
                "`split` is required for a single-table source: {validation: 0.2, test: 0.2, seed: 0} or {column: <name>}"
            )
        if self.target in self.drop:
            raise ValueError(f"`drop` must not contain the target {self.target!r}")
        return self


class DerivedFrom(_Model):
    """Lineage: the study and analysis a space was derived from."""

    study: str
    at: str | None = None
    storage: str | None = None
    reasons: list[str] = Field(default_factory=list)
    warm_start: bool = False


# --- the file ---------------------------------------------------------------------------------


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
    seed: int = Field(0, ge=0)
    sampler: SamplerConfig = Field(default_factory=lambda: TPESamplerConfig(name="tpe"))
    pruner: PrunerConfig = Field(default_factory=lambda: MedianPrunerConfig(name="median"))
    params: dict[str, Param]
    fixed: dict[str, Any] = Field(default_factory=dict)
    derived_from: DerivedFrom | None = None

    @field_validator("study")
    @classmethod
    def _check_study(cls, v: str) -> str:
        if not _NAME_RE.match(v):
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
        from hpo.models import MODELS

        if v not in MODELS:
            raise ValueError(f"must be one of {', '.join(MODELS)}, but got {v!r}")
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


# --- loading ----------------------------------------------------------------------------------


class LoadedSpace(BaseModel):
    """A validated space with the text it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    text: str
    space: SpaceFile

    @property
    def text_sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_space(path: str | Path) -> LoadedSpace:
    """Read and validate a space file; raise :class:`SpaceError` listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    return LoadedSpace(path=path, text=text, space=parse_space(text, str(path)))


def parse_space(text: str, source: str = "<string>") -> SpaceFile:
    """Validate the YAML text of a space file; ``source`` names it in messages."""
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark, ctx = e.problem_mark, e.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        context = f" ({e.context} at line {ctx.line + 1})" if ctx and e.context else ""
        raise SpaceError(f"{source}: invalid YAML{where}: {e.problem}{context}") from None
    except yaml.YAMLError as e:
        raise SpaceError(f"{source}: invalid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise SpaceError(f"{source}: must be a YAML mapping of keys (study, data, params, ...)")
    try:
        return SpaceFile.model_validate(raw)
    except ValidationError as e:
        raise SpaceError("\n".join(_describe(err, source) for err in e.errors())) from None


def _describe(err: Any, source: str) -> str:
    """One line for one pydantic error: file, key path, rule, value."""
    kind = err["type"]
    inp = err.get("input")
    key = ".".join(_strip_tags(err["loc"]))
    if kind == "union_tag_invalid":
        tag = err["ctx"]["discriminator"].strip("'")
        expected = err["ctx"]["expected_tags"].replace("'", "")
        got = inp.get(tag) if isinstance(inp, dict) else inp
        return f"{source}: `{key}.{tag}` must be one of {expected}, but got {got!r}"
    if kind == "union_tag_not_found":
        tag = err["ctx"]["discriminator"].strip("'")
        return f"{source}: `{key}` needs a `{tag}` key"
    if kind == "extra_forbidden":
        return f"{source}: `{key}` is not a known key (see `hpo schema`)"
    if kind == "missing":
        return f"{source}: `{key}` is required"
    msg = err["msg"].removeprefix("Value error, ")
    if kind.startswith(("greater_than", "less_than")) or kind.endswith(("_type", "_parsing")):
        msg = f"{msg}, but got {inp!r}"
    last = f"`{loc[-1]}`" if (loc := _strip_tags(err["loc"])) else ""
    if last and msg.startswith(last):
        return f"{source}: `{key}`{msg[len(last) :]}"
    if key and msg.startswith("`"):
        # A model's own rule names its field: `low` at params.depth reads `params.depth.low`.
        return f"{source}: `{key}.{msg[1:]}"
    return f"{source}: `{key}` {msg}" if key else f"{source}: {msg}"


# Fields holding a tagged union: pydantic puts the variant's tag after them in an error's path
# (`params.depth.int.low`, `data.split.ratio.test`); a user never wrote that tag, so drop it.
_UNION_FIELDS = {("sampler",), ("pruner",), ("data", "source"), ("data", "split")}


def _strip_tags(loc: tuple[Any, ...]) -> list[str]:
    out: list[str] = []
    skip = False
    for part in loc:
        if skip:
            skip = False
            continue
        out.append(str(part))
        here = tuple(out)
        skip = here in _UNION_FIELDS or (len(here) == 2 and here[0] == "params")
    return out


def schema() -> dict[str, Any]:
    """The JSON Schema of a space file, for editors."""
    return SpaceFile.model_json_schema()
