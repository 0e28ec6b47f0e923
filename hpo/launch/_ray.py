"""``hpo run --backend ray``: N ``hpo worker`` processes as Ray tasks on an existing Ray cluster.

Each task asks for ``--cpus-per-worker`` CPUs and ``--gpus-per-worker`` GPUs, so Ray places the
workers and sets ``CUDA_VISIBLE_DEVICES`` for the GPUs it gave each one. A task whose node is lost
is retried by Ray (``max_retries``) on another node; the trial it was running is requeued by hpo
(at once when its process saw its task die, else after the heartbeat grace period). A stop on the
driver reaches the workers through a small actor they ask once a second.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError
from hpo.launch._engines import WorkerExit, WorkerJob, engine_missing, first_line, probe, run_worker, worker_job, workers_outcome

if TYPE_CHECKING:
    import optuna

    from hpo.run import Progress
    from hpo.run._result import WorkersOutcome

MAX_RETRIES = 5
RAY_PORT = 6379  # `ray start --head`'s default  # a worker's task is restarted this often after its node was lost


class StopFlag:
    """How many stop signals the driver received (a Ray actor the workers' tasks ask)."""

    def __init__(self) -> None:
        self.level = 0

    def set(self, level: int) -> None:
        self.level = max(self.level, level)

    def get(self) -> int:
        return self.level


def _task(job: WorkerJob, flag: Any) -> WorkerExit:
    import ray

    return run_worker(job, lambda: int(ray.get(flag.get.remote(), timeout=10)))


@dataclass
class RayEngine:
    """Workers as tasks on the Ray cluster at ``address`` (``auto``: the one this host belongs to)."""

    address: str
    workers: int
    cwd: str
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    timeout: float | None = None
    tracking: str | None = None
    name: str = "ray"
    _ray: Any = field(default=None, repr=False)

    def connect(self) -> None:
        """Reach the cluster, and check it has a node that can take one worker (before anything is written)."""
        try:
            import ray
        except ImportError:
            raise engine_missing("ray", "Ray", "ray") from None
        if self.address != "auto":
            probe(self.address, RAY_PORT)
        try:
            ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise HpoError(f"--address {self.address}: no Ray cluster answers there ({first_line(e)})") from None
        self._ray = ray
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        for what, need in (("CPU", self.cpus_per_worker), ("GPU", self.gpus_per_worker)):
            most = max((r.get(what, 0.0) for r in nodes), default=0.0)
            if need > most:
                flag = f"--{what.lower()}s-per-worker"
                self.close()
                raise HpoError(
                    f"{flag} {need:g}: no node of the Ray cluster at {self.address} has {need:g} {what}s (most: {most:g})"
                )

    def run(self, study: optuna.Study, url: str, progress: Progress) -> WorkersOutcome:
        # Ray's driver prints what happens to the tasks (a task retried after its node was lost) on
        # stdout, which `--json` keeps for its one object: it goes to stderr, with the progress.
        with contextlib.redirect_stdout(sys.stderr):
            try:
                return self._run(study, url, progress)
            finally:
                self.close()

    def _run(self, study: optuna.Study, url: str, progress: Progress) -> WorkersOutcome:
        from hpo.run import watch_workers

        ray = self._ray
        job = worker_job(study.study_name, url, self.tracking, self.cwd, self.timeout)
        flag = ray.remote(num_cpus=0)(StopFlag).remote()
        task = ray.remote(_task).options(
            num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker, max_retries=MAX_RETRIES, retry_exceptions=False
        )
        refs = [task.remote(job, flag) for _ in range(self.workers)]
        pending = list(refs)

        def alive() -> bool:
            nonlocal pending
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
            return bool(pending)

        watched = watch_workers(study, progress, alive, lambda signum, count: flag.set.remote(count))
        exits: list[WorkerExit | BaseException] = []
        for ref in refs:
            try:
                exits.append(ray.get(ref))
            except Exception as e:  # lost more often than MAX_RETRIES, or cancelled
                exits.append(e)
        return workers_outcome(exits, watched.failures, watched.signals, watched.first, progress)

    def close(self) -> None:
        ray, self._ray = self._ray, None
        if ray is not None:
            ray.shutdown()
