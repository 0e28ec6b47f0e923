"""The ``hpo`` command: one module per verb, each a plain function (parse, call the library, print).

This module builds ``app`` and registers every verb, in the order ``hpo --help`` lists them. A verb
module never imports ``app`` or another verb; what they share is in the private modules: ``_guard``
(an ``HpoError`` becomes one line and an exit code), ``_options`` (shared help texts) and ``_output``
(every table, progress bar and text the CLI draws). Heavy libraries are imported inside the verbs, so
``hpo --help`` stays fast.
"""

from __future__ import annotations

import typer

from hpo.cli import (
    analyze,
    dashboard,
    data,
    delete,
    export,
    import_sweep,
    k8s,
    promote,
    reproduce,
    run,
    schema,
    show,
    studies,
    sync,
    try_,
    validate,
    worker,
)

app = typer.Typer(
    name="hpo",
    help="Optuna studies in isolated MLflow spaces: run, analyze, promote.",
    no_args_is_help=True,
    # --install-completion / --show-completion: Typer's, for bash, zsh, fish and PowerShell.
    add_completion=True,
    pretty_exceptions_enable=False,
    # -h as well as --help, on `hpo` and every verb (a verb's context inherits it).
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from hpo import __version__

        typer.echo(f"hpo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print hpo's version and exit."
    ),
) -> None:
    """Optuna studies in isolated MLflow spaces: run, analyze, promote."""


app.command(name="analyze")(analyze.analyze)
app.command(name="export")(export.export)
app.command(name="delete")(delete.delete)
app.command(name="data")(data.data)
app.command(name="promote")(promote.promote)
app.command(name="reproduce")(reproduce.reproduce)
app.command(name="run")(run.run)
app.command(name="worker")(worker.worker)
app.command(name="k8s")(k8s.k8s)
app.command(name="validate")(validate.validate)
app.command(name="schema")(schema.schema)
app.command(name="studies")(studies.studies)
app.command(name="show")(show.show)
app.command(name="dashboard")(dashboard.dashboard)
app.command(name="import-sweep")(import_sweep.import_sweep)
app.command(name="sync")(sync.sync)
app.command(name="try")(try_.try_)


def main() -> None:
    app(prog_name="hpo")


if __name__ == "__main__":
    main()
