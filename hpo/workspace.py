"""The workspace: the folder hpo runs in, its settings and where studies are stored.

Settings come from ``[tool.hpo]`` in the workspace's ``pyproject.toml``; zero settings work.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from hpo.errors import HpoError
from hpo.errors import relative_path as relative_path  # its home is errors (a leaf); imported from here too

STORAGE_ENV = "HPO_STORAGE"
DEFAULT_STORAGE_FILE = "hpo.db"

_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}\Z")
_KNOWN_KEYS = {"project", "storage", "hpo_experiment", "data_experiment", "leaderboard_experiment", "scratch_experiment"}
_TEMPLATE_FIELDS = ("project", "data_version")  # what experiment_names fills in

# The MLflow experiment names of a workspace: plain settings of `[tool.hpo]`, so they live with the workspace
# (hpo.tracking, which opens the experiments, and the workspace check both fill them in).
DEFAULT_TEMPLATES = {
    "hpo_experiment": "{project}-HPO-{data_version}",
    "data_experiment": "{project}-Data-{data_version}",
    "leaderboard_experiment": "{project}-Leaderboard",
    "scratch_experiment": "{project}-Scratch",  # hpo try: single fits, never a study's
}


@dataclass(frozen=True)
class Workspace:
    root: Path
    project: str
    storage_setting: str | None = None
    templates: dict[str, str] = field(default_factory=dict)

    @property
    def studies_dir(self) -> Path:
        return self.root / "studies"

    @property
    def search_spaces_dir(self) -> Path:
        return self.root / "search_spaces"

    def storage_url(self, override: str | None = None) -> str:
        """``--storage``, else ``$HPO_STORAGE``, else ``[tool.hpo] storage``, else SQLite in studies/."""
        url = override or os.environ.get(STORAGE_ENV) or self.storage_setting
        if url:
            return url
        return f"sqlite:///{self.studies_dir / DEFAULT_STORAGE_FILE}"

    def study_dir(self, study: str) -> Path:
        """``studies/<study>/``. A name that is not a plain folder name (a study made with Optuna
        can be called ``../../x`` or ``/etc``) gets a folder of its own inside ``studies/``:
        its letters, digits, '.', '_' and '-', then a hash of the whole name."""
        if _PLAIN_NAME.match(study):
            return self.studies_dir / study
        import hashlib

        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", study).strip("._-")[:60] or "study"
        return self.studies_dir / f"{safe}-{hashlib.sha256(study.encode()).hexdigest()[:8]}"

    def check_templates(self) -> None:
        """Refuse an experiment-name template MLflow would never get a name from.

        Names are made during a run, where a failure reads as "MLflow unreachable"; checked
        when the workspace is read (and again by :func:`hpo.prepare.prepare`), it is one line.
        """
        if not self.templates:
            return
        import string

        pyproject = self.root / "pyproject.toml"
        for key, template in self.templates.items():
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
            except ValueError as e:
                raise HpoError(f"{pyproject}: `tool.hpo.{key}` is not a valid template ({e}), but got {template!r}") from None
            for f in fields:
                if f not in _TEMPLATE_FIELDS:
                    raise HpoError(
                        f"{pyproject}: `tool.hpo.{key}` may use {{project}} and {{data_version}}, "
                        f"but got {template!r} (it uses {{{f}}})"
                    )
        try:
            experiment_names(self, "v0.1.0")  # as a run fills them in: a format spec can still fail
        except (ValueError, TypeError) as e:
            raise HpoError(f"{pyproject}: an experiment template in `tool.hpo` cannot be filled in ({e})") from None


def experiment_names(ws: Workspace, data_version: str) -> dict[str, str]:
    """The experiment names for ``data_version`` (hpo, data, leaderboard, scratch), from ``[tool.hpo]`` or the defaults."""
    values = {"project": ws.project, "data_version": data_version}
    out = {}
    for key, default in DEFAULT_TEMPLATES.items():
        template = ws.templates.get(key, default)
        try:
            out[key.removesuffix("_experiment")] = template.format(**values)
        except (KeyError, IndexError) as e:
            raise HpoError(
                f"pyproject.toml: `tool.hpo.{key}` may use {{project}} and {{data_version}}, but uses {{{e.args[0]}}}"
            ) from None
    return out


def load_workspace(root: Path | None = None) -> Workspace:
    """Read the workspace at ``root`` (default: the current folder)."""
    root = (root or Path.cwd()).resolve()
    settings: dict[str, object] = {}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            settings = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("hpo", {})
        except tomllib.TOMLDecodeError as e:
            raise HpoError(f"{pyproject}: invalid TOML: {e}") from None
    unknown = sorted(set(settings) - _KNOWN_KEYS)
    if unknown:
        raise HpoError(f"{pyproject}: `tool.hpo.{unknown[0]}` is not a known key ({', '.join(sorted(_KNOWN_KEYS))})")
    for key, value in settings.items():
        if not isinstance(value, str):
            raise HpoError(f"{pyproject}: `tool.hpo.{key}` must be a string, but got {value!r}")
    templates = {k: str(v) for k, v in settings.items() if k.endswith("_experiment")}
    ws = Workspace(
        root=root,
        project=str(settings.get("project") or root.name),
        storage_setting=settings.get("storage"),  # type: ignore[arg-type]
        templates=templates,
    )
    ws.check_templates()
    return ws


_IMPORT_ROOTS: list[Path] = []  # workspaces put on the import path by this process


def on_import_path(root: Path) -> None:
    """Put the workspace last on the import path: its own modules and packages can be named as
    ``model`` (an estimator class of its code, a ``module:function``), and every verb that trains
    (run, analyze's re-fits, promote, reproduce) must find them, from any current directory.

    Last, not first: a ``catboost.py`` or ``json.py`` lying in the workspace must never hide the
    installed library or the standard library from hpo and its dependencies. A model named after
    such a module is refused with one line (:func:`hpo.models.check_not_shadowed`)."""
    import sys

    if root not in _IMPORT_ROOTS:
        _IMPORT_ROOTS.append(root)
    if str(root) not in sys.path:
        sys.path.append(str(root))


def import_roots() -> list[Path]:
    """The workspaces :func:`on_import_path` has put on the import path, in order."""
    return list(_IMPORT_ROOTS)
