"""What promotion checks before it writes: options (:class:`PromoteOptions`), the source tree and the
study's source version, the model's code; and a re-trained metric against its record."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hpo.errors import HpoError, option
from hpo.provenance import UNKNOWN, SourceVersion, source_version
from hpo.schema import StudyRecord
from hpo.tracking._runs import alias_problem, registry_name_problem
from hpo.workspace import Workspace

# CatBoost with a fixed seed is deterministic (also across thread counts); the tolerance only
# absorbs floating-point noise between machines.
DEFAULT_TOLERANCE = 1e-6
DEFAULT_ALIAS = "champion"


class ReproductionError(HpoError):
    """A re-training did not give the recorded value: the record is not what produced it."""

    exit_code = 1


class PromotionInterrupted(HpoError):
    """Ctrl-C while the promoted run was being logged: what was written is deleted again."""

    exit_code = 130  # as for any process that a SIGINT ended


@dataclass(frozen=True)
class Check:
    """A re-trained metric against its record."""

    name: str
    recorded: float
    reproduced: float
    tolerance: float

    @property
    def diff(self) -> float:
        return abs(self.reproduced - self.recorded)

    @property
    def ok(self) -> bool:
        if math.isnan(self.recorded) and math.isnan(self.reproduced):
            return True
        return self.diff <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.name,
            "recorded": self.recorded,
            "reproduced": self.reproduced,
            "abs_diff": self.diff,
            "ok": self.ok,
        }


@dataclass(frozen=True)
class PromoteOptions:
    """How :func:`hpo.promote.promote` promotes: the choices its caller made, checked before anything else."""

    tolerance: float = DEFAULT_TOLERANCE
    allow_dirty: bool = False
    again: bool = False
    register: str | None = None
    alias: str = DEFAULT_ALIAS
    leaderboard: bool = False
    allow_degenerate: bool = False

    def check(self) -> PromoteOptions:
        """These options, or the first one that breaks its rule as an ``HpoError``."""
        if not (self.tolerance >= 0 and math.isfinite(self.tolerance)):
            raise HpoError(f"{option('tolerance')} must be a finite number >= 0, but got {self.tolerance}")
        if self.register is None:
            return self
        for name, value, problem in (
            ("register", self.register, registry_name_problem),
            ("alias", self.alias, alias_problem),
        ):
            why = problem(value)
            if why is not None:
                raise HpoError(f"{option(name)} {value!r}: {why}")
        return self


def _check_source(ws: Workspace, allow_dirty: bool) -> SourceVersion:
    src = source_version(ws.root)
    if allow_dirty:
        return src
    if src.dirty is None:
        raise HpoError(
            f"{ws.root} is not inside a git repository, so the promoted run's src_version would be unknown; "
            f"commit the code to git (and tag it), or pass {option('allow_dirty')} to promote anyway (the run is then tagged so)"
        )
    if src.dirty:
        raise HpoError(
            f"{ws.root}: the git tree has uncommitted changes to tracked files (see `git status`), so src_version "
            f"{src.src_version} does not name the code; commit (and tag) them, or pass {option('allow_dirty')} "
            "(the run is then tagged so)"
        )
    return src


def source_differs(study: StudyRecord, src: SourceVersion) -> str | None:
    """Why the code here may not be the code the study ran (a sentence), or None when it is.

    The model is re-trained by the workspace's code: with another commit, the promoted model is
    what that code makes of the trial's parameters, which the check against the trial's value
    catches only where the code changed the result.
    """
    commit, here = study.commit or UNKNOWN, src.commit
    ran = f"the study ran at {study.src_version or UNKNOWN} (commit {commit[:12]})"
    if commit == UNKNOWN and here == UNKNOWN:
        return None  # nothing to compare: the tree state is said (and tagged) as outside git already
    if commit == UNKNOWN:
        return (
            f"the study records no source commit (it ran outside git), so the code here ({src.src_version}) "
            "cannot be matched to it"
        )
    if here == UNKNOWN:
        return f"{ran}, but this workspace is not in git, so its code cannot be matched to the study's"
    if commit != here:
        return f"{ran}; this workspace is at {src.src_version} (commit {here[:12]}): the model is re-trained by the code here"
    if study.dirty:
        return f"{ran} with uncommitted changes, so the code here may differ from what it ran"
    return None


def _check_model_code(ws: Workspace, model: str, what: str) -> None:
    """The study's model can be imported here: its module from the workspace, or its package installed."""
    from hpo.models import ModelImportError, model_spec
    from hpo.workspace import on_import_path

    on_import_path(ws.root)
    try:
        model_spec(model)
    except ModelImportError as e:
        raise HpoError(
            f"{what}: its model {model} cannot be loaded here: {e}; the workspace must hold the code the study ran"
        ) from None
