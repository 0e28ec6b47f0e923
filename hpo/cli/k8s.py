"""`hpo k8s`: write the Kubernetes Jobs that create a study and run it on N worker pods."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hpo.cli._guard import guarded
from hpo.cli._options import whole


def k8s(
    ctx: typer.Context,
    space: Path = typer.Argument(..., help="Search-space YAML file, inside the workspace (the current folder)."),
    image: str = typer.Option(..., "--image", help="Container image holding hpo and the workspace."),
    workers: str = typer.Option(..., "--workers", metavar="N", help="Worker pods, 1 to 10000 (they share the study's budget)."),
    namespace: Optional[str] = typer.Option(None, "--namespace", help="Namespace of the Jobs. Default: kubectl's."),
    workdir: str = typer.Option("/workspace", "--workdir", help="Where the image holds the workspace (the working folder)."),
    secret: str = typer.Option(
        "hpo", "--secret", help="Secret with the keys `storage` (Optuna storage URL) and `tracking-uri` (MLflow)."
    ),
    cpus_per_worker: str = typer.Option("1", "--cpus-per-worker", help="CPUs each pod requests and is limited to."),
    memory_per_worker: str = typer.Option("2Gi", "--memory-per-worker", help="Memory each pod requests and is limited to."),
    gpus_per_worker: str = typer.Option("0", "--gpus-per-worker", metavar="G", help="nvidia.com/gpu limit of each worker."),
    backoff_limit: str = typer.Option(
        "3", "--backoff-limit", metavar="N", help="Failures of each worker before it is given up (SIGTERM, eviction not counted)."
    ),
    deadline: Optional[str] = typer.Option(
        None, "--deadline", metavar="SECONDS", help="Seconds after which Kubernetes stops the workers' Job."
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Folder for <study>-create.yaml and <study>-workers.yaml. Default: both to stdout."
    ),
    force: bool = typer.Option(False, "--force", help="Replace files that -o would write over."),
    # Not options: a manifest never holds a URL. Taken only to refuse them in one line, not as a usage error.
    storage: Optional[str] = typer.Option(None, "--storage", hidden=True),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", hidden=True),
) -> None:
    """Write Kubernetes Jobs: one creates the study of SPACE, N workers run it to its budget."""

    def body() -> None:
        from hpo.launch import K8sSpec, k8s_manifests, next_steps, secret_command, write_manifests

        _refuse_urls(storage, tracking_uri)
        spec = K8sSpec(
            image=image,
            workers=_count("--workers", workers),
            namespace=namespace,
            workdir=workdir,
            secret=secret,
            cpus_per_worker=cpus_per_worker,
            memory_per_worker=memory_per_worker,
            gpus_per_worker=_count("--gpus-per-worker", gpus_per_worker),
            backoff_limit=_count("--backoff-limit", backoff_limit),
            deadline=None if deadline is None else _count("--deadline", deadline),
        )
        manifests = k8s_manifests(space, spec)
        if output is None:
            typer.echo(manifests.text(), nl=False)
            typer.echo(f"note: the Jobs read the storage URL and tracking URI from a Secret: {secret_command(spec)}", err=True)
            return
        written = write_manifests(manifests, output, force=force)
        typer.echo(f"wrote {written[0]} and {written[1]}; next:", err=True)
        for line in next_steps(manifests, spec, written):
            typer.echo(f"  {line}", err=True)

    guarded(body, ctx)


def _refuse_urls(storage: str | None, tracking_uri: str | None) -> None:
    from hpo.errors import HpoError

    for flag, given, key in (("--storage", storage, "storage"), ("--tracking-uri", tracking_uri, "tracking-uri")):
        if given is not None:
            raise HpoError(
                f"{flag} is not an option of hpo k8s: a manifest never holds a URL (it may hold a password); "
                f"put it in the Secret that --secret names, under the key {key!r} (hpo k8s prints the kubectl command)"
            )


# Parsed here, not by Typer: a value that is no number is one line naming the option, as a bad range is.


def _count(option: str, text: str) -> int:
    n = whole(option, text)
    assert n is not None
    return n
