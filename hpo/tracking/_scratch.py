"""The run of ``hpo try`` in the data version's scratch space: one fit, its metrics and parameters.

Importing MLflow and its SQL store takes longer than a small fit (about 2.5 s against 2 s for the
data and the fit together), so a command that has not imported MLflow yet logs through a
:class:`ScratchWriter`: a process started before the data is read, which imports MLflow meanwhile
on the other core, then logs the run it is handed and answers with its id. It opens the store only
then: a ``try`` that fails before its fit leaves nothing in MLflow, not even a new store.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from hpo.schema import BY_FOLD, TRIAL_FIT_SECONDS, VAL
from hpo.tracking._client import ensure_experiment
from hpo.tracking._tags import written

if TYPE_CHECKING:
    import subprocess

    from mlflow import MlflowClient


@dataclass(frozen=True)
class ScratchRun:
    """What a scratch run records: the fit's validation metrics (with cv, fold means and each fold's value)."""

    name: str  # the run's name (branch and short commit)
    tags: dict[str, str]
    metrics: dict[str, float]  # by metric name, without the val_ prefix; NaN is left out
    metric: str  # the space's metric: its folds are logged under val_<metric>_by_fold
    fold_values: list[float] | None
    fit_seconds: float
    params: dict[str, Any]  # logged as given when a string, else as repr()


def logged_params(params: dict[str, Any]) -> dict[str, str]:
    """Parameters as the run holds them: a string as given, anything else as its ``repr()``."""
    return {k: v if isinstance(v, str) else repr(v) for k, v in params.items()}


def log_scratch_run(c: MlflowClient, experiment: str, run: ScratchRun) -> str:
    """Log ``run`` to the experiment named ``experiment`` (created if need be), finished; its run id."""
    from mlflow.entities import Metric, Param

    exp_id = ensure_experiment(c, experiment)
    created = c.create_run(exp_id, run_name=run.name, tags=written(run.tags))
    run_id: str = created.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(f"{VAL}{k}", float(v), now, 0) for k, v in run.metrics.items() if v == v]
    metrics += [Metric(f"{VAL}{run.metric}{BY_FOLD}", float(v), now, k) for k, v in enumerate(run.fold_values or [])]
    metrics.append(Metric(TRIAL_FIT_SECONDS, run.fit_seconds, now, 0))
    params = [Param(k, v) for k, v in logged_params(run.params).items()]
    c.log_batch(run_id, metrics=metrics, params=params)
    c.set_terminated(run_id)
    return run_id


class WriterFailed(RuntimeError):
    """The writer process did not log the run: MLflow's one-line reason (or the process's end)."""


class ScratchWriter:
    """A process that imports MLflow while the caller fits, and logs one :class:`ScratchRun` when handed it.

    It runs in a session of its own, so a Ctrl-C reaches only the caller, which ends it by closing
    its input (as the caller's death does): it then exits having written nothing.
    """

    def __init__(self) -> None:
        import os
        import subprocess
        import sys

        self._proc: subprocess.Popen[str] | None = subprocess.Popen(
            [sys.executable, "-m", "hpo.tracking._scratch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=os.environ.copy(),
            start_new_session=True,
        )

    def log(self, experiment: str, run: ScratchRun) -> str:
        """Hand ``run`` over and wait for its id; raises :class:`WriterFailed` with MLflow's one-line reason."""
        proc, self._proc = self._proc, None
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise WriterFailed("the scratch run's writer was closed")
        given = {**asdict(run), "params": logged_params(run.params)}  # JSON holds them as MLflow will
        try:
            proc.stdin.write(json.dumps({"experiment": experiment, "run": given}) + "\n")
            proc.stdin.close()
            reply = json.loads(proc.stdout.readline() or "{}")
        except (OSError, ValueError) as e:
            reply = {"error": f"its writer process ended ({e})"}
        finally:
            _end(proc)
        if "run_id" not in reply:
            raise WriterFailed(reply.get("error") or f"its writer process ended with exit code {proc.returncode}")
        return str(reply["run_id"])

    def close(self) -> None:
        """End the process without logging anything (the fit failed, or was interrupted)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _end(proc)


def _end(proc: subprocess.Popen[str]) -> None:
    import subprocess

    for stream in (proc.stdin, proc.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _serve() -> None:
    """The writer process: import what logging a run needs, then log the one run read from stdin."""
    import sys

    try:
        import mlflow

        if mlflow.get_tracking_uri().split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "mysql", "mssql"):
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401 (the 1 s of the store's own imports, now)
    except Exception:
        pass  # the caller's run is logged below, or says why not
    line = sys.stdin.readline()
    if not line:
        return  # closed without a run: nothing is written
    try:
        from hpo.tracking._client import client

        given = json.loads(line)
        run_id = log_scratch_run(client(), given["experiment"], ScratchRun(**given["run"]))
        reply: dict[str, str] = {"run_id": run_id}
    except Exception as e:
        from hpo.tracking._client import tracking_uri
        from hpo.tracking._store import unavailable

        reply = {"error": str(unavailable(tracking_uri(), e))}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    _serve()
