"""`hpo analyze` as a library call: load a study, compute its trends, and write what they recommend.

Writes (unless ``write=False``): ``studies/<study>/analysis.{html,json,md}``; the figures and a
Markdown note into the study for optuna-dashboard; the HTML as an artifact of the study's parent
run in its MLflow HPO space; and, for a study hpo ran, the derived space under ``search_spaces/``.
Every input is checked before the first write.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.analyze._derive import derive_space, next_study_name, parse_new_data, write_space
from hpo.analyze._noise import MAX_NOISE_REFITS, NOISE_REFITS, fold_noise, measure_noise
from hpo.analyze._report import figures, html_id, html_page, markdown
from hpo.analyze._results import MIN_TRIALS, TOP_FRACTION, Analysis
from hpo.analyze._stats import analyze
from hpo.errors import HpoError, StudyError
from hpo.models import ModelSpec, model_spec
from hpo.schema import STUDY_DATA_VERSION, STUDY_METRIC, STUDY_MODEL, STUDY_SPACE_YAML, TRIAL_FOLD_VALUES
from hpo.secrets import masked, masked_url
from hpo.space import NAME_RE
from hpo.storage import complete_trials, load_named_or_newest, study_names, trial_counts
from hpo.tracking import StudyProjection, client, tracking_uri
from hpo.workspace import Workspace, load_workspace, on_import_path, relative_path

if TYPE_CHECKING:
    import optuna

IMPORTANCE_METHODS = ("ped-anova", "fanova", "mdi")
DASHBOARD_POINTS = 1000


@dataclass
class AnalyzeResult:
    analysis: Analysis
    metric: str
    storage: str
    html: Path | None = None
    derived_space: Path | None = None
    derived_study: str | None = None
    artifact_run_id: str | None = None
    dashboard: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = self.analysis.as_dict()
        out.update(
            metric=self.metric,
            storage=self.storage,
            html=None if self.html is None else str(self.html),
            derived_space=None if self.derived_space is None else str(self.derived_space),
            derived_study=self.derived_study,
            mlflow_run_id=self.artifact_run_id,
            dashboard=self.dashboard,
            notes=self.notes,
        )
        return out


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
    if not 0 < top < 1:
        raise HpoError(f"--top must lie strictly between 0 and 1 (a fraction of trials), but got {top}")
    if min_trials < 3:
        raise HpoError(f"--min-trials must be >= 3, but got {min_trials}")
    if noise_refits is not None and (noise_refits < 0 or noise_refits == 1 or noise_refits > MAX_NOISE_REFITS):
        raise HpoError(
            f"--noise-refits must be 0 (no noise floor) or 2 to {MAX_NOISE_REFITS} (each is one more fit), but got {noise_refits}"
        )
    if importance is not None and importance not in IMPORTANCE_METHODS:
        raise HpoError(f"--importance must be one of {', '.join(IMPORTANCE_METHODS)} or none, but got {importance!r}")
    if name is not None and not NAME_RE.match(name):
        raise HpoError(f"--name must start with a letter or digit and hold only letters, digits, '.', '_', '-', but got {name!r}")
    if data_source is not None and data_version is None:
        raise HpoError("--data-source needs --data-version: a new source is a new data version")
    new_data = parse_new_data(data_version, data_source)
    ws = workspace or load_workspace()
    on_import_path(ws.root)  # a study of the workspace's own model: its module is imported for re-fits and limits
    _check_sources(new_data, ws)
    url = ws.storage_url(storage)
    s = _load(url, study)
    if len(s.directions) != 1:
        raise StudyError(
            f"study {s.study_name!r} has {len(s.directions)} objectives; hpo analyze handles single-objective studies"
        )
    trials = complete_trials(s, attrs=(TRIAL_FOLD_VALUES,))
    counts = trial_counts(s)
    n_trials = sum(counts.values())
    if not trials:  # nothing to analyse: an empty table and a report would read as a finding
        states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"
        raise StudyError(f"study {s.study_name!r} has no COMPLETE trial: {n_trials} trials, states {states}")
    attrs = s.user_attrs
    known = {n for t in trials or s.get_trials(deepcopy=False) for n in t.distributions}
    for p in params or ():
        if p not in known:
            raise HpoError(
                f"--param {p}: study {s.study_name!r} has no parameter {p!r} (it has: {', '.join(sorted(known)) or 'none'})"
            )

    model = _family(str(attrs.get(STUDY_MODEL)))
    metric = str(attrs.get(STUDY_METRIC) or "objective")
    direction = "maximize" if s.direction.name == "MAXIMIZE" else "minimize"
    if new_data is not None and not attrs.get(STUDY_SPACE_YAML):
        raise StudyError(f"--data-version: study {s.study_name!r} was not run by hpo (no space recorded) to derive from")
    if new_data is not None and new_data["version"] == attrs.get(STUDY_DATA_VERSION):
        raise HpoError(
            f"--data-version {new_data['version']}: study {s.study_name!r} ran on that version already; "
            "to derive for the same data, leave the option out"
        )
    taken = _taken(url, ws) if write else set()
    if name is not None and name in taken:  # before the noise floor is kept in the study
        raise HpoError(
            f"--name {name}: a study or space file of that name exists already ({masked_url(url)}, {ws.search_spaces_dir})"
        )
    noise = None
    folded = fold_noise(trials) if noise_refits is None and len(trials) >= min_trials else None
    if folded is not None:
        noise = folded
    elif noise_refits != 0 and attrs.get(STUDY_SPACE_YAML) and len(trials) >= min_trials:
        noise = measure_noise(s, trials, direction, ws, noise_refits or NOISE_REFITS, warn, keep=write)
    analysis = analyze(
        s.study_name,
        trials,
        direction,  # type: ignore[arg-type]
        params=params,
        top=top,
        min_trials=min_trials,
        hard_limits=dict(model.hard_limits) if model else None,
        importance=importance,  # type: ignore[arg-type]
        n_trials=n_trials,
        noise=noise,
    )
    result = AnalyzeResult(analysis, metric, masked_url(url))  # shown and written (analysis.json): no password
    if not write:
        return result

    derived = None
    hpo_study = bool(attrs.get(STUDY_SPACE_YAML))
    if hpo_study and (analysis.enough or new_data is not None):
        derived = _derive(s, analysis, ws, taken, storage, name, warm_start, new_data)
        if derived is None:
            result.notes.append("no parameter changes: no derived space written")
    elif not hpo_study:
        result.notes.append("not a study hpo ran (no space recorded): no derived space written")
    else:
        result.notes.append(f"fewer than {min_trials} COMPLETE trials: no derived space written")

    derived_rel = None
    if derived is not None:
        result.derived_study, path, text = derived
        derived_rel = relative_path(path, ws.root)
        if text is None:
            result.notes.append(f"the derived space is the one an earlier analysis wrote, {derived_rel}: nothing new written")
    figs = figures(analysis, trials, metric)
    page = html_page(analysis, figs, metric, derived_rel)
    note = markdown(analysis, metric, derived_rel)
    out_dir = ws.study_dir(s.study_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    result.html = out_dir / "analysis.html"
    _write(result.html, page)
    _write(out_dir / "analysis.md", note)
    if derived is not None:
        if text is not None:
            write_space(path, text)
        result.derived_space = path
    # Written before the dashboard and MLflow steps, so it leaves out what only they can tell.
    on_disk = {k: v for k, v in result.as_dict().items() if k not in ("dashboard", "mlflow_run_id")}
    _write(out_dir / "analysis.json", json.dumps(on_disk, indent=2, default=str))

    # The dashboard keeps figures in the storage, one row per 2 kB: draw at most DASHBOARD_POINTS there.
    if len(trials) > DASHBOARD_POINTS:
        figs = figures(analysis, trials, metric, max_points=DASHBOARD_POINTS)
    result.dashboard = _save_to_dashboard(s, figs, note, warn)
    if hpo_study:
        result.artifact_run_id = _log_to_mlflow(ws, s, out_dir, warn)
    return result


def _load(url: str, name: str | None) -> optuna.Study:
    return load_named_or_newest(url, name)


def _derive(
    s: optuna.Study,
    analysis: Analysis,
    ws: Workspace,
    taken: set[str],
    storage: str | None,
    name: str | None,
    warm_start: bool,
    new_data: dict[str, Any] | None,
) -> tuple[str, Path, str | None] | None:
    """The derived space's study name, path and text (None: an earlier analysis wrote the same space
    there); ``taken``: the study and space names in use."""
    new = name or next_study_name(s.study_name, taken, None if new_data is None else new_data["version"])
    at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    recorded = storage if storage and not _has_password(storage) else None
    derived = derive_space(
        s.user_attrs[STUDY_SPACE_YAML], analysis, study=new, at=at, storage=recorded, warm_start=warm_start, data=new_data
    )
    if derived is None:
        return None
    if name is None:
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
            raise HpoError(f"--data-source: {p} is not a file (relative paths start at the workspace, {ws.root})")


def _has_password(url: str) -> bool:
    return masked_url(url) != url


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _save_to_dashboard(s: optuna.Study, figs: dict[str, Any], note: str, warn: Callable[[str], None]) -> bool:
    """The figures and the note, stored in the study where optuna-dashboard shows them."""
    try:
        from optuna_dashboard import save_note, save_plotly_graph_object

        for name, fig in figs.items():
            # A stable id per parameter: a second analysis replaces the figure instead of adding one.
            save_plotly_graph_object(s, fig, graph_object_id="hpo-analyze-" + html_id(name))
        save_note(s, note)
    except Exception as e:  # the report on disk stands even if the storage refuses the figures
        warn(f"could not save the analysis into the study for optuna-dashboard: {masked(f'{type(e).__name__}: {e}')}")
        return False
    return True


def _log_to_mlflow(ws: Workspace, s: optuna.Study, out_dir: Path, warn: Callable[[str], None]) -> str | None:
    """The report as artifacts of the study's parent run in its HPO space."""
    try:
        c = client()
        projection = StudyProjection.open(ws, s, c)
        for fname in ("analysis.html", "analysis.md", "analysis.json"):
            c.log_artifact(projection.parent_run_id, str(out_dir / fname), artifact_path="analysis")
    except Exception as e:
        why = masked(f"{type(e).__name__}: {e}")  # MLflow's errors quote the tracking URI
        warn(f"could not log the report to MLflow at {masked_url(tracking_uri())} ({why}); it is in {out_dir}")
        return None
    return projection.parent_run_id


def _family(model: str) -> ModelSpec | None:
    """The study's model family (for its hard limits), or None where it cannot be imported here."""
    try:
        return model_spec(model)
    except ValueError:
        return None
