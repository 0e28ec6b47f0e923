"""`hpo analyze`'s report as artifacts of the study's parent run in its HPO space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hpo.schema import ARTIFACT_ANALYSIS
from hpo.tracking._client import client
from hpo.tracking._projection import StudyProjection

if TYPE_CHECKING:
    from pathlib import Path

    import optuna

    from hpo.workspace import Workspace


def log_study_report(ws: Workspace, study: optuna.Study, files: Sequence[Path]) -> str:
    """Log ``files`` under ``analysis/`` of ``study``'s parent run (found or created); the run's id.

    Raises whatever MLflow raises: the caller decides whether a report that stays on disk is enough.
    """
    c = client()
    projection = StudyProjection.open(ws, study, c)
    for path in files:
        c.log_artifact(projection.parent_run_id, str(path), artifact_path=ARTIFACT_ANALYSIS)
    return projection.parent_run_id
