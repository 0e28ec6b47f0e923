"""Kubernetes manifests for one study: a Job that creates it, and an Indexed Job of workers that run it.

The create Job runs ``hpo run SPACE --create-only`` once; the workers Job runs N ``hpo worker --study
STUDY`` pods, which share the study's budget through its storage. Each manifest is built by a pure
function as a dict (the tests validate them against Kubernetes' own schema) and written with
``yaml.safe_dump``. No manifest holds a storage URL or a tracking URI, which may hold a password: the
containers read both from a Secret (``secretKeyRef``), which the user makes with the command
:func:`secret_command` prints.

Names follow Kubernetes' rules whatever the study is called: a Job's name and the ``hpo-study`` label
are a DNS-1123 label short enough that a worker pod's hostname (``<job>-<index>``) stays within 63
characters, with a hash of the study name whenever the name had to change, so that two studies never
share a Job. The study name itself travels as a container argument and an annotation, never through
a shell.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hpo.errors import HpoError, option
from hpo.workspace import STORAGE_ENV

TRACKING_ENV = "MLFLOW_TRACKING_URI"  # MLflow's own variable
SECRET_KEYS = {STORAGE_ENV: "storage", TRACKING_ENV: "tracking-uri"}  # env variable -> key in the Secret
GPU_RESOURCE = "nvidia.com/gpu"
STUDY_LABEL = "hpo-study"
STUDY_ANNOTATION = "hpo-study-name"  # the study's name as written: a label value cannot hold every name
APP_LABELS = {"app.kubernetes.io/name": "hpo"}
WORKER_CONTAINER = "worker"
CREATE_CONTAINER = "create"
WAIT_FOR_STUDY_SECONDS = 600  # a worker started before the create Job finished waits this long for the study
CREATE_BACKOFF_LIMIT = 3
MAX_WORKERS = 10_000
EXIT_BAD_INPUT = HpoError.exit_code  # a bad space, data or storage URL: no retry helps
EXIT_SIGTERM = 128 + signal.SIGTERM  # a worker stopped by SIGTERM, its trial failed and requeued in its slot
KUBERNETES_VERSION = "1.33"  # the first release where every field used here is GA (backoffLimitPerIndex)

_INT32_MAX = 2**31 - 1
_MAX_INDEX_DIGITS = len(str(MAX_WORKERS - 1))
# A worker pod's hostname is "<base>-workers-<index>", and a hostname is a DNS label of at most 63 characters.
_MAX_BASE = 63 - len("-workers") - 1 - _MAX_INDEX_DIGITS
_HASH_CHARS = 8
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
# Kubernetes quantities, the amount in a group: 2, 0.5, 500m for CPUs; 2Gi, 512Mi, 1G for memory.
_CPU = re.compile(r"^(\d+(?:\.\d{1,3})?)\Z|^(\d+)m\Z")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(?:Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?\Z")
_LABEL_CHARS = "lowercase letters, digits and '-'"
_PLAIN_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}\Z")


@dataclass(frozen=True)
class K8sSpec:
    """What the manifests ask of the cluster. Field names are the options of ``hpo k8s``."""

    image: str
    workers: int
    namespace: str | None = None
    workdir: str = "/workspace"
    secret: str = "hpo"
    cpus_per_worker: str = "1"
    memory_per_worker: str = "2Gi"
    gpus_per_worker: int = 0
    backoff_limit: int = 3
    deadline: int | None = None


@dataclass(frozen=True)
class Manifests:
    """The two Jobs of one study, as dicts."""

    study: str
    create: dict[str, Any]
    workers: dict[str, Any]

    def files(self) -> dict[str, str]:
        """File name -> YAML text: ``<study>-create.yaml`` and ``<study>-workers.yaml``."""
        stem = self.study if _PLAIN_FILE.match(self.study) else dns_name(self.study)
        return {f"{stem}-create.yaml": dump(self.create), f"{stem}-workers.yaml": dump(self.workers)}

    def text(self) -> str:
        """Both documents in one YAML stream, the create Job first."""
        return dump(self.create) + "---\n" + dump(self.workers)


def k8s_manifests(space: str | Path, spec: K8sSpec, root: Path | None = None) -> Manifests:
    """The manifests for the study of ``space``, a file inside ``root`` (default: the current folder).

    Reads the space file only (not its data) for the study's name. Raises ``HpoError`` naming every
    option that breaks its rule, or the space file's problem.
    """
    problems = spec_problems(spec)
    if problems:
        raise HpoError("\n".join(problems))
    path_in_image = container_path(Path(space), root or Path.cwd())
    from hpo.space import load_space  # pydantic and the space models: only when a manifest is made

    study = load_space(space).space.study
    return Manifests(study, create_job(study, path_in_image, spec), workers_job(study, spec))


# --- the options' rules -------------------------------------------------------------------------------


def spec_problems(spec: K8sSpec) -> list[str]:
    """Every option that breaks its rule, one line each."""
    found = [
        _whole_in("workers", spec.workers, 1, MAX_WORKERS),
        _whole_in("gpus_per_worker", spec.gpus_per_worker, 0, _INT32_MAX),
        _whole_in("backoff_limit", spec.backoff_limit, 0, _INT32_MAX),
        None if spec.deadline is None else _whole_in("deadline", spec.deadline, 1, _INT32_MAX),
        _quantity("cpus_per_worker", spec.cpus_per_worker, _CPU, "a CPU quantity above 0 such as 1, 0.5 or 500m"),
        _quantity("memory_per_worker", spec.memory_per_worker, _MEMORY, "a memory quantity above 0 such as 2Gi or 512Mi"),
        _image_problem(spec.image),
        _name_problem("secret", spec.secret, _DNS_SUBDOMAIN, "lowercase letters, digits, '-' and '.'", 253),
        None if spec.namespace is None else _name_problem("namespace", spec.namespace, _DNS_LABEL, _LABEL_CHARS, 63),
        None if spec.workdir.startswith("/") else f"{option('workdir')} must be an absolute path, but got {spec.workdir!r}",
    ]
    return [p for p in found if p is not None]


def _whole_in(name: str, value: int, low: int, high: int) -> str | None:
    if low <= value <= high:
        return None
    return f"{option(name)} must be a whole number from {low} to {high}, but got {value}"


def _quantity(name: str, value: str, pattern: re.Pattern[str], what: str) -> str | None:
    amount = pattern.match(value)
    if amount and float(next(g for g in amount.groups() if g is not None)) > 0:
        return None
    return f"{option(name)} must be {what}, but got {value!r}"


def _image_problem(image: str) -> str | None:
    if image and not any(c.isspace() for c in image) and image.isprintable():
        return None
    return f"{option('image')} must be a container image reference such as registry.example/hpo:1.0, but got {image!r}"


def _name_problem(name: str, value: str, pattern: re.Pattern[str], chars: str, longest: int) -> str | None:
    if "://" in value or "@" in value:
        # The one place a URL could slip into a manifest: refuse it before it is written anywhere.
        return (
            f"{option(name)} names a Kubernetes object, never a URL: a manifest holds no storage URL or "
            "tracking URI (they may hold a password); put them in the Secret"
        )
    if len(value) <= longest and pattern.match(value):
        return None
    return f"{option(name)} must be a Kubernetes name ({chars}, at most {longest} characters), but got {value!r}"


def container_path(space: Path, root: Path) -> str:
    """``space`` relative to the workspace ``root``, as the container sees it below its working folder."""
    relative = Path(os.path.relpath(os.path.abspath(space), os.path.abspath(root)))
    if relative.parts[:1] == ("..",):
        raise HpoError(
            f"{option('space')} must lie in the workspace ({root}), which the image holds at {option('workdir')}, "
            f"but got {str(space)!r}"
        )
    return relative.as_posix()


# --- names ----------------------------------------------------------------------------------------------


def dns_name(study: str) -> str:
    """``study`` as a DNS-1123 label of at most 50 characters: lowercase letters, digits and '-'.

    A name that had to change (case, other characters, length) gets a hash of the whole name, so two
    studies whose names differ only there (``v0.2`` and ``v0-2``) never share a Job.
    """
    plain = re.sub(r"[^a-z0-9]+", "-", study.lower()).strip("-")
    if plain == study and len(plain) <= _MAX_BASE:
        return plain
    digest = hashlib.sha256(study.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    head = plain[: _MAX_BASE - _HASH_CHARS - 1].rstrip("-")
    return f"{head}-{digest}" if head else f"study-{digest}"


def job_name(study: str, component: str) -> str:
    """``<dns_name(study)>-create`` or ``<dns_name(study)>-workers``."""
    return f"{dns_name(study)}-{component}"


def labels(study: str, component: str) -> dict[str, str]:
    """The labels of both Jobs and their pods: ``kubectl get pods -l hpo-study=<dns_name>`` finds them."""
    return {**APP_LABELS, "app.kubernetes.io/component": component, STUDY_LABEL: dns_name(study)}


# --- the manifests --------------------------------------------------------------------------------------


def create_job(study: str, space_in_image: str, spec: K8sSpec) -> dict[str, Any]:
    """The Job that creates (or resumes) the study and fills its budget, then exits without a trial."""
    container = _container(CREATE_CONTAINER, ["hpo", "run", space_in_image, "--create-only"], spec, gpus=0)
    return _job(
        study,
        "create",
        spec,
        {
            "completions": 1,
            "backoffLimit": CREATE_BACKOFF_LIMIT,
            "podFailurePolicy": failure_policy(CREATE_CONTAINER, requeued_on_sigterm=False),
            "template": _pod_template(study, "create", container),
        },
    )


def workers_job(study: str, spec: K8sSpec) -> dict[str, Any]:
    """The Indexed Job of ``spec.workers`` workers; each claims budget slots until the budget is spent."""
    command = ["hpo", "worker", "--study", study, "--wait-for-study", str(WAIT_FOR_STUDY_SECONDS), "--quiet"]
    container = _container(WORKER_CONTAINER, command, spec, gpus=spec.gpus_per_worker)
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": spec.workers,
        "parallelism": spec.workers,
        # Per index: one worker that keeps failing does not stop the others, which share the budget.
        "backoffLimitPerIndex": spec.backoff_limit,
        "podFailurePolicy": failure_policy(WORKER_CONTAINER, requeued_on_sigterm=True),
    }
    if spec.deadline is not None:
        job_spec["activeDeadlineSeconds"] = spec.deadline
    job_spec["template"] = _pod_template(study, "workers", container)
    return _job(study, "workers", spec, job_spec)


def failure_policy(container: str, *, requeued_on_sigterm: bool) -> dict[str, Any]:
    """Which failed pods count toward the backoff limit.

    A pod evicted, preempted or drained (``DisruptionTarget``) never counts, nor does a worker that
    exited on SIGTERM (its trial is back in its slot, so starting it again loses nothing); bad input
    fails the Job at once, since no retry fixes it. Any other exit counts.
    """
    rules: list[dict[str, Any]] = [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]
    if requeued_on_sigterm:
        rules.append({"action": "Ignore", "onExitCodes": _exit_codes(container, EXIT_SIGTERM)})
    rules.append({"action": "FailJob", "onExitCodes": _exit_codes(container, EXIT_BAD_INPUT)})
    return {"rules": rules}


def _exit_codes(container: str, code: int) -> dict[str, Any]:
    return {"containerName": container, "operator": "In", "values": [code]}


def _job(study: str, component: str, spec: K8sSpec, job_spec: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": job_name(study, component)}
    if spec.namespace is not None:
        metadata["namespace"] = spec.namespace
    metadata["labels"] = labels(study, component)
    metadata["annotations"] = {STUDY_ANNOTATION: study}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}


def _pod_template(study: str, component: str, container: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels(study, component), "annotations": {STUDY_ANNOTATION: study}},
        "spec": {
            "restartPolicy": "Never",  # a podFailurePolicy needs it; the Job, not the kubelet, starts a new pod
            "automountServiceAccountToken": False,  # hpo never talks to the Kubernetes API
            "containers": [container],
        },
    }


def _container(name: str, command: list[str], spec: K8sSpec, *, gpus: int) -> dict[str, Any]:
    amounts: dict[str, Any] = {"cpu": spec.cpus_per_worker, "memory": spec.memory_per_worker}
    limits = dict(amounts)
    if gpus:
        limits[GPU_RESOURCE] = gpus
    return {
        "name": name,
        "image": spec.image,
        "command": command,
        "workingDir": spec.workdir,
        "env": [*_secret_env(spec.secret), {"name": "PYTHONUNBUFFERED", "value": "1"}],  # logs as they happen
        "resources": {"requests": amounts, "limits": limits},
    }


def _secret_env(secret: str) -> list[dict[str, Any]]:
    return [
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}} for variable, key in SECRET_KEYS.items()
    ]


# --- text -----------------------------------------------------------------------------------------------


def dump(document: dict[str, Any]) -> str:
    """One manifest as YAML, keys in the order Kubernetes' docs write them; non-ASCII escaped."""
    return yaml.safe_dump(document, sort_keys=False, width=4096)


def write_manifests(manifests: Manifests, folder: Path, *, force: bool = False) -> list[Path]:
    """Write both files into ``folder`` (made if missing); an existing file is replaced only with ``force``.

    Nothing is written when either file is refused.
    """
    if folder.exists() and not folder.is_dir():
        raise HpoError(f"{option('output')} must be a folder, but {folder} is a file")
    targets = {folder / name: text for name, text in manifests.files().items()}
    folders = [str(p) for p in targets if p.is_dir()]
    if folders:
        raise HpoError(f"{option('output')}: {', '.join(folders)} is a folder; remove it or choose another folder")
    existing = [str(p) for p in targets if p.exists() or p.is_symlink()]
    if existing and not force:
        raise HpoError(f"{option('output')}: {', '.join(existing)} already exists; add {option('force')} to replace it")
    folder.mkdir(parents=True, exist_ok=True)
    for path, text in targets.items():
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)  # whole or not at all
    return list(targets)


def secret_command(spec: K8sSpec) -> str:
    """The ``kubectl create secret`` line the Jobs need, with placeholders for the two URLs."""
    return (
        f"kubectl{_namespace_flag(spec)} create secret generic {spec.secret} "
        f"--from-literal={SECRET_KEYS[STORAGE_ENV]}='postgresql://USER:PASSWORD@DB_HOST:5432/DB' "
        f"--from-literal={SECRET_KEYS[TRACKING_ENV]}='http://MLFLOW_HOST:5000'"
    )


def next_steps(manifests: Manifests, spec: K8sSpec, written: list[Path]) -> list[str]:
    """The commands that start the study from the written files, in order."""
    kubectl = f"kubectl{_namespace_flag(spec)}"
    create_file, workers_file = (shlex.quote(str(p)) for p in written)
    return [
        secret_command(spec),
        f"{kubectl} apply -f {create_file}",
        f"{kubectl} wait --for=condition=complete --timeout=15m job/{job_name(manifests.study, 'create')}",
        f"{kubectl} apply -f {workers_file}",
        f"{kubectl} get pods -l {STUDY_LABEL}={dns_name(manifests.study)}",
    ]


def _namespace_flag(spec: K8sSpec) -> str:
    return "" if spec.namespace is None else f" --namespace {spec.namespace}"
