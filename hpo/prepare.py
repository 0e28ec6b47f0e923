"""Everything that can be checked before a run writes anything: the space, the model, the data.

``hpo validate`` stops here; ``hpo run`` continues only when this passes, so bad input never
leaves a half-written study or tracking store behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hpo.data import DataVersion, check_folds, folds, load_data
from hpo.errors import HpoError, SpaceError
from hpo.metrics import METRICS
from hpo.models import (
    ModelImportError,
    ModelInputError,
    check_model_params,
    estimator_inputs,
    estimator_kind,
    is_class_path,
    model_spec,
)
from hpo.space import GridSamplerConfig, LoadedSpace, SpaceFile, load_space
from hpo.workspace import Workspace, load_workspace, on_import_path, relative_path


@dataclass(frozen=True)
class Prepared:
    """A validated space with its data loaded: ready to run."""

    workspace: Workspace
    loaded: LoadedSpace
    data: DataVersion
    folds: Sequence[DataVersion] | None = None  # with `cv`: the folds every trial is scored on

    @property
    def space(self) -> SpaceFile:
        return self.loaded.space

    @property
    def where(self) -> str:
        return str(self.loaded.path)

    @property
    def budget(self) -> int | None:
        """Trials in the whole study: ``n_trials``, or the grid size for a grid without one."""
        s = self.space
        if isinstance(s.sampler, GridSamplerConfig):
            return s.n_trials or s.grid_size()
        return s.n_trials

    @property
    def max_iterations(self) -> int:
        """The pruners' resource: a fit's iterations, or with ``cv`` its folds."""
        if self.space.cv is not None:
            return self.space.cv.fits
        p = self.space.params.get("iterations")
        if p is not None and hasattr(p, "high"):
            return int(p.high)
        return int(self.space.fixed.get("iterations", model_spec(self.space.model).default_iterations))


def prepare(space_path: str | Path, workspace: Workspace | None = None) -> Prepared:
    """Load and check a space file and its data; raise an ``HpoError`` naming every problem."""
    ws = workspace or load_workspace()
    return prepare_loaded(load_space(space_path, workspace=ws), ws)


def prepare_loaded(loaded: LoadedSpace, ws: Workspace) -> Prepared:
    """:func:`prepare` for a space already read (worker processes get it this way)."""
    space, where = loaded.space, str(loaded.path)
    ws.check_templates()

    on_import_path(ws.root)
    try:
        problems = check_model_params(space.model, dict(space.params), space.fixed)
    except ModelImportError as e:
        raise SpaceError(f"{where}: `model` {e}") from None
    if isinstance(space.sampler, GridSamplerConfig) and space.n_trials and space.n_trials > space.grid_size():
        problems.append(f"`n_trials` must be <= the grid size {space.grid_size()} for sampler `grid`, but got {space.n_trials}")
    if problems:
        raise SpaceError("\n".join(f"{where}: {p}" for p in problems))

    data = load_data(space.data, task=space.task, base=ws.root, where=where, cv=space.cv is not None, metric=space.metric)
    metric = METRICS[space.metric]
    if metric.task != data.task:
        how = "" if space.task else " (inferred from the target; state `task` to override)"
        raise SpaceError(
            f"{where}: `metric` {space.metric!r} is a {metric.task} metric, but the target "
            f"{space.data.target!r} is {data.task}{how}"
        )
    if is_class_path(space.model) and estimator_kind(space.model) != data.task:
        raise SpaceError(
            f"{where}: `model` {space.model} is a {estimator_kind(space.model)} estimator, but the target "
            f"{space.data.target!r} is {data.task}"
        )
    if is_class_path(space.model):
        try:  # an estimator that cannot take the features, even encoded, is refused before any trial
            estimator_inputs(space.model, data, space.fixed)
        except ModelInputError as e:
            raise SpaceError(f"{where}: `model` {e}") from None
    if space.cv is None:
        return Prepared(workspace=ws, loaded=loaded, data=data)
    check_folds(data, space.cv, where)
    return Prepared(workspace=ws, loaded=loaded, data=data, folds=folds(data, space.cv))


def check_writable(ws: Workspace, storage: str | None = None, folders: tuple[Path, ...] = (), hint: str = "") -> str:
    """The storage URL a verb that writes would use, checked before anything is written.

    An SQLite storage must be a readable SQLite database that hpo may write (or may create);
    other storages are not contacted. Each of ``folders`` (or the nearest folder above it that
    exists) must be writable. ``hint`` ends each message (what to do instead).
    """
    import os

    from hpo.storage import check_storage

    url = ws.storage_url(storage)
    try:
        check_storage(url)
        for folder in folders:
            existing = folder
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            if not os.access(existing, os.W_OK | os.X_OK):
                raise HpoError(f"cannot write to {relative_path(folder, Path.cwd())}/: permission denied")
    except HpoError as e:
        raise HpoError(f"{e}{hint}") from None
    return url
