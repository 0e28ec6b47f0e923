"""What a pickled model needs to load in another process: the packages it names, and the team's own code.

A model that the team's code returned, or an estimator of a class in the workspace, is pickled by
reference: the pickle names the module of each class, and loading it imports them. A module of an
installed package becomes a pip requirement (``name==version``); the team's own modules, which no
package installs, travel with the model as MLflow ``code_paths``, so that it loads where the
workspace is not on the import path. The standard library needs neither.
"""

from __future__ import annotations

import io
import pickle
import shutil
import sys
from dataclasses import dataclass
from importlib.metadata import packages_distributions, version
from pathlib import Path
from typing import Any

from hpo.errors import HpoError


@dataclass(frozen=True)
class PickledModel:
    """A model as bytes, with what loading those bytes elsewhere needs."""

    blob: bytes
    requirements: list[str]  # name==version of every installed package the pickle names
    code_paths: list[str]  # the team's own top-level packages or modules it names (copies, .py files only)


def pinned(*distributions: str) -> list[str]:
    return [f"{d}=={version(d)}" for d in distributions]


def pickle_model(model: Any, what: str, staging: Path) -> PickledModel:
    """Pickle ``model`` (cloudpickle, as MLflow's scikit-learn flavor does) and find what it needs.

    The team's own modules are copied under ``staging`` (a folder that lives as long as the logging).

    Raises:
        HpoError: the model cannot be pickled (it holds a lock, an open file, a generator, ...).
    """
    import cloudpickle

    try:
        blob = cloudpickle.dumps(model)
    except Exception as e:
        raise HpoError(
            f"{what} cannot be pickled ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}), "
            "so it cannot be logged as a model; nothing was logged. Keep locks, open files and generators out of "
            "the fitted model"
        ) from None
    try:
        modules = _modules_named(blob)
    except Exception as e:  # what does not load back here would not load anywhere
        raise HpoError(
            f"{what} does not load back from its pickle ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}), "
            "so it cannot be logged as a model; nothing was logged"
        ) from None
    requirements: set[str] = set()
    shipped: dict[Path, Path] = {}
    installed = packages_distributions()
    for module in sorted(modules):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in ("builtins", "__main__"):
            continue
        if top in installed:
            requirements.update(pinned(*installed[top]))
            continue
        source = _own_code(module)
        if source is not None and source not in shipped:
            shipped[source] = _copy_python(source, staging)
    return PickledModel(blob, sorted(requirements), [str(p) for p in shipped.values()])


def _modules_named(blob: bytes) -> set[str]:
    """Every module whose classes or functions the pickle refers to (it is loaded once to find them)."""
    found: set[str] = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            found.add(module)
            return super().find_class(module, name)

    Recorder(io.BytesIO(blob)).load()
    return found


def _own_code(module: str) -> Path | None:
    """The top-level package folder (or module file) of ``module``, if it is the team's code.

    The team's code is what no package installs and the interpreter does not ship: a folder of the
    workspace, or wherever the import path found it.
    """
    file = getattr(sys.modules.get(module), "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    if any(path.is_relative_to(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix}):
        return None
    parts = module.split(".") + (["__init__"] if path.name == "__init__.py" else [])
    # A module a.b.c lives at <root>/a/b/c.py: its top-level package is <root>/a.
    return path if len(parts) == 1 else path.parents[len(parts) - 2]


def _copy_python(source: Path, staging: Path) -> Path:
    """``source`` (a package folder or a module file) under ``staging``, with its .py files only:
    a workspace package often holds data and notebooks too."""
    target = staging / source.name
    if source.is_file():
        staging.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        return target
    for file in source.rglob("*.py"):
        if "__pycache__" in file.parts or any(part.startswith(".") for part in file.relative_to(source).parts):
            continue
        dest = target / file.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, dest)
    return target
