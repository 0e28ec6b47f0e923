"""The promoted run in the data-version space, written all or nothing.

A write that fails or is interrupted half-way soft-deletes its run and its logged models (as
``mlflow.delete_run`` does; ``mlflow gc`` removes them for good), so no half-written promotion is
found as promoted and no model is left PENDING. What the run holds (tags, note, scores, the
model's check) is promotion's (:mod:`hpo.promote._writer`); this module holds the transaction.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from hpo.errors import HpoError
from hpo.schema import TAG_INPUT_DIGEST, TAG_INPUT_SPLIT
from hpo.tracking._models import LoggableModel, LoggedModels, discard_models, log_models
from hpo.tracking._tags import written

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from hpo.data import DataVersion


class Score(NamedTuple):
    """One metric value of the run (``step``: a fold's number for a metric by fold)."""

    key: str
    value: float
    step: int = 0


@dataclass(frozen=True)
class Dataset:
    """One split of the data, logged as a dataset input of the run."""

    name: str
    split: str  # train, validation or test
    context: str  # MLflow's word for the split's use: training, validation, test
    frame: pd.DataFrame  # features and target
    target: str
    digest: str  # the split's SHA-256 (MLflow keeps 36 characters; the whole is the input's tag)
    source: str | dict[str, str]  # a file's path, or what names a dataset a package ships (a code source)


@dataclass(frozen=True)
class PromotedRun:
    """Everything the promoted run is written from."""

    experiment_id: str
    name: str
    tags: dict[str, str]
    scores: list[Score]
    params: dict[str, str]
    datasets: list[Dataset]
    model: LoggableModel
    data: DataVersion  # what the model was trained on (its signature, input example, encoding)
    others: Sequence[str]  # the table's columns that are not features
    # Checks the logged models (raising undoes the run) and gives the tags that describe them.
    verify: Callable[[LoggedModels], dict[str, str]]


class WriteInterrupted(HpoError):
    """Ctrl-C while the run was being written: the run and its logged models were deleted again."""

    exit_code = 130  # as for any process that a SIGINT ended

    def __init__(self, run_id: str) -> None:
        super().__init__(f"interrupted (Ctrl-C) while logging run {run_id}; the run and its logged models were deleted")
        self.run_id = run_id


class WriteFailed(HpoError):
    """The tracking store failed mid-way: the run and its logged models were deleted again."""

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(f"MLflow could not log run {run_id} ({reason}); the run and its logged models were deleted")
        self.run_id, self.reason = run_id, reason


def write_promoted_run(c: MlflowClient, r: PromotedRun) -> Run:
    """Create the run and log everything into it; a failure half-way deletes it again.

    Raises:
        WriteInterrupted: on Ctrl-C (a first one waits for the write under way to end).
        WriteFailed: when the tracking store failed; an ``HpoError`` of ``verify`` passes unchanged.
    """
    import mlflow

    with _DeferredInterrupt() as stop:
        run = c.create_run(r.experiment_id, run_name=r.name, tags=written(r.tags))
        run_id = run.info.run_id
        try:
            from mlflow.entities import Metric, Param, RunTag

            now = run.info.start_time
            metrics = [Metric(s.key, s.value, now, s.step) for s in r.scores]
            params = [Param(k, v) for k, v in r.params.items()]
            c.log_batch(run_id, metrics=metrics, params=params)
            stop.check()
            with mlflow.start_run(run_id=run_id):
                _log_datasets(r.datasets)
                stop.check()
                models = log_models(r.model, r.data, r.others)
            stop.check()
            model_tags = r.verify(models)
            stop.check()
            c.log_batch(run_id, tags=[RunTag(k, v) for k, v in written(model_tags).items()])
            c.set_terminated(run_id, "FINISHED")
        except BaseException as e:
            # The run first: an active run with these tags would count as promoted (find_promoted).
            c.delete_run(run_id)
            discard_models(c, r.experiment_id, run_id)
            if _interrupted(e):
                raise WriteInterrupted(run_id) from None
            if isinstance(e, (HpoError, SystemExit)) or not isinstance(e, Exception):
                raise
            # The tracking store failed mid-way (an artifact folder it cannot write, a server gone).
            raise WriteFailed(run_id, f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}") from None
        return c.get_run(run_id)


class _DeferredInterrupt:
    """Holds a first Ctrl-C until the MLflow write under way has ended; a second one stops at once.

    A KeyboardInterrupt raised inside MLflow's SQLAlchemy session can leave a read unfinished that
    keeps SQLite's lock, so the clean-up's writes wait out the busy timeout and fail ("database is
    locked", with MLflow's traceback on stderr) and a logged model may stay PENDING. Between
    writes (``check``) the interrupt is raised where the clean-up can undo everything.
    """

    def __init__(self) -> None:
        self.pending = False
        self._previous: Any = None

    def __enter__(self) -> _DeferredInterrupt:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True
        print(
            "Ctrl-C: finishing the MLflow write under way, then undoing this promotion (press again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    def check(self) -> None:
        if self.pending:
            raise KeyboardInterrupt


def _interrupted(e: BaseException) -> bool:
    """A Ctrl-C, also when MLflow's clean-up after it failed in turn (its session's commit, say)."""
    todo: list[BaseException | None] = [e]
    seen: set[int] = set()
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        todo += [cur.__cause__, cur.__context__]
    return False


def _log_datasets(datasets: Sequence[Dataset]) -> None:
    """Log each split as a dataset input of the active run, tagged with its whole digest and its split."""
    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.pandas_dataset import from_pandas

    for d in datasets:
        source: Any = CodeDatasetSource(d.source) if isinstance(d.source, dict) else d.source
        # MLflow says on every path that two identical local-file source types match it, and hints
        # about integer columns; record=True keeps that off the terminal (MLflow re-enables its warnings).
        with warnings.catch_warnings(record=True):
            ds = from_pandas(d.frame, source=source, targets=d.target, name=d.name, digest=d.digest[:36])
            mlflow.log_input(ds, context=d.context, tags={TAG_INPUT_DIGEST: d.digest, TAG_INPUT_SPLIT: d.split})
