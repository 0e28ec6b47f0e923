"""hpo: Optuna studies in isolated MLflow spaces, with analysis and promotion.

The public API is imported lazily, so that ``hpo --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "HpoError",
    "SpaceFile",
    "load_space",
    "prepare",
    "load_data",
    "run_study",
    "RunResult",
    "source_version",
    "METRICS",
    "MODELS",
    "__version__",
]

_LAZY = {
    "HpoError": "hpo.errors",
    "SpaceFile": "hpo.space",
    "load_space": "hpo.space",
    "prepare": "hpo.prepare",
    "load_data": "hpo.data",
    "run_study": "hpo.run",
    "RunResult": "hpo.run",
    "source_version": "hpo.provenance",
    "METRICS": "hpo.metrics",
    "MODELS": "hpo.models",
}

if TYPE_CHECKING:
    from hpo.data import load_data
    from hpo.errors import HpoError
    from hpo.metrics import METRICS
    from hpo.models import MODELS
    from hpo.prepare import prepare
    from hpo.provenance import source_version
    from hpo.run import RunResult, run_study
    from hpo.space import SpaceFile, load_space


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hpo' has no attribute {name!r}")
