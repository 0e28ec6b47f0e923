"""What ``hpo analyze`` writes and where it shows: the report files, the derived space, optuna-dashboard, MLflow."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.analyze._derive import write_space
from hpo.analyze._report import figures, html_id, html_page, markdown
from hpo.analyze._results import Analysis
from hpo.schema import DASHBOARD_FIGURE_PREFIX
from hpo.secrets import masked, masked_url
from hpo.tracking import tracking_uri
from hpo.tracking._report import log_study_report
from hpo.workspace import relative_path

if TYPE_CHECKING:
    import optuna

    from hpo.analyze._inputs import StudyInput
    from hpo.workspace import Workspace

DASHBOARD_POINTS = 1000


@dataclass
class AnalyzeResult:
    """What :func:`~hpo.analyze.analyze_study` found, and where it wrote and showed it (filled in as it goes)."""

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


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote and drew, for the steps that publish it."""

    files: tuple[Path, ...]  # analysis.html, .md and .json
    figures: dict[str, Any]
    note: str


def write_report(
    ws: Workspace,
    given: StudyInput,
    analysis: Analysis,
    derived: tuple[str, Path, str | None] | None,
    result: AnalyzeResult,
) -> Report:
    """Write the report (``analysis.{html,md,json}``) and the derived space; what was written and drawn."""
    derived_rel = None if derived is None else relative_path(derived[1], ws.root)
    figs = figures(analysis, given.trials, given.metric)
    page = html_page(analysis, figs, given.metric, derived_rel)
    note = markdown(analysis, given.metric, derived_rel)
    out_dir = ws.study_dir(given.study.study_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    html, md, as_json = out_dir / "analysis.html", out_dir / "analysis.md", out_dir / "analysis.json"
    result.html = html
    _write(html, page)
    _write(md, note)
    if derived is not None:
        result.derived_study, path, text = derived
        if text is not None:
            write_space(path, text)
        result.derived_space = path
    # Written before the dashboard and MLflow steps, so it leaves out what only they can tell.
    on_disk = {k: v for k, v in result.as_dict().items() if k not in ("dashboard", "mlflow_run_id")}
    _write(as_json, json.dumps(on_disk, indent=2, default=str))
    return Report((html, md, as_json), figs, note)


def publish(
    ws: Workspace,
    given: StudyInput,
    analysis: Analysis,
    report: Report,
    result: AnalyzeResult,
    warn: Callable[[str], None],
) -> None:
    """The figures and note into the study for optuna-dashboard; the report into the study's parent run in MLflow."""
    figs = report.figures
    # The dashboard keeps figures in the storage, one row per 2 kB: draw at most DASHBOARD_POINTS there.
    if len(given.trials) > DASHBOARD_POINTS:
        figs = figures(analysis, given.trials, given.metric, max_points=DASHBOARD_POINTS)
    result.dashboard = _save_to_dashboard(given.study, figs, report.note, warn)
    if given.hpo_study:
        result.artifact_run_id = _log_to_mlflow(ws, given.study, report.files, warn)


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
            save_plotly_graph_object(s, fig, graph_object_id=DASHBOARD_FIGURE_PREFIX + html_id(name))
        save_note(s, note)
    except Exception as e:  # the report on disk stands even if the storage refuses the figures
        warn(f"could not save the analysis into the study for optuna-dashboard: {masked(f'{type(e).__name__}: {e}')}")
        return False
    return True


def _log_to_mlflow(ws: Workspace, s: optuna.Study, files: Sequence[Path], warn: Callable[[str], None]) -> str | None:
    """The report as artifacts of the study's parent run in its HPO space; None (and a warning) where MLflow fails."""
    try:
        return log_study_report(ws, s, files)
    except Exception as e:  # the report on disk stands without MLflow
        why = masked(f"{type(e).__name__}: {e}")  # MLflow's errors quote the tracking URI
        warn(f"could not log the report to MLflow at {masked_url(tracking_uri())} ({why}); it is in {files[0].parent}")
        return None
