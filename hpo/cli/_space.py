"""`hpo validate` and `hpo schema`."""

from __future__ import annotations

from pathlib import Path

import typer

from hpo.cli import app, guarded


@app.command()
def validate(
    space: Path = typer.Argument(..., help="Search-space YAML file."),
) -> None:
    """Check a space file and its data without running or writing anything."""

    def body() -> None:
        from hpo.prepare import check_writable, prepare

        prep = prepare(space)
        check_writable(prep.workspace)  # the storage `hpo run` would write (an SQLite file is read, not opened)
        d = prep.data
        rows = ", ".join(f"{s} {getattr(d, s).rows}" for s in ("train", "validation", "test"))
        shown = ", ".join(map(repr, d.classes[:10])) + (", ..." if len(d.classes) > 10 else "")
        classes = f", {len(d.classes)} classes: {shown}" if d.classes else ""
        typer.echo(
            f"{space}: ok: study {prep.space.study!r}, {len(prep.space.params)} tuned params, "
            f"{d.task} on {d.target!r} ({rows} rows, {len(d.features)} features{classes}), "
            f"metric {prep.space.metric} ({prep.space.direction})"
        )

    guarded(body)


@app.command()
def schema() -> None:
    """Print the JSON Schema of a space file (for editor completion)."""
    from hpo.cli._output import print_json
    from hpo.space import schema as get_schema

    print_json(get_schema(), indent=2)
