"""``hpo delete``: remove a study, its runs in its HPO space and its reports folder, and nothing else.

What stays: other studies and their runs, the study's promoted runs and the data-version and
leaderboard experiments, the space files, the data ledger. The order leaves nothing half done:
every check first (promoted runs, derived studies, running trials, write access), then the MLflow
runs (soft-deleted, as MLflow's ``delete_run`` does; restored if the storage then refuses), then
the study in the storage, then the folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError, StudyError, option
from hpo.schema import TAG_STUDY, StudyRecord
from hpo.secrets import masked, masked_url
from hpo.storage import load_study, open_storage, storage_of, study_lock, trial_counts
from hpo.workspace import Workspace, load_workspace, relative_path

if TYPE_CHECKING:
    import optuna

    from hpo.tracking import Client


@dataclass
class DeletePlan:
    """What deleting a study removes and keeps, found before anything is removed."""

    study: str
    storage: str
    trials: int
    running: int  # RUNNING trials: a worker may be at work on the study
    children: list[str]  # studies derived from this one (same storage)
    folder: Path | None  # studies/<study>/, if it exists
    tracking_uri: str | None = None
    runs: list[str] = field(default_factory=list)  # HPO-space runs: the trials' runs, then the parent run
    hpo_experiments: list[str] = field(default_factory=list)  # where they are (names)
    promoted: list[str] = field(default_factory=list)  # promoted runs of the study: kept
    data_experiment: str | None = None
    mlflow_problem: str | None = None  # why MLflow could not be read; its runs are then left alone

    def refusal(self, force: bool) -> str | None:
        """Why the study may not be deleted without ``--force``, or None."""
        if force:
            return None
        has = []
        if self.promoted:
            has.append(f"{len(self.promoted)} promoted run(s) in {self.data_experiment} (kept even with {option('force')})")
        if self.children:
            has.append(f"derived studies {', '.join(self.children)} (they keep their inherited trials)")
        if self.running:
            has.append(f"{self.running} RUNNING trial(s) (is `hpo run` still at work on it?)")
        why = [f"study {self.study!r} has {'; '.join(has)}"] if has else []
        if self.mlflow_problem:
            why.append(f"{self.mlflow_problem}, so its promoted runs cannot be checked nor its HPO runs deleted")
        if not why:
            return None
        return f"{'; '.join(why)}; nothing was deleted ({option('force')} deletes it anyway)"

    def as_dict(self) -> dict[str, Any]:
        """The plan for ``--json``: what would be deleted and kept, and why it would be refused without ``--force``."""
        return {
            "study": self.study,
            "storage": self.storage,
            "trials": self.trials,
            "running": self.running,
            "runs": len(self.runs),
            "run_ids": self.runs,
            "hpo_experiments": self.hpo_experiments,
            "tracking_uri": self.tracking_uri,
            "folder": None if self.folder is None else relative_path(self.folder, Path.cwd()),
            "promoted_kept": len(self.promoted),
            "data_experiment": self.data_experiment,
            "children_kept": self.children,
            "mlflow_problem": self.mlflow_problem,
            "refusal": self.refusal(force=False),
        }

    def lines(self) -> list[str]:
        """What will be deleted and what is kept, a line each."""
        out = [f"delete   study {self.study!r}: {self.trials} trial(s) in {masked_url(self.storage)}"]
        if self.mlflow_problem:
            out.append(f"keep     its runs in MLflow (tag {TAG_STUDY} = {self.study!r}): {self.mlflow_problem}")
        else:
            where = ", ".join(self.hpo_experiments) or "no HPO experiment"
            out.append(f"delete   {len(self.runs)} run(s) in {where} at {masked_url(self.tracking_uri or '')} (soft delete)")
        if self.folder is not None:
            out.append(f"delete   {relative_path(self.folder, Path.cwd())}/")
        if self.promoted:
            out.append(f"keep     {len(self.promoted)} promoted run(s) in {self.data_experiment}")
        if self.children:
            out.append(f"keep     derived studies {', '.join(self.children)}")
        return out


class NotConfirmed(HpoError):
    """The user said no: nothing was deleted."""

    exit_code = 1


@dataclass(frozen=True)
class DeleteResult:
    study: str
    storage: str
    trials: int
    runs_deleted: int
    folder: str | None  # the folder removed, relative to the workspace
    promoted_kept: int
    children_kept: list[str]
    mlflow_problem: str | None  # MLflow could not be reached: its runs were left

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def delete_study(
    study: str,
    *,
    storage: str | None = None,
    force: bool = False,
    confirm: Callable[[DeletePlan], bool] | None = None,
    workspace: Workspace | None = None,
) -> DeleteResult:
    """Delete ``study`` from its storage, its runs from its HPO space in MLflow, and ``studies/<study>/``.

    Args:
        study: the study's name.
        storage: Optuna storage URL; default as for ``hpo run``.
        force: delete even while the study has promoted runs (which are kept), derived studies,
            RUNNING trials, or while MLflow is unreachable (its runs there are then left).
        confirm: shown the plan once every check passed; nothing is deleted unless it returns True.
            None: no question asked.
        workspace: the workspace; default the current folder.

    Raises:
        HpoError: no such study (the message lists the storage's studies), the storage or the folder
            cannot be written, a refusal (see ``force``), or ``confirm`` said no.
    """
    from hpo.prepare import check_writable
    from hpo.tracking._cleanup import delete_runs, restore_runs

    ws = workspace or load_workspace()
    url = ws.storage_url(storage)
    s = load_study(url, study)
    folder = ws.study_dir(study)
    has_folder = folder.is_dir() or folder.is_symlink()
    check_writable(ws, storage, (ws.studies_dir,) if has_folder else (), hint="; nothing was deleted")
    plan, c = _planned(url, s, ws, folder if has_folder else None)
    refusal = plan.refusal(force)
    if refusal:
        raise StudyError(refusal)
    if confirm is not None and not confirm(plan):
        raise NotConfirmed(f"study {study!r} not deleted")

    deleted: list[str] = []
    if c is not None:
        try:
            delete_runs(c, plan.runs)  # all or none
            deleted = plan.runs
        except Exception as e:
            why = _reason(e)
            uri = masked_url(plan.tracking_uri or "")
            raise HpoError(f"MLflow at {uri} failed while deleting runs ({why}); nothing was deleted") from None
    try:
        import optuna

        with study_lock(url, study):
            optuna.delete_study(study_name=study, storage=storage_of(s))
    except Exception as e:
        if c is not None:
            restore_runs(c, deleted)
        if isinstance(e, HpoError):
            raise HpoError(f"{e}; the study and its runs are kept") from None
        raise
    if plan.folder is not None:
        _remove(plan.folder)
    return DeleteResult(
        study=study,
        storage=url,
        trials=plan.trials,
        runs_deleted=len(deleted),
        folder=None if plan.folder is None else relative_path(plan.folder, ws.root),
        promoted_kept=len(plan.promoted),
        children_kept=plan.children,
        mlflow_problem=plan.mlflow_problem,
    )


def plan_deletion(study: str, *, storage: str | None = None, workspace: Workspace | None = None) -> DeletePlan:
    """What :func:`delete_study` would delete and keep (``refusal`` says why it would refuse); nothing is changed."""
    ws = workspace or load_workspace()
    url = ws.storage_url(storage)
    s = load_study(url, study)
    folder = ws.study_dir(study)
    return _planned(url, s, ws, folder if folder.is_dir() or folder.is_symlink() else None)[0]


def _planned(url: str, s: optuna.Study, ws: Workspace, folder: Path | None) -> tuple[DeletePlan, Client | None]:
    plan = _plan(url, s, folder)
    return plan, _mlflow(plan, ws, StudyRecord.from_study(s))


def _plan(url: str, s: optuna.Study, folder: Path | None) -> DeletePlan:
    storage = open_storage(url, create=False)
    children = [f.study_name for f in storage.get_all_studies() if StudyRecord.from_attrs(f.user_attrs).parent == s.study_name]
    counts = trial_counts(s)
    return DeletePlan(
        study=s.study_name,
        storage=url,
        trials=sum(counts.values()),
        running=counts.get("RUNNING", 0),
        children=children,
        folder=folder,
    )


def _mlflow(plan: DeletePlan, ws: Workspace, record: StudyRecord) -> Client | None:
    """Fill in the plan's MLflow part; the client, or None when there is nothing to do there."""
    from hpo.tracking import TrackingUnavailable, tracking_uri
    from hpo.tracking._cleanup import existing_client, study_runs

    uri = plan.tracking_uri = tracking_uri()
    try:
        c = existing_client()
        if c is None:
            return None  # no store, so no runs
        found = study_runs(c, ws, plan.study, str(record.data_version or "unknown"), record.mlflow_parent_run_id)
    except TrackingUnavailable as e:
        plan.mlflow_problem = str(e)
        return None
    except Exception as e:  # the store answered, then failed: the same for the user
        plan.mlflow_problem = f"MLflow at {masked_url(uri)} failed ({_reason(e)})"
        return None
    plan.runs, plan.hpo_experiments = found.runs, found.hpo_experiments
    plan.data_experiment, plan.promoted = found.data_experiment, found.promoted
    return c


def _remove(folder: Path) -> None:
    try:
        if folder.is_symlink():
            folder.unlink()
        else:
            shutil.rmtree(folder)
    except OSError as e:
        raise HpoError(
            f"the study is deleted, but {relative_path(folder, Path.cwd())}/ could not be removed "
            f"({(e.strerror or str(e)).lower()}); remove it by hand"
        ) from None


def _reason(e: BaseException) -> str:
    text = masked(str(e)).strip()  # MLflow's errors quote the tracking URI
    return text.splitlines()[0][:300] if text else type(e).__name__
