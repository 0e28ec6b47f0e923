"""`hpo validate` and `hpo schema`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hpo.cli import app, guarded

if TYPE_CHECKING:
    from hpo.prepare import Prepared


@app.command()
def validate(
    space: Path = typer.Argument(..., help="Search-space YAML file."),
) -> None:
    """Check a space file and its data without running or writing anything."""

    def body() -> None:
        from hpo.ledger import check_data
        from hpo.prepare import check_writable, prepare
        from hpo.tracking import read_tracked

        prep = prepare(space)
        url = check_writable(prep.workspace)  # the storage `hpo run` would write (an SQLite file is read, not opened)
        # The data ledger: the version's digests, if the storage or its MLflow experiment knows them.
        check_data(url, prep.data, prep.where, read_tracked(prep.workspace, prep.data.version)[1])
        d = prep.data
        rows = ", ".join(f"{s} {getattr(d, s).rows}" for s in ("train", "validation", "test"))
        shown = ", ".join(map(repr, d.classes[:10])) + (", ..." if len(d.classes) > 10 else "")
        classes = f", {len(d.classes)} classes: {shown}" if d.classes else ""
        typer.echo(
            f"{space}: ok: study {prep.space.study!r}, {len(prep.space.params)} tuned params, "
            f"{d.task} on {d.target!r} ({rows} rows, {len(d.features)} features{classes}), "
            f"metric {prep.space.metric} ({prep.space.direction})" + _scoring(prep)
        )

    guarded(body)


def _scoring(prep: Prepared) -> str:
    if prep.folds is None:
        return ""
    cv = prep.space.cv
    assert cv is not None
    held = sorted({f.validation.rows for f in prep.folds})
    rows = "-".join(map(str, (held[0], held[-1]) if len(held) > 1 else held))
    return f", {cv.folds}-fold cv x {cv.repeats} repeat(s) ({len(prep.folds)} fits per trial, {rows} held-out rows each)"


@app.command()
def schema() -> None:
    """Print the JSON Schema of a space file (for editor completion)."""
    from hpo.cli._output import print_json
    from hpo.space import schema as get_schema

    print_json(get_schema(), indent=2)
