"""``join_study``: a worker that joins a study another process created (``hpo worker``).

The study is the only coordination point: a worker reads the space, the data version and the
budget the study recorded, loads the same data in its own workspace (refused when its digests
differ), and claims budget slots until none is left. Launchers (Ray, Dask, Kubernetes, Slurm, a
shell loop) start as many as they like, on any host, at any time; a worker started twice or
restarted after a kill only claims slots nobody holds, so no slot is counted twice.

SIGTERM, which those engines send before they kill a process, fails the running trial and puts
it back in its budget slot at once (Ctrl-C first lets it finish, as in ``hpo run``).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.errors import HpoError, StudyError, option
from hpo.prepare import prepare_loaded
from hpo.run._result import Progress, RunResult
from hpo.run._runner import Workers, _with_budget, check_budget, run_prepared
from hpo.schema import STUDY_BUDGET, STUDY_DIGESTS, STUDY_READY, STUDY_SPACE_PATH, STUDY_SPACE_YAML
from hpo.secrets import masked_url
from hpo.space import LoadedSpace, parse_space
from hpo.storage import open_storage, sqlite_path
from hpo.workspace import Workspace, load_workspace

WAIT_POLL_SECONDS = 1.0
MAX_WAIT_SECONDS = 7 * 24 * 3600


def join_study(
    study: str,
    *,
    storage: str | None = None,
    workspace: Workspace | None = None,
    progress: Progress | None = None,
    timeout: float | None = None,
    wait: float = 0.0,
    gpus: Sequence[str] | None = None,
) -> RunResult:
    """Join the existing study ``study`` as one worker and run its trials until its budget is spent.

    Args:
        storage: Optuna storage URL (default as for :func:`run_study`).
        timeout: seconds after which this worker starts no new trial.
        wait: seconds to wait for the study to be created (its creator may start at the same time).
        gpus: the devices this worker's fits see (``CUDA_VISIBLE_DEVICES``).

    Returns:
        The outcome; ``RunResult.stop_signal`` is the signal that stopped the worker early, if one did.

    Raises:
        StudyError: no such study after ``wait`` seconds, or this workspace's data differs from the study's.
    """
    check_budget(None, timeout)
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        raise HpoError(f"{option('wait')} must be seconds from 0 to {MAX_WAIT_SECONDS} (7 days), but got {wait!r}")
    ws = workspace or load_workspace()
    url = ws.storage_url(storage)
    attrs = _wait_for_study(url, study, wait)
    loaded = _with_budget(recorded_space(attrs, ws, study), _recorded_budget(attrs), timeout)
    prep = prepare_loaded(loaded, ws)
    recorded = attrs.get(STUDY_DIGESTS) or {}
    if not prep.data.matches(recorded):
        differs = [s for s, d in prep.data.digests.items() if recorded.get(s) != d]
        raise StudyError(
            f"{prep.where}: this worker's data is not the data of study {study!r} ({', '.join(differs)} split digest "
            f"differs from the study's); give every worker the same data version (the files under {ws.root})"
        )
    workers = Workers(jobs=1, gpus=gpus, abort_on=frozenset({signal.SIGTERM}))
    return run_prepared(prep, url, workers, progress, create=False)


def recorded_space(attrs: Mapping[str, Any], ws: Workspace, study: str) -> LoadedSpace:
    """The space a study recorded when it was created, as if read from its file in ``ws``."""
    text = attrs.get(STUDY_SPACE_YAML)
    if not isinstance(text, str):
        raise StudyError(f"study {study!r} records no space file (not made by hpo?); run it with `hpo run SPACE`")
    path = Path(str(attrs.get(STUDY_SPACE_PATH) or f"{study}.yaml"))
    path = path if path.is_absolute() else ws.root / path
    return LoadedSpace(path=path, text=text, space=parse_space(text, str(path), strict=False))


def _recorded_budget(attrs: Mapping[str, Any]) -> int | None:
    """The budget the study's latest ``hpo run`` set (a ``--n-trials`` override too), not the file's."""
    budget = attrs.get(STUDY_BUDGET)
    n = budget.get("n_trials") if isinstance(budget, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None


def _wait_for_study(url: str, study: str, wait: float) -> dict[str, Any]:
    """The attributes of ``study`` once hpo finished creating it, waiting up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    path = sqlite_path(url)
    while True:
        if path is None or path.exists():
            attrs = _ready_attrs(url, study)
            if attrs is not None:
                return attrs
        if time.monotonic() >= deadline:
            break
        time.sleep(min(WAIT_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    waited = f" after waiting {wait:g} s" if wait else ""
    raise StudyError(
        f"study {study!r} is not in {masked_url(url)}{waited}: create it first with `hpo run SPACE --create-only` "
        f"(or `hpo run SPACE`), or give {option('wait')} SECONDS to wait for its creator"
    )


def _ready_attrs(url: str, study: str) -> dict[str, Any] | None:
    storage = open_storage(url, create=False)
    try:
        sid = storage.get_study_id_from_name(study)
    except KeyError:
        return None
    attrs = storage.get_study_user_attrs(sid)
    return attrs if attrs.get(STUDY_READY) else None
