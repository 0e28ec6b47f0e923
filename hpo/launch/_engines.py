"""Workers on a cluster engine: the ``hpo worker`` process each engine task runs, and how the run
hears how each ended.

Each task of an engine (a Ray task, a Dask future) starts one ``hpo worker --study S`` process with
the Python of the node it landed on, in the workspace's folder, and waits for it. The process is
the same one a user starts by hand, so it has the same guarantees: it claims budget slots through
the storage, sends heartbeats, and on SIGTERM fails and requeues its running trial. A stop asked for
by ``hpo run`` (Ctrl-C on the driver) reaches it as Ctrl-C: once finishes its trial, twice aborts it.
When the task's process dies (its node lost), Linux sends the worker SIGTERM, so its trial is
requeued at once rather than after the heartbeat grace period; the engine retries the task.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError
from hpo.workspace import STORAGE_ENV

if TYPE_CHECKING:
    from hpo.run import Progress
    from hpo.run._result import WorkersOutcome

POLL_SECONDS = 0.5  # how often a task looks at its worker process
STOP_POLL_SECONDS = 1.0  # ... and asks the driver whether to stop it
TERM_GRACE_SECONDS = 20  # a worker sent SIGTERM has this long to requeue its trial before SIGKILL
TAIL_LINES = 5
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
TRACKING_ENV = "MLFLOW_TRACKING_URI"
PASSED_ENV_PREFIXES = ("HPO_", "MLFLOW_")  # the driver's settings the workers need (timings, tracking)


@dataclass(frozen=True)
class WorkerJob:
    """Everything an engine task needs to start one ``hpo worker``: plain data, sent to the node."""

    study: str
    cwd: str  # the workspace's folder on the node (the same path as on the driver)
    env: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None

    def argv(self) -> list[str]:
        """The command, with the Python of the node it runs on."""
        more = [] if self.timeout is None else ["--timeout", repr(self.timeout)]
        return [sys.executable, "-m", "hpo", "worker", "--study", self.study, "--json", *more]


def worker_job(study: str, storage: str, tracking: str | None, cwd: str, timeout: float | None) -> WorkerJob:
    """The job for ``study``: the driver's storage and tracking URI, and its hpo and MLflow settings."""
    env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV_PREFIXES)}
    env[STORAGE_ENV] = storage
    if tracking:
        env[TRACKING_ENV] = tracking
    return WorkerJob(study=study, cwd=cwd, env=env, timeout=timeout)


@dataclass(frozen=True)
class WorkerExit:
    """How one worker process ended: its exit code, its ``--json`` report, its last lines of stderr."""

    code: int
    report: dict[str, Any] | None
    stderr: str
    host: str


def run_worker(job: WorkerJob, stop_level: Callable[[], int]) -> WorkerExit:
    """Run one ``hpo worker`` to its end in this (engine task's) process.

    ``stop_level()`` is how many stop signals the driver received: each new one is passed on as
    Ctrl-C. If this task is cancelled, the worker is sent SIGTERM and waited for.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            job.argv(),
            cwd=job.cwd,
            env={**os.environ, **job.env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=_term_with_parent,
        )
        try:
            _wait(proc, stop_level)
        except BaseException:
            _terminate(proc)
            raise
        out.seek(0)
        err.seek(0)
        return WorkerExit(proc.returncode, _report(out.read()), _tail(err.read()), socket.gethostname())


def _wait(proc: subprocess.Popen[Any], stop_level: Callable[[], int]) -> None:
    sent, asked = 0, time.monotonic()
    while proc.poll() is None:
        time.sleep(POLL_SECONDS)
        if time.monotonic() - asked < STOP_POLL_SECONDS:
            continue
        asked = time.monotonic()
        with contextlib.suppress(Exception):  # a driver that is gone takes its tasks with it
            level = stop_level()
            while sent < min(level, 2) and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                sent += 1


def _terminate(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(TERM_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _term_with_parent() -> None:
    """In the worker process: SIGTERM when the task's process dies (its trial is then requeued at once)."""
    if sys.platform == "linux":
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _report(text: str) -> dict[str, Any] | None:
    try:
        report = json.loads(text)
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-TAIL_LINES:])


def workers_outcome(
    exits: Sequence[WorkerExit | BaseException], failures: list[str], signals: int, first: int | None, progress: Progress
) -> WorkersOutcome:
    """The run's outcome from its workers' ends; a worker that crashed or was lost is said in one line."""
    from hpo.run._result import Tally, WorkersOutcome

    tally = Tally()
    for e in exits:
        if isinstance(e, BaseException):
            progress.message(f"a worker was lost: {type(e).__name__}: {first_line(e)}")
            continue
        here = (e.report or {}).get("this_run") or {}
        tally.finished += int(here.get("finished", 0))
        tally.completed += int(here.get("completed", 0))
        if e.code not in (0, 128 + signal.SIGINT, 128 + signal.SIGTERM):
            last = e.stderr.splitlines()[-1] if e.stderr else "no output"
            progress.message(f"a worker on {e.host} exited with code {e.code}: {last}")
    return WorkersOutcome(signals > 0, failures, tally, first)


def first_line(e: BaseException) -> str:
    """The first line of an error's message (or its kind, when it has none)."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def engine_missing(backend: str, module: str, install: str) -> HpoError:
    return HpoError(f"--backend {backend} needs {module} on this host: pip install '{install}' (the version the cluster runs)")


PROBE_SECONDS = 5.0


def probe(address: str, default_port: int) -> None:
    """Refuse at once an address where nothing listens (the engines' clients retry it for minutes)."""
    import re

    m = re.match(r"^(?:[a-z+]+://)?(\[[^\]]+\]|[^:/\[\]]+)(?::(\d+))?/?$", address)
    if m is None:
        raise HpoError(f"--address must be host:port (or a URL such as tcp://host:port), but got {address!r}")
    host, port = m.group(1).strip("[]"), int(m.group(2) or default_port)
    try:
        socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
    except OSError as e:
        raise HpoError(f"--address {address}: nothing answers at {host}:{port} ({(e.strerror or str(e)).lower()})") from None
