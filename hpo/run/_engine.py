"""What a cluster engine's launcher provides to a run: start the workers elsewhere, watch the study here.

hpo schedules nothing: the engine (Ray, Dask) places the workers and restarts those it lost, and the
study's storage stays the only coordination between them. The launchers are in :mod:`hpo.launch`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import optuna

    from hpo.run._result import Progress, WorkersOutcome


class Engine(Protocol):
    """Runs ``hpo worker`` processes on a cluster until they end, showing ``study``'s progress meanwhile."""

    name: str

    def connect(self) -> None:
        """Reach the cluster, or raise an ``HpoError`` (called before the run writes anything)."""

    def close(self) -> None:
        """Let go of the cluster (the run failed before it started the workers)."""

    def run(self, study: optuna.Study, url: str, progress: Progress) -> WorkersOutcome: ...
