"""A space file's problems in hpo's words, all at once.

pydantic reports what breaks its schema in its own words ("Input should be greater than 0") and
skips a model's cross-key rules when a key below it is wrong; the model's parameter names are
checked later still. Here every error is translated to one line naming the key, the rule and the
value as the file spells it (a word YAML read as a boolean is named, with how to quote it), a
misspelt key gets the closest known one, and the cross-key and model-parameter rules run on the
raw file too, so that fixing one problem never reveals the next.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from hpo.data import data_rules
from hpo.space._file import SpaceFile, space_rules
from hpo.space._params import Param
from hpo.space._suggest import did_you_mean

# pydantic's error types, in hpo's words: what the value must be.
_MUST_BE = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
}
_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}

# Fields holding a tagged union: pydantic puts the variant's tag after them in an error's path
# (`params.depth.int.low`, `data.split.ratio.test`); a user never wrote that tag, so drop it.
_UNION_FIELDS = {("sampler",), ("pruner",), ("data", "source"), ("data", "split")}


def problems(raw: dict[Any, Any], error: ValidationError, text: str) -> list[str]:
    """Every problem of a file that failed validation, one line each (without the file's name)."""
    nodes = _Nodes(text)
    lines: list[str] = []
    for err in error.errors():
        lines += describe(err, nodes).splitlines()
    lines += _rule_problems(raw) + _model_problems(raw)
    return list(dict.fromkeys(lines))  # a rule pydantic ran is found again on the raw file


def describe(err: Any, nodes: _Nodes | None = None) -> str:
    """One pydantic error as hpo says it: key path, rule, value."""
    kind, inp, loc = err["type"], err.get("input"), tuple(err["loc"])
    if loc and loc[-1] == "[key]":  # a mapping's key that is not a string: `fixed: {yes: 1}`
        parent = _strip_tags(loc[:-2])
        node = nodes.key(parent, loc[-2]) if nodes else None
        word, read = (node.value, nodes.read(node)) if nodes and node is not None else (_yaml(loc[-2]), loc[-2])
        return f'`{_dotted(parent)}` has the key {word}, which YAML read as {_kind_of(read)}; quote it: `"{word}": ...`'
    path = _strip_tags(loc)
    key = _dotted(path)
    if kind == "union_tag_invalid":
        tag = err["ctx"]["discriminator"].strip("'")
        expected = re.findall(r"'([^']*)'", err["ctx"]["expected_tags"])
        got = inp.get(tag) if isinstance(inp, dict) else inp
        return f"`{key}.{tag}` must be one of {', '.join(expected)}, but got {_got(got)}{did_you_mean(got, expected)}"
    if kind == "union_tag_not_found":
        return f"`{key}` needs a `{err['ctx']['discriminator'].strip(chr(39))}` key"
    if kind == "extra_forbidden":
        return f"`{key}` is not a known key{did_you_mean(loc[-1], _fields_at(loc[:-1]))} (see `hpo schema`)"
    if kind == "missing":
        return f"`{key}` is required"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", err["ctx"]["expected"])
        return f"`{key}` must be one of {', '.join(expected)}, but got {_got(inp)}{did_you_mean(inp, expected)}"
    if kind in _BOUNDS:
        op, name = _BOUNDS[kind]
        bound = err["ctx"][name]
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound  # `timeout` > 0, not > 0.0
        return f"`{key}` must be {op} {bound}, but got {_got(inp)}"
    if kind == "string_type" and (isinstance(inp, (bool, int, float))):
        node = nodes.value(path) if nodes else None
        word = node.value if node is not None else _yaml(inp)
        quoted = f'{path[-1]}: "{word}"' if path and isinstance(path[-1], str) else f'"{word}"'
        return f"`{key}` must be a string, but YAML read {word} as {_kind_of(inp)}; quote it: `{quoted}`"
    if kind in _MUST_BE:
        return f"`{key}` must be {_MUST_BE[kind]}, but got {_got(inp)}"
    lines = err["msg"].removeprefix("Value error, ").splitlines()  # hpo's own rules: already its words
    return "\n".join(_at(path, line) for line in lines)


def _at(path: list[Any], msg: str) -> str:
    """``msg`` of the model at ``path`` as a line naming its key: a rule naming its field (`low`) reads `params.depth.low`."""
    key = _dotted(path)
    last = f"`{path[-1]}`" if path else ""
    if last and msg.startswith(last):
        return f"`{key}`{msg[len(last) :]}"
    if key and msg.startswith("`"):
        return f"`{key}.{msg[1:]}"
    return f"`{key}` {msg}" if key else msg


def _strip_tags(loc: tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    skip = False
    for part in loc:
        if skip:
            skip = False
            continue
        out.append(part)
        here = tuple(map(str, out))
        skip = here in _UNION_FIELDS or (len(here) == 2 and here[0] == "params")
    return out


def _dotted(path: list[Any]) -> str:
    return ".".join(map(str, path))


def _yaml(value: Any) -> str:
    """A value as a space file spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {_yaml(value)}"
    return "a number"


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None or isinstance(value, bool):
        return _yaml(value)
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


class _Nodes:
    """The YAML nodes of a file, to name a value as the file spells it (``YES``, not ``True``)."""

    def __init__(self, text: str) -> None:
        self._loader = yaml.SafeLoader(text)
        try:
            self._root = self._loader.get_single_node()
        except yaml.YAMLError:
            self._root = None

    def value(self, path: list[Any]) -> Any:
        """The scalar node at ``path``, or None."""
        node = self._walk(path)
        return node if isinstance(node, yaml.ScalarNode) else None

    def key(self, path: list[Any], key: Any) -> Any:
        """The node of ``key`` in the mapping at ``path``, or None."""
        found = self._find(self._walk(path), key)
        return None if found is None else found[0]

    def _walk(self, path: list[Any]) -> Any:
        node = self._root
        for part in path:
            node = self._child(node, part)
        return node

    def _child(self, node: Any, part: Any) -> Any:
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            return node.value[part]
        found = self._find(node, part)
        return None if found is None else found[1]

    def read(self, node: Any) -> Any:
        """The value YAML reads from a scalar ``node`` (``YES`` is true)."""
        try:
            return self._loader.construct_object(node)
        except yaml.YAMLError:
            return None

    def _find(self, node: Any, key: Any) -> tuple[Any, Any] | None:
        if not isinstance(node, yaml.MappingNode):
            return None
        for k, v in node.value:
            read = self.read(k) if isinstance(k, yaml.ScalarNode) else None
            # pydantic names a key it could not take as read (true) or as a number (1, for true == 1)
            if read is not None and (read == key or str(read) == str(key)):
                return k, v
        return None


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys a space file may hold at ``loc`` (pydantic's path, with its union tags)."""
    node: Any = SpaceFile
    for part in loc:
        node = _child_type(node, part)
        if node is None:
            return []
    while typing.get_origin(node) is typing.Annotated:
        node = typing.get_args(node)[0]
    if typing.get_origin(node) in (Union, types.UnionType):  # an optional section: `cv: {...}` or none
        models = [m for m in typing.get_args(node) if isinstance(m, type) and issubclass(m, BaseModel)]
        node = models[0] if len(models) == 1 else None
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _child_type(node: Any, part: Any) -> Any:
    if isinstance(node, type) and issubclass(node, BaseModel):
        field = node.model_fields.get(str(part))
        return None if field is None else field.annotation
    while typing.get_origin(node) is typing.Annotated:
        node = typing.get_args(node)[0]
    origin = typing.get_origin(node)
    if origin is dict:
        return typing.get_args(node)[1]
    if origin is list:
        return typing.get_args(node)[0]
    if origin in (Union, types.UnionType):
        members = [m for m in typing.get_args(node) if m is not type(None)]
        for member in members:
            tags = [getattr(meta, "tag", None) for meta in getattr(member, "__metadata__", ())]
            inner = typing.get_args(member)[0] if tags else member
            if part in tags or _literal_tag(inner, part):
                return inner
        if len(members) == 1:  # an optional value, no tag in the path
            return _child_type(members[0], part)
        nested = [_child_type(m, part) for m in members if typing.get_origin(m) is typing.Annotated]
        return next((n for n in nested if n is not None), None)
    return None


def _literal_tag(model: Any, tag: Any) -> bool:
    """Whether ``model`` is a union variant picked by ``tag`` (a field like ``name: Literal["tpe"]``)."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return False
    return any(
        typing.get_origin(f.annotation) is Literal and tag in typing.get_args(f.annotation) for f in model.model_fields.values()
    )


def _rule_problems(raw: dict[Any, Any]) -> list[str]:
    """The cross-key rules, on the raw file: pydantic skips a model's rules when a key below it is wrong."""
    out: list[str] = []
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("source"), (str, dict)):
        rules = data_rules(
            isinstance(data["source"], dict), data.get("split") is not None, data.get("target", "target"), data.get("drop", [])
        )
        out += [_at(["data"], line) for line in rules]
    sampler, pruner, cv = raw.get("sampler"), raw.get("pruner"), raw.get("cv")
    warmup = pruner.get("n_warmup_steps", 0) if isinstance(pruner, dict) else 0
    folds, repeats = (cv.get("folds"), cv.get("repeats", 1)) if isinstance(cv, dict) else (None, None)
    whole = all(isinstance(n, int) and not isinstance(n, bool) for n in (folds, repeats, warmup))
    out += space_rules(
        budget=raw.get("n_trials") is not None or raw.get("timeout") is not None,
        sampler=sampler.get("name") if isinstance(sampler, dict) else "tpe" if sampler is None else None,
        params=list(raw["params"]) if isinstance(raw.get("params"), dict) else [],
        fixed=list(raw["fixed"]) if isinstance(raw.get("fixed"), dict) else [],
        task=raw.get("task") if raw.get("task") in ("regression", "classification") else None,
        metric=raw.get("metric") if isinstance(raw.get("metric"), str) else None,
        warmup=warmup if whole else None,
        fits=folds * repeats if whole else None,  # type: ignore[operator]
    )
    return out


def _model_problems(raw: dict[Any, Any]) -> list[str]:
    """The model's checks of parameter names and ranges (``hpo validate`` runs them once the file is valid).

    Only for the built-in model and scikit-learn estimators: a training function is imported from the
    workspace, which is put on the import path only once the file is valid.
    """
    from hpo.models import MODELS, ModelImportError, check_model_params, is_class_path

    model = raw.get("model", "catboost")
    if not isinstance(model, str) or (model not in MODELS and not is_class_path(model)):
        return []
    params = raw.get("params") if isinstance(raw.get("params"), dict) else {}
    fixed = raw.get("fixed") if isinstance(raw.get("fixed"), dict) else {}
    assert isinstance(params, dict) and isinstance(fixed, dict)
    adapter: TypeAdapter[Any] = TypeAdapter(Param)
    typed: dict[str, Any] = {}
    for name, p in params.items():
        if not isinstance(name, str):
            continue  # a key YAML read as a boolean or number: reported above, not as an unknown parameter
        try:
            typed[name] = adapter.validate_python(p)
        except ValidationError:
            typed[name] = None  # its name is still checked; its range is reported above
    try:
        return check_model_params(model, typed, {k: v for k, v in fixed.items() if isinstance(k, str)})
    except ModelImportError:
        return []  # reported once the file is valid, with the workspace on the import path
