"""``hpo try``: the scratch space. One fit of a space, its metrics, and a run in ``<project>-Scratch``.

It is the quick check of a new space, model or training function before a budget is spent: no
study is created, the Optuna storage is not written, and nothing goes to the HPO or data-version
experiments. The fit is at the values given with ``--set``, else at the space's default point:

- an ``int`` or ``float`` range: its middle (the geometric middle of a ``log`` range), on its ``step``;
- a ``categorical``: its first choice.

With ``cv`` the fit is the folds, as a trial's; the validation metrics are then fold means. The
test split is not scored: it is for promoted runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError, option
from hpo.space import CategoricalParam, IntParam, SpaceFile

if TYPE_CHECKING:
    from hpo.tracking._scratch import ScratchWriter
    from hpo.workspace import Workspace


@dataclass
class TryResult:
    space: str
    study: str
    params: dict[str, Any]
    set_by_hand: list[str]
    seed: int
    metric: str
    metrics: dict[str, float]  # on validation (with cv: fold means)
    fold_values: list[float] | None
    fit_seconds: float
    experiment: str | None = None
    run_id: str | None = None
    run_name: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def default_point(space: SpaceFile) -> dict[str, Any]:
    """The middle of each range (geometric for ``log``), on its step; a categorical's first choice."""
    point: dict[str, Any] = {}
    for name, p in space.params.items():
        if isinstance(p, CategoricalParam):
            point[name] = p.choices[0]
            continue
        mid = math.sqrt(p.low * p.high) if p.log else (p.low + p.high) / 2
        if isinstance(p, IntParam):
            point[name] = min(p.high, p.low + round((mid - p.low) / p.step) * p.step)
        elif p.step is not None:
            point[name] = round(min(p.high, p.low + round((mid - p.low) / p.step) * p.step), 12)
        else:
            point[name] = mid
    return point


def parse_sets(space: SpaceFile, sets: list[str]) -> dict[str, Any]:
    """``name=value`` pairs for tuned or fixed parameters, each checked against its range or choices."""
    import yaml

    out: dict[str, Any] = {}
    for item in sets:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise HpoError(f"{option('sets', repr(item))}: must be name=value, e.g. {option('sets', 'depth=6')}")
        if name not in space.params and name not in space.fixed:
            known = ", ".join([*space.params, *space.fixed])
            raise HpoError(f"{option('sets', name)}: not a parameter of study {space.study!r} (its parameters: {known})")
        if name in out:
            raise HpoError(f"{option('sets', name)}: given twice; set each parameter once")
        try:
            value = yaml.safe_load(text) if text.strip() else text
        except yaml.YAMLError:
            value = text
        p = space.params.get(name)
        if p is not None:
            _check_value(name, p, value)
        out[name] = value
    return out


def _check_value(name: str, p: Any, value: Any) -> None:
    if isinstance(p, CategoricalParam):
        if not any(value == c and type(value) is type(c) for c in p.choices):
            raise HpoError(f"{option('sets', f'{name}={value!r}')}: must be one of the choices {p.choices}")
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or (isinstance(p, IntParam) and not float(value).is_integer()):
        kind = "a whole number" if isinstance(p, IntParam) else "a number"
        raise HpoError(f"{option('sets', f'{name}={value!r}')}: must be {kind} in [{p.low}, {p.high}]")
    if not p.low <= value <= p.high:
        raise HpoError(f"{option('sets', f'{name}={value}')}: must lie in the searched range [{p.low}, {p.high}]")


def try_space(space_path: str | Path, sets: list[str], *, workspace: Workspace | None = None) -> TryResult:
    """One fit of ``space_path`` at ``sets`` (else its default point), logged to the scratch space."""
    writer = _writer()  # first: MLflow's import (3 s) overlaps all that follows
    try:
        return _try(space_path, sets, workspace, writer)
    finally:
        if writer is not None:
            writer.close()


def _try(space_path: str | Path, sets: list[str], workspace: Workspace | None, writer: ScratchWriter | None) -> TryResult:
    from hpo.ledger import check_data
    from hpo.models import cross_validate, train, trial_seed
    from hpo.prepare import prepare_loaded
    from hpo.space import load_space
    from hpo.tracking._data_space import tracked_digests
    from hpo.workspace import load_workspace, relative_path

    ws = workspace or load_workspace()
    loaded = load_space(space_path, workspace=ws)
    by_hand = parse_sets(loaded.space, sets)  # before the data is read: a typo costs nothing
    prep = prepare_loaded(loaded, ws)
    space = prep.space
    # Read only (the ledger is written by `hpo run`): the storage's and the data-version experiment's.
    check_data(ws.storage_url(), prep.data, prep.where, tracked_digests(ws, prep.data.version))
    tuned = {**default_point(space), **{k: v for k, v in by_hand.items() if k in space.params}}
    params = {**space.fixed, **{k: v for k, v in by_hand.items() if k in space.fixed}, **tuned}
    seed = trial_seed(space.seed, 0)
    common: dict[str, Any] = {"model": space.model, "metric": space.metric, "params": params, "seed": seed}
    start = time.perf_counter()
    if prep.folds is not None:
        cv = cross_validate(folds=prep.folds, **common)
        metrics, folds = cv.metrics, cv.fold_values
    else:
        fit = train(data=prep.data, **common)
        metrics, folds = fit.metrics, None
    result = TryResult(
        space=str(relative_path(prep.loaded.path, ws.root)),
        study=space.study,
        params=params,
        set_by_hand=sorted(by_hand),
        seed=seed,
        metric=space.metric,
        metrics=metrics,
        fold_values=folds,
        fit_seconds=round(time.perf_counter() - start, 3),
    )
    _log(ws, prep, result, writer)
    return result


def _writer() -> ScratchWriter | None:
    """A process that imports MLflow while the data is read and the model fits (see
    :class:`hpo.tracking._scratch.ScratchWriter`); None where this process has MLflow already."""
    import sys

    if "mlflow" in sys.modules:
        return None
    from hpo.tracking._scratch import ScratchWriter

    try:
        return ScratchWriter()
    except OSError:
        return None  # no process to spare: MLflow is imported here, later


def _log(ws: Workspace, prep: Any, result: TryResult, writer: ScratchWriter | None) -> None:
    """The run in ``<project>-Scratch``, named after the branch and short commit; MLflow failing is a
    warning, not a failure: the fit's figures are printed either way."""
    from hpo.provenance import source_version
    from hpo.schema import (
        ROLE_SCRATCH,
        STUDY_COMMIT,
        STUDY_DATA_VERSION,
        STUDY_DIGESTS,
        STUDY_DIRTY,
        STUDY_SRC_VERSION,
        TAG_MODEL,
        TAG_ROLE,
        TAG_SPACE,
    )
    from hpo.tracking import experiment_names, provenance_tags, tracking_uri, unavailable

    src = source_version(ws.root)
    branch = _branch(ws.root)
    name = f"{branch}-{src.commit[:7]}" if src.commit != "unknown" else "outside-git"
    attrs = {
        STUDY_DATA_VERSION: prep.data.version,
        STUDY_DIGESTS: prep.data.digests,
        STUDY_SRC_VERSION: src.src_version,
        STUDY_COMMIT: src.commit,
        STUDY_DIRTY: src.dirty,
    }
    experiment = experiment_names(ws, prep.data.version)["scratch"]
    from hpo.tracking._scratch import ScratchRun, WriterFailed

    try:
        tags = {**provenance_tags(attrs), TAG_ROLE: ROLE_SCRATCH, TAG_SPACE: result.space, TAG_MODEL: prep.space.model}
        run = ScratchRun(
            name=name,
            tags=tags,
            metrics=result.metrics,
            metric=result.metric,
            fold_values=result.fold_values,
            fit_seconds=result.fit_seconds,
            params=result.params,
        )
        if writer is not None:
            run_id = writer.log(experiment, run)
        else:
            from hpo.tracking import client
            from hpo.tracking._scratch import log_scratch_run

            run_id = log_scratch_run(client(), experiment, run)
        result.experiment, result.run_id, result.run_name = experiment, run_id, name
    except WriterFailed as e:  # the writer process's one line
        result.warnings.append(f"the run was not logged to MLflow: {e}")
    except Exception as e:
        result.warnings.append(f"the run was not logged to MLflow: {unavailable(tracking_uri(), e)}")


def _branch(root: Path) -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (out.stdout.strip() or "unknown") if out.returncode == 0 else "unknown"
