"""Derived spaces: the next search space an analysis recommends.

A derived space is the parent study's space file with the recommended ranges, fixed values and
dropped choices applied, a new study name, and ``derived_from`` (parent, time, one line per
change). Every other setting is carried over as the parent recorded it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hpo.analyze._results import Analysis
from hpo.errors import HpoError, option
from hpo.space import parse_space

_GEN_RE = re.compile(r"^(?P<base>.+)-gen(?P<n>\d+)\Z")
_VERSION_SUFFIX_RE = re.compile(r"-v\d+\.\d+\.\d+(-gen\d+)?\Z")


def parse_new_data(version: str | None, source: str | None) -> dict[str, Any] | None:
    """``analyze_study``'s ``data_version`` and ``data_source`` as a ``data`` section update, checked."""
    if version is None:
        return None
    from hpo.data import VERSION_RE

    if not VERSION_RE.match(version):
        raise HpoError(f"{option('data_version')} must look like v<MAJOR>.<MINOR>.<PATCH> (e.g. v0.2.0), but got {version!r}")
    out: dict[str, Any] = {"version": version}
    if source is not None:
        if "=" in source:
            parts = dict(p.split("=", 1) for p in source.split(",") if "=" in p)
            if set(parts) != {"train", "validation", "test"} or source.count("=") != 3:
                raise HpoError(
                    f"{option('data_source')} with '=' must be train=PATH,validation=PATH,test=PATH, but got {source!r}"
                )
            out["source"] = parts
        elif not source.strip():
            raise HpoError(f"{option('data_source')} must not be empty")
        else:
            out["source"] = source
    return out


@dataclass(frozen=True)
class DerivedSpace:
    study: str
    text: str
    changes: list[str]


def derive_space(
    parent_yaml: str,
    analysis: Analysis,
    *,
    study: str,
    at: str,
    storage: str | None,
    warm_start: bool,
    data: dict[str, Any] | None = None,
) -> DerivedSpace | None:
    """The parent's space with the analysis' recommendations applied, or None if nothing changes.

    ``data``: a new data version (``version``, optionally ``source``) for the derived space: it is
    then written even when no parameter changes, to search the new data from what the parent learned.
    Only moved edges (``widen``) carry over to new data: the parent's best configurations, which run
    first, carry the rest. Measured (``benchmarks/narrowing_quality.py``, 20 seeds on 2 datasets),
    narrowed, fixed and dropped ranges did not beat the parent's space with its bests run first, and
    they excluded the best configuration of a long reference study in 22 of 40 transfers.
    """
    raw = yaml.safe_load(parent_yaml)
    params: dict[str, Any] = raw["params"]
    fixed: dict[str, Any] = dict(raw.get("fixed") or {})
    changes: list[str] = []
    for name, pa in analysis.params.items():
        rec = pa.recommendation
        if name not in params or rec.kind in ("keep", "none"):
            continue
        if data is not None and rec.kind != "widen":
            changes.append(f"{name}: {rec.kind} not carried to new data (only moved edges are): {rec.reason}")
            continue
        if rec.kind in ("narrow", "widen"):
            params[name] = {**params[name], "low": rec.low, "high": rec.high}
        elif rec.kind == "fix":
            if len(params) == 1:
                continue  # a space needs one parameter to tune: keep the last one searched
            del params[name]
            fixed[name] = rec.value
        elif rec.kind == "drop":
            params[name] = {**params[name], "choices": rec.choices}
        changes.append(f"{name}: {rec.kind}: {rec.reason}")
    if data is not None:
        old = raw["data"].get("version")
        raw["data"] = {**raw["data"], **data}
        if isinstance(data.get("source"), dict):
            raw["data"].pop("split", None)  # three files are the split
        changes.append(
            f"data: {old} -> {data['version']}: a new data version; where its split digests differ from the "
            "parent's (transfer), the parent's best configurations that fit this space run first and no value is copied"
        )
    if not changes:
        return None
    raw["study"] = study
    # A new sampler seed: with the parent's, the derived study would replay the parent's random draws.
    raw["seed"] = int(raw.get("seed") or 0) + 1
    raw["params"] = params
    if fixed:
        raw["fixed"] = fixed
    raw["derived_from"] = {"study": analysis.study, "at": at, "storage": storage, "reasons": changes, "warm_start": warm_start}
    text = (
        f"# Derived by `hpo analyze` from study {analysis.study} ({analysis.n_complete} COMPLETE trials) at {at}.\n"
        f"# Run it with: hpo run search_spaces/{study}.yaml\n" + yaml.dump(raw, Dumper=_Dumper, sort_keys=False, width=10_000)
    )
    parse_space(text, f"derived space {study}")  # what is written must load
    return DerivedSpace(study, text, changes)


def next_study_name(parent: str, taken: set[str], data_version: str | None = None) -> str:
    """``name`` -> ``name-gen2`` -> ``name-gen3``; skipping names already taken. For a new data
    version: ``name-v0.1.0`` -> ``name-v0.2.0`` (``name`` -> ``name-v0.2.0``), then ``-gen2`` on."""
    if data_version is not None:
        base = _VERSION_SUFFIX_RE.sub("", parent)
        new = f"{base}-{data_version}"
        return new if new not in taken else next_study_name(new, taken)
    m = _GEN_RE.match(parent)
    base, n = (m["base"], int(m["n"]) + 1) if m else (parent, 2)
    while f"{base}-gen{n}" in taken:
        n += 1
    return f"{base}-gen{n}"


def write_space(path: Path, text: str) -> None:
    """Write a new space file; never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        path.hardlink_to(tmp)  # atomic, and fails if the file exists
    except FileExistsError:
        raise HpoError(f"{path}: already exists; give the derived study another name with {option('name')}") from None
    finally:
        tmp.unlink(missing_ok=True)


class _Dumper(yaml.SafeDumper):
    """Block style for sections, flow style for one parameter (`depth: {type: int, low: 2, high: 10}`);
    no aliases (a space file refuses them), even where two values are the same object."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    leaf = all(not isinstance(v, dict) for v in data.values()) and "type" in data
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=leaf or None)


_Dumper.add_representer(dict, _represent_dict)
