"""`hpo analyze` as a library call: load a study, compute its trends, and write what they recommend.

Writes (unless ``write=False``): ``studies/<study>/analysis.{html,json,md}``; the figures and a
Markdown note into the study for optuna-dashboard; the HTML as an artifact of the study's parent
run in its MLflow HPO space; and, for a study hpo ran, the derived space under ``search_spaces/``.
Every input is checked before the first write. The steps read top to bottom in :func:`analyze_study`;
writing and publishing the report is :mod:`hpo.analyze._publish`'s.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hpo.analyze._derive import derive_space, next_study_name, parse_new_data
from hpo.analyze._inputs import AnalyzeOptions, StudyInput, open_study
from hpo.analyze._noise import NOISE_REFITS, fold_noise, measure_noise
from hpo.analyze._publish import AnalyzeResult, publish, write_report
from hpo.analyze._results import MIN_TRIALS, TOP_FRACTION, Analysis, Noise
from hpo.analyze._stats import analysis_of
from hpo.errors import HpoError, StudyError, option
from hpo.secrets import masked_url
from hpo.storage import study_names
from hpo.workspace import Workspace, load_workspace, on_import_path, relative_path


def analyze_study(
    study: str | None = None,
    *,
    params: Sequence[str] | None = None,
    storage: str | None = None,
    top: float = TOP_FRACTION,
    min_trials: int = MIN_TRIALS,
    importance: str | None = "ped-anova",
    write: bool = True,
    name: str | None = None,
    warm_start: bool = True,
    noise_refits: int | None = None,
    data_version: str | None = None,
    data_source: str | None = None,
    workspace: Workspace | None = None,
    warn: Callable[[str], None] = lambda _: None,
) -> AnalyzeResult:
    """Analyse ``study`` (default: the most recently created one) and write its report.

    Args:
        params: parameters to analyse (default: all); the derived space changes only these.
        storage: Optuna storage URL; default as for ``hpo run``. Given explicitly, it is recorded
            in the derived space's ``derived_from.storage`` (unless it holds a password).
        top: fraction of best trials whose range counts as "where the top trials sit".
        name: study name of the derived space (default ``<study>-gen<N>``).
        warm_start: the derived study sees the parent's trials as history (same data), and runs
            the parent's best configurations that fit it first.
        noise_refits: for a study hpo ran, re-fit the best trial with this many other seeds to
            measure the noise floor (0: no floor; below 2 nothing can be measured). None: a
            cross-validated study's fold spread (nothing re-fitted), else 3 re-fits.
        data_version: derive for this new data version (transfer: the parent's best
            configurations run first; no values are copied, since other data is not comparable).
        data_source: the new version's ``data.source`` (a path, ``sklearn:<name>``, or
            ``train=PATH,validation=PATH,test=PATH``); default: the parent's.
    """
    opts = AnalyzeOptions(
        params=None if params is None else tuple(params),
        top=top,
        min_trials=min_trials,
        importance=importance,
        write=write,
        name=name,
        warm_start=warm_start,
        noise_refits=noise_refits,
        storage=storage,
        data_version=data_version,
        data_source=data_source,
    )
    opts.check()
    new_data = parse_new_data(data_version, data_source)
    ws = workspace or load_workspace()
    on_import_path(ws.root)  # a study of the workspace's own model: its module is imported for re-fits and limits
    _check_sources(new_data, ws)
    url = ws.storage_url(storage)
    given = open_study(url, study, opts.params)
    taken = _check_derivation(given, opts, new_data, url, ws)
    noise = _noise(given, opts, ws, warn)
    settings = opts.settings(given.model)
    analysis = analysis_of(
        given.study.study_name, given.trials, given.direction, settings, params=opts.params, n_trials=given.n_trials, noise=noise
    )
    result = AnalyzeResult(analysis, given.metric, masked_url(url))  # shown and written (analysis.json): no password
    if not write:
        return result
    derived = _derived(given, analysis, opts, ws, taken, new_data, notes=result.notes)
    report = write_report(ws, given, analysis, derived, result)
    publish(ws, given, analysis, report, result, warn)
    return result


def _check_derivation(
    given: StudyInput, opts: AnalyzeOptions, new_data: dict[str, Any] | None, url: str, ws: Workspace
) -> set[str]:
    """Refuse a derivation that cannot be written; the study and space names in use (none without ``write``)."""
    name = given.study.study_name
    if new_data is not None and not given.hpo_study:
        raise StudyError(f"{option('data_version')}: study {name!r} was not run by hpo (no space recorded) to derive from")
    if new_data is not None and new_data["version"] == given.record.data_version:
        raise HpoError(
            f"{option('data_version', new_data['version'])}: study {name!r} ran on that version already; "
            "to derive for the same data, leave the option out"
        )
    taken = _taken(url, ws) if opts.write else set()
    if opts.name is not None and opts.name in taken:  # before the noise floor is kept in the study
        raise HpoError(
            f"{option('name', opts.name)}: a study or space file of that name exists already "
            f"({masked_url(url)}, {ws.search_spaces_dir})"
        )
    return taken


def _noise(given: StudyInput, opts: AnalyzeOptions, ws: Workspace, warn: Callable[[str], None]) -> Noise | None:
    """The study's noise floor: a cross-validated study's fold spread, else re-fits of its best trial (kept
    in the study when ``write``); None below ``min_trials`` or where it cannot be measured."""
    if len(given.trials) < opts.min_trials:
        return None
    folded = fold_noise(given.trials) if opts.noise_refits is None else None
    if folded is not None:
        return folded
    if opts.noise_refits != 0 and given.hpo_study:
        refits = opts.noise_refits or NOISE_REFITS
        return measure_noise(given.study, given.trials, given.direction, ws, refits, warn, keep=opts.write)
    return None


def _derived(
    given: StudyInput,
    analysis: Analysis,
    opts: AnalyzeOptions,
    ws: Workspace,
    taken: set[str],
    new_data: dict[str, Any] | None,
    *,
    notes: list[str],
) -> tuple[str, Path, str | None] | None:
    """The derived space to write (see :func:`_derive`), or None; why none, or why nothing new, goes to ``notes``."""
    if not given.hpo_study:
        notes.append("not a study hpo ran (no space recorded): no derived space written")
        return None
    if not analysis.enough and new_data is None:
        notes.append(f"fewer than {opts.min_trials} COMPLETE trials: no derived space written")
        return None
    derived = _derive(given, analysis, ws, taken, opts, new_data)
    if derived is None:
        notes.append("no parameter changes: no derived space written")
    elif derived[2] is None:
        rel = relative_path(derived[1], ws.root)
        notes.append(f"the derived space is the one an earlier analysis wrote, {rel}: nothing new written")
    return derived


def _derive(
    given: StudyInput,
    analysis: Analysis,
    ws: Workspace,
    taken: set[str],
    opts: AnalyzeOptions,
    new_data: dict[str, Any] | None,
) -> tuple[str, Path, str | None] | None:
    """The derived space's study name, path and text (None: an earlier analysis wrote the same space
    there); ``taken``: the study and space names in use."""
    version = None if new_data is None else new_data["version"]
    new = opts.name or next_study_name(given.study.study_name, taken, version)
    at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    storage = opts.storage
    recorded = storage if storage and not _has_password(storage) else None
    derived = derive_space(
        str(given.record.space_yaml), analysis, study=new, at=at, storage=recorded, warm_start=opts.warm_start, data=new_data
    )
    if derived is None:
        return None
    if opts.name is None:
        same = _same_derived_space(ws, derived.text)
        if same is not None:  # analyzed again, nothing new: point at that file rather than write a copy
            return same.stem, same, None
    return new, ws.search_spaces_dir / f"{new}.yaml", derived.text


def _same_derived_space(ws: Workspace, text: str) -> Path | None:
    """An earlier analysis's derived space with the same content as ``text`` (its study name and the
    time it was written aside), or None."""
    import yaml

    def key(raw: Any) -> Any:
        if not isinstance(raw, dict) or not isinstance(raw.get("derived_from"), dict):
            return None
        return {**raw, "study": None, "derived_from": {**raw["derived_from"], "at": None}}

    wanted = key(yaml.safe_load(text))
    for path in sorted(ws.search_spaces_dir.glob("*.yaml")):
        try:
            if key(yaml.safe_load(path.read_text(encoding="utf-8"))) == wanted:
                return path
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
    return None


def _taken(url: str, ws: Workspace) -> set[str]:
    return set(study_names(url)) | {p.stem for p in ws.search_spaces_dir.glob("*.yaml")}


def _check_sources(new_data: dict[str, Any] | None, ws: Workspace) -> None:
    """The new data version's files exist (relative paths are relative to the workspace, as in a space file)."""
    source = (new_data or {}).get("source")
    paths = list(source.values()) if isinstance(source, dict) else [source] if source else []
    for p in paths:
        if p.startswith("sklearn:"):
            continue
        path = Path(p) if Path(p).is_absolute() else ws.root / p
        if not path.is_file():
            raise HpoError(f"{option('data_source')}: {p} is not a file (relative paths start at the workspace, {ws.root})")


def _has_password(url: str) -> bool:
    return masked_url(url) != url
