"""The `data` section: version, source, target, split and dropped columns."""

from __future__ import annotations

import re
from typing import Annotated, Any, Union

from pydantic import (
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from hpo.space._params import _Model

# `\Z`, not `$`, which would let "v0.1.0\n" through; `[0-9]`, not `\d`, which takes any script's digits.
_VERSION_RE = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+\Z")


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
        if not _VERSION_RE.fullmatch(v):
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
