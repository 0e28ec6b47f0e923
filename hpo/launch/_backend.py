"""``hpo run --backend``: the engine it names, its flags checked before anything is written."""

from __future__ import annotations

from typing import Any

from hpo.errors import HpoError

BACKENDS = ("local", "ray", "dask")
MAX_WORKERS = 10_000


def engine_of(
    backend: str,
    *,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float | None = None,
    gpus_per_worker: float | None = None,
    jobs: int | None = None,
    gpus: str | None = None,
    timeout: float | None = None,
) -> Any:
    """The engine ``hpo run --backend`` names (None: this host's processes), its flags checked, not yet connected."""
    import math

    from hpo.tracking import tracking_uri
    from hpo.workspace import load_workspace

    cluster = {
        "--address": address,
        "--workers": workers,
        "--cpus-per-worker": cpus_per_worker,
        "--gpus-per-worker": gpus_per_worker,
    }
    if backend not in BACKENDS:
        raise HpoError(f"--backend must be one of {', '.join(BACKENDS)}, but got {backend!r}")
    if backend == "local":
        given = [flag for flag, value in cluster.items() if value is not None]
        if given:
            raise HpoError(f"{given[0]} is for --backend ray or dask; on this host, --jobs N sets the workers")
        return None
    if jobs is not None or gpus is not None:
        flag = "--jobs" if jobs is not None else "--gpus"
        raise HpoError(f"{flag} is for --backend local; on a cluster use --workers and --gpus-per-worker")
    if not address:
        raise HpoError(
            f"--address is required with --backend {backend} (e.g. {'auto or 10.0.0.5:6379' if backend == 'ray' else 'tcp://10.0.0.5:8786'})"
        )
    if workers is None or not 1 <= workers <= MAX_WORKERS:
        raise HpoError(f"--workers must be a whole number from 1 to {MAX_WORKERS} with --backend {backend}, but got {workers}")
    for flag, value in (("--cpus-per-worker", cpus_per_worker), ("--gpus-per-worker", gpus_per_worker)):
        if value is not None and not (math.isfinite(value) and 0 <= value <= 1024):
            raise HpoError(f"{flag} must be a number from 0 to 1024, but got {value:g}")
    if cpus_per_worker is not None and cpus_per_worker <= 0:
        raise HpoError(f"--cpus-per-worker must be above 0, but got {cpus_per_worker:g}")
    ws = load_workspace()
    common = {"address": address, "workers": workers, "cwd": str(ws.root), "timeout": timeout, "tracking": tracking_uri()}
    if backend == "ray":
        from hpo.launch._ray import RayEngine

        return RayEngine(cpus_per_worker=cpus_per_worker or 1.0, gpus_per_worker=gpus_per_worker or 0.0, **common)  # type: ignore[arg-type]
    if cpus_per_worker is not None:
        raise HpoError(
            "--cpus-per-worker is for --backend ray; a Dask worker runs one hpo worker per thread (dask worker --nthreads)"
        )
    from hpo.launch._dask import DaskEngine

    return DaskEngine(gpus_per_worker=gpus_per_worker or 0.0, **common)  # type: ignore[arg-type]
