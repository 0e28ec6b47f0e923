"""Loading a space file: YAML to :class:`SpaceFile`, every problem one line naming the file, the key
path and the rule; and the JSON Schema.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
)

from hpo.errors import HpoError, SpaceError
from hpo.space._file import SpaceFile
from hpo.space._problems import problems

if TYPE_CHECKING:
    from hpo.workspace import Workspace


class LoadedSpace(BaseModel):
    """A validated space with the text it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    text: str
    space: SpaceFile

    @property
    def text_sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_space(path: str | Path, *, workspace: Workspace | None = None) -> LoadedSpace:
    """Read and validate a space file; raise :class:`SpaceError` listing every problem.

    A relative ``path`` is the workspace's (default: the current folder, as the command would).
    """
    path = Path(path)
    if workspace is not None and not path.is_absolute() and workspace.root != Path.cwd().resolve():
        path = workspace.root / path  # messages name the file as given when the workspace is the current folder
    text = read_text(path, SpaceError, f"give a space file (e.g. {path}/<study>.yaml)")
    return LoadedSpace(path=path, text=text, space=parse_space(text, str(path)))


def read_text(path: Path, error: type[HpoError], instead_of_folder: str) -> str:
    """A YAML file's text, or ``error`` naming the file: a folder, missing, unreadable, not UTF-8."""
    if path.is_dir():
        raise error(f"{path}: is a folder; {instead_of_folder}")
    if not path.is_file():
        raise error(f"{path}: file not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise error(
            f"{path}: is not UTF-8 text (byte {e.start}: {e.object[e.start : e.start + 1]!r}); save it as UTF-8"
        ) from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror})") from None


class StrictLoader(yaml.SafeLoader):
    """YAML without what a space file never needs and what hides mistakes or attacks: aliases
    (``*name``: anchors nested a few deep, a few hundred bytes, expand to gigabytes when the
    file is checked) and duplicate keys (YAML keeps the last one silently). A subclass names its
    kind of file in ``IN``."""

    IN = " in a space file"

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed{self.IN}; write the value out", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (YAML would keep only the last)", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_space(text: str, source: str = "<string>", strict: bool = True) -> SpaceFile:
    """Validate the YAML text of a space file; ``source`` names it in messages.

    ``strict`` refuses YAML aliases and duplicate keys; a space recorded by an earlier version of
    hpo is read without it (``strict=False``), so that studies made before stay readable."""
    try:
        raw = yaml.load(text, Loader=StrictLoader) if strict else yaml.safe_load(text)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark, ctx = e.problem_mark, e.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        context = f" ({e.context} at line {ctx.line + 1})" if ctx and e.context else ""
        raise SpaceError(f"{source}: invalid YAML{where}: {e.problem}{context}") from None
    except yaml.YAMLError as e:
        raise SpaceError(f"{source}: invalid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise SpaceError(f"{source}: must be a YAML mapping of keys (study, data, params, ...)")
    try:
        return SpaceFile.model_validate(raw)
    except ValidationError as e:
        found = problems(raw, e, text)
    raise SpaceError("\n".join(f"{source}: {line}" for line in found))


def schema() -> dict[str, Any]:
    """The JSON Schema of a space file, for editors."""
    return SpaceFile.model_json_schema()
