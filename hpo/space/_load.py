"""Loading a space file: YAML to :class:`SpaceFile`, every problem one line naming the file, the key
path and the rule; and the JSON Schema.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
)

from hpo.errors import HpoError, SpaceError
from hpo.space._file import SpaceFile


class LoadedSpace(BaseModel):
    """A validated space with the text it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    text: str
    space: SpaceFile

    @property
    def text_sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_space(path: str | Path) -> LoadedSpace:
    """Read and validate a space file; raise :class:`SpaceError` listing every problem."""
    path = Path(path)
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
            event = self.peek_event()
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
        raise SpaceError("\n".join(_describe(err, source) for err in e.errors())) from None


def _describe(err: Any, source: str) -> str:
    """One line for one pydantic error: file, key path, rule, value."""
    kind = err["type"]
    inp = err.get("input")
    key = ".".join(_strip_tags(err["loc"]))
    if kind == "union_tag_invalid":
        tag = err["ctx"]["discriminator"].strip("'")
        expected = err["ctx"]["expected_tags"].replace("'", "")
        got = inp.get(tag) if isinstance(inp, dict) else inp
        return f"{source}: `{key}.{tag}` must be one of {expected}, but got {got!r}"
    if kind == "union_tag_not_found":
        tag = err["ctx"]["discriminator"].strip("'")
        return f"{source}: `{key}` needs a `{tag}` key"
    if kind == "extra_forbidden":
        return f"{source}: `{key}` is not a known key (see `hpo schema`)"
    if kind == "missing":
        return f"{source}: `{key}` is required"
    msg = err["msg"].removeprefix("Value error, ")
    if kind in ("model_type", "model_attributes_type", "dict_type"):  # not pydantic's class names: a mapping
        msg = "Input should be a mapping of keys to values"
    if kind.startswith(("greater_than", "less_than")) or kind.endswith(("_type", "_parsing")):
        msg = f"{msg}, but got {inp!r}"
    last = f"`{loc[-1]}`" if (loc := _strip_tags(err["loc"])) else ""
    if last and msg.startswith(last):
        return f"{source}: `{key}`{msg[len(last) :]}"
    if key and msg.startswith("`"):
        # A model's own rule names its field: `low` at params.depth reads `params.depth.low`.
        return f"{source}: `{key}.{msg[1:]}"
    return f"{source}: `{key}` {msg}" if key else f"{source}: {msg}"


# Fields holding a tagged union: pydantic puts the variant's tag after them in an error's path
# (`params.depth.int.low`, `data.split.ratio.test`); a user never wrote that tag, so drop it.
_UNION_FIELDS = {("sampler",), ("pruner",), ("data", "source"), ("data", "split")}


def _strip_tags(loc: tuple[Any, ...]) -> list[str]:
    out: list[str] = []
    skip = False
    for part in loc:
        if skip:
            skip = False
            continue
        out.append(str(part))
        here = tuple(out)
        skip = here in _UNION_FIELDS or (len(here) == 2 and here[0] == "params")
    return out


def schema() -> dict[str, Any]:
    """The JSON Schema of a space file, for editors."""
    return SpaceFile.model_json_schema()
