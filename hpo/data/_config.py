"""The data a space file names, as typed settings: the `data` section and k-fold cross-validation.

They live here, not in hpo.space, so that data sits below the space file: hpo.space re-exports them
for the file it parses, and hpo.data reads them without importing the space (or the models it checks).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

# `\Z`, not `$`, which would let "v0.1.0\n" through; `[0-9]`, not `\d`, which takes any script's digits.
VERSION_RE = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+\Z")


class _Model(BaseModel):
    # The same settings as the space file's models (hpo.space._params._Model): unknown keys refused, values frozen.
    model_config = ConfigDict(extra="forbid", frozen=True)


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
        if not VERSION_RE.fullmatch(v):
            raise ValueError(f"must look like vMAJOR.MINOR.PATCH (e.g. v0.1.0), but got {v!r}")
        return v

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        problems = data_rules(isinstance(self.source, SplitFiles), self.split is not None, self.target, self.drop)
        if problems:
            raise ValueError("\n".join(problems))
        return self


def data_rules(three_files: bool, has_split: bool, target: Any, drop: Any) -> list[str]:
    """The rules across keys of `data`, each a sentence starting with its key.

    Plain values, not the model: a file whose other keys break a rule is checked against these too,
    so that every problem is reported at once."""
    problems = []
    if three_files and has_split:
        problems.append("`split` must be omitted when `source` names three files")
    if not three_files and not has_split:
        problems.append(
            "`split` is required for a single-table source: {validation: 0.2, test: 0.2, seed: 0} or {column: <name>}"
        )
    if isinstance(target, str) and isinstance(drop, list) and target in drop:
        problems.append(f"`drop` must not contain the target {target!r}")
    return problems


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
