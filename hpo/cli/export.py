"""`hpo export`: a study's trials as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hpo.cli._guard import guarded
from hpo.cli._options import STORAGE_HELP, STUDY_HELP


def export(
    ctx: typer.Context,
    study: Optional[str] = typer.Option(None, "--study", "-s", help=STUDY_HELP),
    fmt: Optional[str] = typer.Option(
        None, "--format", "-f", help="csv, json or parquet. Default: from the suffix of -o, else csv."
    ),
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="File to write. An existing regular file is replaced; a folder, device, FIFO, symbolic link, "
        "database or store of the workspace never is. Default: stdout.",
    ),
    follow_symlinks: bool = typer.Option(
        False, "--follow-symlinks", help="When -o is a symbolic link, write to its target (which passes the same checks)."
    ),
    storage: Optional[str] = typer.Option(None, help=STORAGE_HELP),
    as_json: bool = typer.Option(
        False, "--json", help="With -o: print one JSON object describing the file written (path, format, trials, states)."
    ),
) -> None:
    """Export a study's trials, one row per trial: state, value, params, seed, times, error, MLflow run."""

    def body() -> None:
        import sys

        from hpo.cli._output import print_json
        from hpo.errors import HpoError
        from hpo.export import check_target, encode, export_format, export_trials, summary, write_file

        if as_json and output is None:
            raise HpoError("--json describes the file written with -o FILE; for the trials themselves as JSON, use --format json")
        name = export_format(fmt, output)
        if output is None and name == "parquet" and sys.stdout.isatty():
            raise HpoError("parquet is binary and stdout is a terminal; write it to a file with -o FILE")
        target = None if output is None else check_target(output, follow_symlinks=follow_symlinks, storage=storage)
        df = export_trials(study, storage=storage)
        data = encode(df, name)
        if target is None:
            typer.echo(data, nl=False)
            return
        write_file(data, target)
        if as_json:
            print_json(summary(df, name, target, len(data)))
            return
        typer.echo(f"{len(df)} trial(s) of study {df.attrs['study']} written to {output} ({name})", err=True)

    guarded(body, ctx)
