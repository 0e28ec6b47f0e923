"""`hpo delete`: a study, its MLflow runs and its folder, after the checks that keep what must stay."""

from __future__ import annotations

from typing import Optional

import typer

from hpo.cli._guard import guarded
from hpo.cli._options import STORAGE_HELP


def delete(
    ctx: typer.Context,
    study: str = typer.Argument(..., help="Study name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking (needed when stdin is not a terminal)."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Delete even while the study has promoted runs (they are kept), derived studies or RUNNING trials, "
        "or while MLflow is unreachable (its runs there are then left).",
    ),
    storage: Optional[str] = typer.Option(None, help=STORAGE_HELP),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would be deleted and kept, and why it would be refused; delete nothing."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object: the plan with --dry-run, else what was deleted (with the plan)."
    ),
) -> None:
    """Delete a study: from the storage, its runs in its HPO space in MLflow, and its studies/<study>/ folder."""

    def body() -> None:
        import sys

        from hpo.cli._output import print_json
        from hpo.delete import DeletePlan, delete_study, plan_deletion
        from hpo.errors import HpoError
        from hpo.schema import TAG_STUDY
        from hpo.secrets import masked_url

        if dry_run:
            plan = plan_deletion(study, storage=storage)
            if as_json:
                print_json({"deleted": False, "plan": plan.as_dict()})
                return
            for line in plan.lines():
                typer.echo(line)
            refusal = plan.refusal(force)
            typer.echo(f"dry run: would be refused: {refusal}" if refusal else "dry run: nothing was deleted")
            return

        shown: list[DeletePlan] = []

        def confirm(plan: DeletePlan) -> bool:
            shown.append(plan)
            for line in plan.lines():
                typer.echo(line, err=True)
            if yes:
                return True
            if not sys.stdin.isatty():
                raise HpoError("stdin is not a terminal, so hpo cannot ask: pass --yes to delete; nothing was deleted")
            return typer.confirm(f"Delete study {study!r}?", default=False, err=True)

        r = delete_study(study, storage=storage, force=force, confirm=confirm)
        if as_json:
            print_json({"deleted": True, **r.as_dict(), "plan": shown[0].as_dict()})
            return
        parts = [f"{r.trials} trial(s) from {masked_url(r.storage)}"]
        if r.mlflow_problem is None:
            parts.append(f"{r.runs_deleted} MLflow run(s) (soft-deleted: `mlflow gc` removes them for good)")
        if r.folder:
            parts.append(f"{r.folder}/")
        typer.echo(f"Deleted study {r.study}: {', '.join(parts)}")
        if r.promoted_kept:
            typer.echo(f"Kept its {r.promoted_kept} promoted run(s) in the data-version experiment")
        if r.children_kept:
            typer.echo(f"Kept its derived studies: {', '.join(r.children_kept)}")
        if r.mlflow_problem:
            typer.echo(f"Kept its runs in MLflow (tag {TAG_STUDY} = {r.study!r}): {r.mlflow_problem}")

    guarded(body, ctx)
