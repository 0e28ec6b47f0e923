"""`hpo k8s`: the manifests validate against Kubernetes' own Job schema, hold no secret, name things as
Kubernetes allows whatever the study is called, and bad input is one line with nothing written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from hpo.launch import K8sSpec
from hpo.launch._k8s import (
    EXIT_BAD_INPUT,
    EXIT_SIGTERM,
    KUBERNETES_VERSION,
    create_job,
    dns_name,
    dump,
    job_name,
    workers_job,
)
from tests.conftest import invoke as conftest_invoke
from tests.conftest import small_space, write_space

# The release whose schema the manifests are written for, and the newest one kubernetes-validate ships.
VERSIONS = [KUBERNETES_VERSION, kubernetes_validate.latest_version()]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
HOSTILE = 'it\'s "quoted" / ../../etc/passwd: ünïcødé — 研究 ${HOME} `rm -rf` \n# not a comment ' + "Z" * 120
IMAGE = "registry.example/hpo:1.0"


def invoke(*args: str) -> tuple[int, str, str]:
    return conftest_invoke("k8s", *args)


def documents(text: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    assert len(docs) == 2, text
    return docs


def validate(doc: dict[str, Any], version: str) -> None:
    """Kubernetes' JSON schema of a Job, strict (an unknown field fails), then the rules the API server adds."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:  # jsonschema's error: its message without the whole schema
        pytest.fail(f"{doc['metadata']['name']} is no valid Job of Kubernetes {version}: {e.message} at {list(e.path)}")
    spec, pod = doc["spec"], doc["spec"]["template"]["spec"]
    names = {doc["metadata"]["name"], *(c["name"] for c in pod["containers"])}
    assert all(DNS_LABEL.match(n) and len(n) <= 63 for n in names), names
    for labels in (doc["metadata"]["labels"], doc["spec"]["template"]["metadata"]["labels"]):
        assert all(LABEL_VALUE.match(v) and len(v) <= 63 for v in labels.values()), labels
    if spec.get("completionMode") == "Indexed":  # a pod's hostname is "<job>-<index>", a DNS label
        assert len(f"{doc['metadata']['name']}-{spec['completions'] - 1}") <= 63
    else:
        assert "backoffLimitPerIndex" not in spec
    assert pod["restartPolicy"] == "Never"  # what podFailurePolicy and backoffLimitPerIndex need
    for rule in spec["podFailurePolicy"]["rules"]:
        if "onExitCodes" in rule:
            assert rule["onExitCodes"]["containerName"] in names


def the_job(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    return doc


def container(doc: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = doc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_manifests_of_a_space_validate(workspace: Path, version: str) -> None:
    space = write_space(workspace / "search_spaces", study="diabetes-gbm")
    code, out, err = invoke(str(space.relative_to(workspace)), "--image", IMAGE, "--workers", "3")
    assert code == 0, err
    docs = documents(out)
    assert [d["metadata"]["name"] for d in docs] == ["diabetes-gbm-create", "diabetes-gbm-workers"]
    for doc in docs:
        validate(doc, version)
        assert "namespace" not in doc["metadata"]
        assert doc["metadata"]["labels"]["hpo-study"] == "diabetes-gbm"
        assert doc["spec"]["template"]["metadata"]["labels"]["hpo-study"] == "diabetes-gbm"
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "hpo"
        c = container(doc)
        assert c["image"] == IMAGE and c["workingDir"] == "/workspace"
        assert c["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
    create, workers = docs
    assert container(create)["command"] == ["hpo", "run", "search_spaces/space.yaml", "--create-only"]
    assert create["spec"]["completions"] == 1 and create["spec"]["backoffLimit"] == 3
    assert workers["spec"]["completionMode"] == "Indexed"
    assert workers["spec"]["completions"] == workers["spec"]["parallelism"] == 3
    assert workers["spec"]["backoffLimitPerIndex"] == 3 and "activeDeadlineSeconds" not in workers["spec"]
    # The secret's command on stderr, with placeholders; stdout is YAML alone.
    assert "kubectl create secret generic hpo --from-literal=storage='postgresql://USER:PASSWORD@" in err


@pytest.mark.parametrize("version", VERSIONS)
def test_gpus_deadline_namespace_and_sizes(workspace: Path, version: str) -> None:
    write_space(workspace / "search_spaces")
    args = ["--image", IMAGE, "--workers", "10000", "--gpus-per-worker", "2", "--deadline", "7200", "--namespace", "ml-team"]
    args += ["--cpus-per-worker", "3500m", "--memory-per-worker", "12Gi", "--secret", "hpo-prod", "--workdir", "/srv/ws"]
    code, out, err = invoke("./search_spaces/../search_spaces/space.yaml", *args, "--backoff-limit", "0")
    assert code == 0, err
    create, workers = documents(out)
    for doc in (create, workers):
        validate(doc, version)
        assert doc["metadata"]["namespace"] == "ml-team" and container(doc)["workingDir"] == "/srv/ws"
        assert {e["valueFrom"]["secretKeyRef"]["name"] for e in container(doc)["env"] if "valueFrom" in e} == {"hpo-prod"}
    assert container(workers)["resources"] == {
        "requests": {"cpu": "3500m", "memory": "12Gi"},
        "limits": {"cpu": "3500m", "memory": "12Gi", "nvidia.com/gpu": 2},
    }
    assert "nvidia.com/gpu" not in container(create)["resources"]["limits"]  # creating a study needs no GPU
    assert workers["spec"]["activeDeadlineSeconds"] == 7200 and "activeDeadlineSeconds" not in create["spec"]
    assert workers["spec"]["completions"] == workers["spec"]["parallelism"] == 10000
    assert workers["spec"]["backoffLimitPerIndex"] == 0
    assert container(create)["command"][2] == "search_spaces/space.yaml"  # as the container sees it
    assert "kubectl --namespace ml-team create secret generic hpo-prod " in err


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("study", [HOSTILE, "A" * 200, "-._-", "研究", "Small", "v0.2.0", "a" * 50, "a" * 51])
def test_any_study_name_gives_valid_names_and_yaml(study: str, version: str) -> None:
    spec = K8sSpec(image=IMAGE, workers=10000, namespace="ml")
    for doc in (create_job(study, "search_spaces/x.yaml", spec), workers_job(study, spec)):
        parsed = yaml.safe_load(dump(doc))
        assert parsed == doc  # the name survives YAML whole, quotes, newlines and all
        validate(parsed, version)
        assert parsed["metadata"]["annotations"]["hpo-study-name"] == study
    assert container(workers_job(study, spec))["command"][:4] == ["hpo", "worker", "--study", study]  # an argument, no shell
    assert len(job_name(study, "workers")) <= 58  # "-9999" on top is a pod's hostname


def test_names_are_kept_when_already_valid_and_hashed_when_changed() -> None:
    assert dns_name("diabetes-catboost") == "diabetes-catboost"
    assert dns_name("a" * 50) == "a" * 50
    changed = [dns_name(s) for s in ("v0.2.0", "v0-2-0", "V0-2-0", "a" * 51, "a" * 52, HOSTILE, HOSTILE + "!")]
    assert len(set(changed)) == len(changed)  # never two studies on one Job
    assert dns_name("v0.2.0").startswith("v0-2-0-") and dns_name("研究").startswith("study-")
    from hpo.launch import Manifests

    files = Manifests(HOSTILE, {}, {}).files()
    assert all("/" not in name and name.endswith(".yaml") for name in files)
    assert list(Manifests("diabetes-catboost-v0.2.0", {}, {}).files()) == [
        "diabetes-catboost-v0.2.0-create.yaml",
        "diabetes-catboost-v0.2.0-workers.yaml",
    ]


def test_no_manifest_holds_a_url_or_a_secret(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPO_STORAGE", "postgresql://hpo:s3cr3t-pw@db.internal/hpo")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://ml:t0ken-pw@mlflow.internal:5000")
    space = write_space(workspace / "search_spaces")
    code, out, err = invoke(str(space), "--image", IMAGE, "--workers", "2", "-o", "k8s")
    assert code == 0, err
    texts = [out, err, *(p.read_text() for p in (workspace / "k8s").iterdir())]
    for text in texts:
        assert "s3cr3t" not in text and "t0ken" not in text and "db.internal" not in text and "mlflow.internal" not in text
    for path in sorted((workspace / "k8s").iterdir()):
        env = container(yaml.safe_load(path.read_text()))["env"]
        from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
        assert from_secret == {
            "HPO_STORAGE": {"name": "hpo", "key": "storage"},
            "MLFLOW_TRACKING_URI": {"name": "hpo", "key": "tracking-uri"},
        }
        assert [e for e in env if "valueFrom" not in e] == [{"name": "PYTHONUNBUFFERED", "value": "1"}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--storage", "postgresql://hpo:pw-on-the-line@db/hpo"],
            "error: --storage is not an option of hpo k8s: a manifest never holds a URL (it may hold a password); "
            "put it in the Secret that --secret names, under the key 'storage' (hpo k8s prints the kubectl command)",
        ),
        (["--tracking-uri", "http://u:pw-on-the-line@m:5000"], "error: --tracking-uri is not an option of hpo k8s: "),
        (["--secret", "postgresql://hpo:pw-on-the-line@db/hpo"], "error: --secret names a Kubernetes object, never a URL"),
    ],
)
def test_a_url_on_the_command_line_is_refused(workspace: Path, args: list[str], message: str) -> None:
    space = write_space(workspace)
    code, out, err = invoke(str(space), "--image", IMAGE, "--workers", "2", *args)
    assert code == 2 and out == "" and err.startswith(message) and err.count("\n") == 1, err
    assert "pw-on-the-line" not in err


def test_the_worker_command_and_its_exit_codes(workspace: Path) -> None:
    code, out, err = invoke(str(write_space(workspace)), "--image", IMAGE, "--workers", "4")
    assert code == 0, err
    create, workers = documents(out)
    assert container(workers)["command"] == ["hpo", "worker", "--study", "small", "--wait-for-study", "600", "--quiet"]
    assert container(workers)["name"] == "worker"
    assert (EXIT_SIGTERM, EXIT_BAD_INPUT) == (143, 2)
    disrupted = {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert workers["spec"]["podFailurePolicy"]["rules"] == [
        disrupted,  # evicted, preempted, drained: not the worker's fault
        {"action": "Ignore", "onExitCodes": {"containerName": "worker", "operator": "In", "values": [143]}},
        {"action": "FailJob", "onExitCodes": {"containerName": "worker", "operator": "In", "values": [2]}},
    ]  # any other exit: Count, the default
    assert create["spec"]["podFailurePolicy"]["rules"] == [
        disrupted,
        {"action": "FailJob", "onExitCodes": {"containerName": "create", "operator": "In", "values": [2]}},
    ]


BAD = [
    (["--workers", "0"], "error: --workers must be a whole number from 1 to 10000, but got 0"),
    (["--workers", "10001"], "error: --workers must be a whole number from 1 to 10000, but got 10001"),
    (["--workers", "abc"], "error: --workers must be a whole number, but got 'abc'"),
    (["--workers", "2.5"], "error: --workers must be a whole number, but got '2.5'"),
    (["--gpus-per-worker", "-1"], "error: --gpus-per-worker must be a whole number from 0 to 2147483647, but got -1"),
    (["--deadline", "0"], "error: --deadline must be a whole number from 1 to 2147483647, but got 0"),
    (["--deadline", "1h"], "error: --deadline must be a whole number, but got '1h'"),
    (["--backoff-limit", "-1"], "error: --backoff-limit must be a whole number from 0 to 2147483647, but got -1"),
    (["--cpus-per-worker", "0"], "error: --cpus-per-worker must be a CPU quantity above 0 such as 1, 0.5 or 500m, but got '0'"),
    (
        ["--memory-per-worker", "2GB"],
        "error: --memory-per-worker must be a memory quantity above 0 such as 2Gi or 512Mi, but got '2GB'",
    ),
    (
        ["--namespace", "ML_Team"],
        "error: --namespace must be a Kubernetes name (lowercase letters, digits and '-', at most 63 characters), but got 'ML_Team'",
    ),
    (["--workdir", "workspace"], "error: --workdir must be an absolute path, but got 'workspace'"),
    (["--image", "a b"], "error: --image must be a container image reference such as registry.example/hpo:1.0, but got 'a b'"),
    (["--space", "missing.yaml"], "error: missing.yaml: file not found"),
    (["--space", "../outside.yaml"], "error: SPACE must lie in the workspace ("),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(workspace: Path, args: list[str], message: str) -> None:
    write_space(workspace)
    (workspace.parent / "outside.yaml").write_text((workspace / "space.yaml").read_text())
    given = {"--space": "space.yaml", "--image": IMAGE, "--workers": "2"} | dict(zip(args[::2], args[1::2], strict=True))
    space = given.pop("--space")  # the argument, here as a key only to override it
    before = sorted(workspace.rglob("*"))
    code, out, err = invoke(space, *(x for option in given.items() for x in option), "-o", "k8s")
    assert (code, out) == (2, ""), err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert sorted(workspace.rglob("*")) == before


def test_two_bad_options_are_two_lines(workspace: Path) -> None:
    code, _, err = invoke(str(write_space(workspace)), "--image", IMAGE, "--workers", "0", "--memory-per-worker", "0Mi")
    assert code == 2 and err.splitlines() == [
        "error: --workers must be a whole number from 1 to 10000, but got 0",
        "error: --memory-per-worker must be a memory quantity above 0 such as 2Gi or 512Mi, but got '0Mi'",
    ]


def test_output_writes_two_files_and_replaces_them_only_with_force(workspace: Path) -> None:
    space = write_space(workspace / "search_spaces")
    args = [str(space), "--image", IMAGE, "--workers", "2", "--namespace", "ml", "-o", "k8s"]
    code, out, err = invoke(*args)
    assert code == 0 and out == "", err
    assert sorted(p.name for p in (workspace / "k8s").iterdir()) == ["small-create.yaml", "small-workers.yaml"]
    create = yaml.safe_load((workspace / "k8s" / "small-create.yaml").read_text())
    assert create["metadata"]["name"] == "small-create"
    for line in (
        "kubectl --namespace ml create secret generic hpo --from-literal=storage=",
        "kubectl --namespace ml apply -f k8s/small-create.yaml",
        "kubectl --namespace ml wait --for=condition=complete --timeout=15m job/small-create",
        "kubectl --namespace ml apply -f k8s/small-workers.yaml",
        "kubectl --namespace ml get pods -l hpo-study=small",
    ):
        assert f"  {line}" in err, err
    # Again: both files exist, neither is touched; with --force both are replaced.
    (workspace / "k8s" / "small-workers.yaml").write_text("mine\n")
    code, out, err = invoke(*args)
    assert (
        code == 2
        and out == ""
        and err == "error: --output: k8s/small-create.yaml, k8s/small-workers.yaml already exists; add --force to replace it\n"
    )
    assert (workspace / "k8s" / "small-workers.yaml").read_text() == "mine\n"
    code, _, err = invoke(*args, "--force")
    assert code == 0, err
    assert yaml.safe_load((workspace / "k8s" / "small-workers.yaml").read_text())["kind"] == "Job"
    assert sorted(p.name for p in (workspace / "k8s").iterdir()) == ["small-create.yaml", "small-workers.yaml"]


def test_the_verb_reads_no_data_and_imports_no_heavy_library(workspace: Path) -> None:
    # A data source that does not exist: the space is read for its study name only.
    space = write_space(workspace, data={**small_space()["data"], "source": "nowhere.csv"})
    code = (
        "import sys, json\nfrom hpo.launch import K8sSpec, k8s_manifests\n"
        f"m = k8s_manifests({str(space)!r}, K8sSpec(image='i', workers=1))\n"
        "print(json.dumps([m.study, sorted(x for x in ('mlflow', 'catboost', 'optuna', 'pandas', 'sklearn') if x in sys.modules)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=workspace, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == ["small", []]
