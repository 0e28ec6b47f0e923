"""Writing the space file: its header (what was not carried over, and why), one commented line per key, the file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hpo.errors import option
from hpo.sweep._findings import Findings, Keyed, SweepError, short
from hpo.sweep._params import Parameters

_SPLIT = {"validation": 0.2, "test": 0.2, "seed": 0}


@dataclass(frozen=True)
class SpaceDraft:
    """Every key of the space file to write, each with the comment naming where in the sweep (or the options) it came from."""

    study: Keyed
    data: str
    target: str
    version: str
    model: str
    metric: Keyed
    n_trials: Keyed | None
    sampler: Keyed
    pruner: Keyed
    params: Parameters


def space_text(draft: SpaceDraft, findings: Findings, name: Any, description: Any) -> str:
    """The space file: a header from ``findings`` and the sweep's ``name`` and ``description``, then the keys."""
    return "\n".join(_header(findings, name, description) + _keys(draft)) + "\n"


def _header(findings: Findings, name: Any, description: Any) -> list[str]:
    named = f" ({short(name)})" if name is not None else ""
    lines = [f"# Converted from the W&B sweep {findings.source}{named} by `hpo import-sweep`; see docs/import-sweep.md."]
    if isinstance(description, str) and description.strip():
        lines.append(f"# Its description: {' '.join(description.split())}")
    if findings.not_carried:
        lines.append("# Not carried over (no counterpart in a space file):")
        lines += [f"#   {' '.join(str(n).split())}" for n in findings.not_carried]
    lines += [f"# Note: {' '.join(n.split())}" for n in findings.notes]
    lines.append("# Check it, data and model included, with `hpo validate` before `hpo run`.")
    return lines


def _keys(d: SpaceDraft) -> list[str]:
    lines = [
        _line("study", d.study),
        "data:",
        _line("version", Keyed(d.version, "--version"), indent=2),
        _line("source", Keyed(d.data, "--data"), indent=2),
        _line("target", Keyed(d.target, "--target" if d.target != "target" else None), indent=2),
        _line("split", Keyed(_SPLIT, "hpo's default split"), indent=2),
        _line("model", Keyed(d.model, "--model" if d.model != "catboost" else "hpo's default model")),
        _line("metric", d.metric),
    ]
    if d.n_trials is not None:
        lines.append(_line("n_trials", d.n_trials))
    lines += [_line("sampler", d.sampler), _line("pruner", d.pruner), "params:"]
    lines += [_line(name, Keyed(p.spec, p.comment), indent=2) for name, p in d.params.tuned.items()]
    if d.params.fixed:
        lines.append("fixed:")
        lines += [_line(name, Keyed(value, "value"), indent=2) for name, value in d.params.fixed.items()]
    return lines


class _Dumper(yaml.SafeDumper):
    """Flow style on one line; no aliases (a space file refuses them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _line(key: str, entry: Keyed, indent: int = 0) -> str:
    text = f"{' ' * indent}{_flow(key)}: {_flow(entry.value)}"
    return f"{text}  # {' '.join(entry.comment.split())}" if entry.comment else text


def _flow(value: Any) -> str:
    out = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, sort_keys=False, width=1 << 30, allow_unicode=True)
    return out.removesuffix("\n").removesuffix("\n...").strip()


def check_output(path: str | Path, force: bool = False) -> None:
    """Refuse a path :func:`write_space_file` would refuse, before any work is done for it."""
    path = Path(path)
    if path.is_dir():
        raise SweepError(f"{path}: is a folder; give the space file's path (e.g. {path}/<study>.yaml)")
    if path.exists() and not force:
        raise _exists(path)


def write_space_file(path: str | Path, text: str, force: bool = False) -> None:
    """Write a space file; an existing file is replaced only with ``force``."""
    path = Path(path)
    check_output(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        if force:
            os.replace(tmp, path)
        else:
            path.hardlink_to(tmp)  # fails if the file appeared since the check: never overwrite by accident
    except FileExistsError:
        raise _exists(path) from None
    finally:
        tmp.unlink(missing_ok=True)


def _exists(path: Path) -> SweepError:
    """The refusal of a file that exists, naming the options that avoid it.

    The CLI's message has always named the output by its short flag ``-o`` (:func:`option` gives the long one).
    """
    other = "-o path" if option("path") == "--output" else option("path")
    return SweepError(f"{path}: already exists; give another {other}, or {option('force')} to overwrite it")
