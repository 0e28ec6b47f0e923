"""``hpo run --backend dask``: N ``hpo worker`` processes as tasks on an existing Dask cluster.

Each task takes one thread of a Dask worker (start the Dask workers with as many threads as hpo
workers each should run) and, with ``--gpus-per-worker``, the resource ``GPU`` (Dask workers started
with ``--resources GPU=n``; dask-cuda pins each one's devices). A task whose Dask worker died is
run again on another by the scheduler; the trial it was running is requeued by hpo. A stop on the
driver reaches the workers through a Dask ``Variable`` they read once a second.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError
from hpo.launch._engines import WorkerExit, WorkerJob, engine_missing, first_line, probe, run_worker, worker_job, workers_outcome

if TYPE_CHECKING:
    import optuna

    from hpo.run import Progress
    from hpo.run._result import WorkersOutcome

CONNECT_SECONDS = 20
DASK_PORT = 8786  # `dask scheduler`'s default


def _task(job: WorkerJob, variable: str) -> WorkerExit:
    from distributed import Variable

    return run_worker(job, lambda: int(Variable(variable).get(timeout=10)))


@dataclass
class DaskEngine:
    """Workers as tasks on the Dask cluster whose scheduler is at ``address``."""

    address: str
    workers: int
    cwd: str
    gpus_per_worker: float = 0.0
    timeout: float | None = None
    tracking: str | None = None
    name: str = "dask"
    _client: Any = field(default=None, repr=False)

    def connect(self) -> None:
        """Reach the scheduler (before anything is written)."""
        try:
            from distributed import Client
        except ImportError:
            raise engine_missing("dask", "Dask's distributed", "dask[distributed]") from None
        probe(self.address, DASK_PORT)
        try:
            self._client = Client(self.address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise HpoError(f"--address {self.address}: no Dask scheduler answers there ({first_line(e)})") from None

    def run(self, study: optuna.Study, url: str, progress: Progress) -> WorkersOutcome:
        from distributed import Variable

        from hpo.run import watch_workers

        client = self._client
        try:
            job = worker_job(study.study_name, url, self.tracking, self.cwd, self.timeout)
            tag = uuid.uuid4().hex[:8]
            stop = Variable(f"hpo-stop-{tag}", client=client)
            stop.set(0)
            resources = {"GPU": self.gpus_per_worker} if self.gpus_per_worker else None
            futures = [
                client.submit(_task, job, stop.name, key=f"hpo-worker-{i}-{tag}", pure=False, resources=resources)
                for i in range(self.workers)
            ]
            watched = watch_workers(
                study, progress, lambda: not all(f.done() for f in futures), lambda signum, count: stop.set(count)
            )
            exits: list[WorkerExit | BaseException] = []
            for f in futures:
                try:
                    exits.append(f.result())
                except Exception as e:  # its Dask workers died more often than the scheduler allows
                    exits.append(e)
            return workers_outcome(exits, watched.failures, watched.signals, watched.first, progress)
        finally:
            self.close()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
