"""hpo: Optuna studies in isolated MLflow spaces, with analysis and promotion.

The Python API is what the ``hpo`` command calls, for notebooks and pipelines (see
``docs/python-api.md``):

- :func:`load_space` reads and validates a space file (:class:`LoadedSpace`, its ``space``);
- :func:`run_study` creates or resumes its study and runs it to its budget (:class:`RunResult`);
- :func:`analyze_study` finds trends and recommends a space (:class:`AnalyzeResult`);
- :func:`promote_trial` re-trains a trial, verifies it and logs it into the data-version
  experiment (:class:`PromoteResult`); :func:`reproduce_run` re-trains a promoted run;
- :func:`export_trials` returns a study's trials as a pandas DataFrame;
- :func:`try_space` fits a space once in the scratch space; :func:`data_versions` lists the ledger;
- :func:`load_workspace` names the workspace the others act in (default: the current folder).

Every function raises :class:`HpoError` (one line, naming the file, key and rule) for bad input, and
writes nothing then. The API is imported lazily, so that ``hpo --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpo.version import __version__

_LAZY = {
    "HpoError": "hpo.errors",
    "SpaceFile": "hpo.space",
    "LoadedSpace": "hpo.space",
    "load_space": "hpo.space",
    "load_workspace": "hpo.workspace",
    "Workspace": "hpo.workspace",
    "prepare": "hpo.prepare",
    "load_data": "hpo.data",
    "run_study": "hpo.run",
    "RunResult": "hpo.run",
    "analyze_study": "hpo.analyze",
    "AnalyzeResult": "hpo.analyze",
    "promote_trial": "hpo.promote",
    "PromoteResult": "hpo.promote",
    "reproduce_run": "hpo.promote",
    "ReproduceResult": "hpo.promote",
    "export_trials": "hpo.export",
    "try_space": "hpo.scratch",
    "TryResult": "hpo.scratch",
    "data_versions": "hpo.ledger",
    "source_version": "hpo.provenance",
    "METRICS": "hpo.metrics",
    "MODELS": "hpo.models",
}
_RENAMED = {"promote_trial": "promote", "reproduce_run": "reproduce"}  # the module's own name

__all__ = [
    "HpoError",
    "SpaceFile",
    "LoadedSpace",
    "load_space",
    "load_workspace",
    "Workspace",
    "prepare",
    "load_data",
    "run_study",
    "RunResult",
    "analyze_study",
    "AnalyzeResult",
    "promote_trial",
    "PromoteResult",
    "reproduce_run",
    "ReproduceResult",
    "export_trials",
    "try_space",
    "TryResult",
    "data_versions",
    "source_version",
    "METRICS",
    "MODELS",
    "__version__",
]

if TYPE_CHECKING:
    from hpo.analyze import AnalyzeResult, analyze_study
    from hpo.data import load_data
    from hpo.errors import HpoError
    from hpo.export import export_trials
    from hpo.ledger import data_versions
    from hpo.metrics import METRICS
    from hpo.models import MODELS
    from hpo.prepare import prepare
    from hpo.promote import PromoteResult, ReproduceResult
    from hpo.promote import promote as promote_trial
    from hpo.promote import reproduce as reproduce_run
    from hpo.provenance import source_version
    from hpo.run import RunResult, run_study
    from hpo.scratch import TryResult, try_space
    from hpo.space import LoadedSpace, SpaceFile, load_space
    from hpo.workspace import Workspace, load_workspace


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), _RENAMED.get(name, name))
    raise AttributeError(f"module 'hpo' has no attribute {name!r}")
