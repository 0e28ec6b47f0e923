"""A password in the storage URL or the tracking URI never reaches a terminal, a file or MLflow."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hpo.secrets import masked, masked_url
from tests.conftest import invoke, small_space, write_space_as

PASSWORD = "S3cr3t-pw"
# 'Pq@ss:w0rd/x' percent-encoded, as a URL must carry it; neither spelling may show.
ENCODED = "Pq%40ss%3Aw0rd%2Fx"
DECODED = "Pq@ss:w0rd/x"
TRACKING_PASSWORD = "Tr4ck-S3cr3t"
SECRETS = (PASSWORD, ENCODED, DECODED, "ss%3Aw0rd", "ss:w0rd", TRACKING_PASSWORD)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://hpo:S3cr3t-pw@127.0.0.1:5432/hpo", "postgresql://hpo:***@127.0.0.1:5432/hpo"),
        ("postgresql+psycopg://u:Pq%40ss%3Aw0rd@db.example/hpo", "postgresql+psycopg://u:***@db.example/hpo"),
        ("postgresql://u:Pq@ss:w0rd@db/hpo", "postgresql://u:***@db/hpo"),  # typed without encoding
        ("postgresql://u:a/b?c@db/hpo", "postgresql://u:***@db/hpo"),  # SQLAlchemy reads the password up to the '@'
        ("postgresql://u@db/hpo?sslmode=require&password=S3cr3t", "postgresql://u@db/hpo?sslmode=require&password=***"),
        ("mysql://u@db/hpo?PWD=S3cr3t#x", "mysql://u@db/hpo?PWD=***#x"),
        ("http://u:S3cr3t@[::1]:5000", "http://u:***@[::1]:5000"),
        ("u:S3cr3t@db/hpo", "u:***@db/hpo"),  # no scheme: refused as a storage URL, still masked in the message
        ("host=db password=S3cr3t", "host=db password=***"),  # libpq's key=value form
        ("sqlite:///studies/hpo.db", "sqlite:///studies/hpo.db"),
        ("sqlite:////tmp/a:b@c.db", "sqlite:////tmp/a:b@c.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://[::1", "http://[::1"),  # not parseable: returned as it is, nothing raised
        ("", ""),
    ],
)
def test_masked_url_hides_the_password_in_every_spelling(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def test_masked_hides_every_url_in_a_message() -> None:
    text = "API request to http://u:S3cr3t@127.0.0.1:1/api/2.0/mlflow failed ('postgresql://a:S3cr3t@h/db'); password=S3cr3t"
    assert "S3cr3t" not in masked(text)
    assert masked(text).startswith("API request to http://u:***@127.0.0.1:1/api/2.0/mlflow failed ('postgresql://a:***@h/db')")


def _role_with_password(postgres_url: str) -> tuple[str, str]:
    """A login role with :data:`PASSWORD` that owns the test's database; URLs with its password plain and encoded.

    (The test cluster trusts loopback, so the server does not check the password; the URL carries it as in production.)
    """
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(postgres_url)
    role = f"hpo_secret_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f"ALTER DATABASE {u.database} OWNER TO {role}")
        conn.execute(f"ALTER SCHEMA public OWNER TO {role}")
    base = f"postgresql://{role}:{{}}@{u.host}:{u.port}/{u.database}"
    return base.format(PASSWORD), base.format(ENCODED)


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("HPO_STORAGE", "MLFLOW_TRACKING_URI")} | extra


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_no_password_reaches_a_terminal_a_file_or_mlflow(
    workspace: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    url, encoded_url = _role_with_password(postgres_url)
    mlflow_db = workspace / "mlflow.db"
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_db}",
        "COLUMNS": "400",  # rich must not fold a URL (and a password) across lines
        "HPO_HEARTBEAT_INTERVAL": "1",
        "HPO_GRACE_PERIOD": "3",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    space = small_space(n_trials=3)
    space_file = write_space_as(workspace, space)
    outputs: dict[str, str] = {}

    # The study, by the real command in its own process; the other verbs in this one (imported once: seconds, not minutes).
    r = subprocess.run(
        [sys.executable, "-m", "hpo", "run", str(space_file), "--storage", url, "--json"],
        cwd=workspace,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    outputs["run --json"] = r.stdout + r.stderr

    def hpo(name: str, *args: str, code: int = 0) -> str:
        got, out, err = invoke(*args)  # stdin is not a terminal: `hpo delete` prints its plan and refuses to ask
        fd = capfd.readouterr()  # whatever a library wrote to the process's stdout and stderr
        outputs[name] = out + err + fd.out + fd.err
        assert got == code, f"hpo {' '.join(args)}: exit {got}\n{outputs[name]}"
        return outputs[name]

    hpo("run", "run", str(space_file), "--storage", url)  # resumed: the closing table and its Storage: line
    hpo("studies", "studies", "--storage", encoded_url)
    hpo("show --json", "show", "small", "--storage", encoded_url, "--json")
    hpo("show", "show", "small", "--storage", url)
    hpo("data", "data", "--storage", url)
    hpo("data --json", "data", "v0.1.0", "--storage", url, "--json")
    hpo("data unknown", "data", "v9.9.9", "--storage", encoded_url, code=2)
    hpo("show unknown", "show", "nope", "--storage", url, code=2)
    hpo("analyze", "analyze", "--storage", url, "--min-trials", "3", "--noise-refits", "0", "--importance", "none", "--json")
    hpo("export", "export", "--storage", url, "--output", str(workspace / "trials.csv"))
    changed = write_space_as(workspace, {**space, "params": {"depth": {"type": "int", "low": 2, "high": 5}}}, "changed.yaml")
    assert "different search space" in hpo("changed space", "run", str(changed), "--storage", encoded_url, code=2)
    assert "delete   study" in hpo("delete plan", "delete", "small", "--storage", url, code=2)
    hpo("sync", "sync", "--storage", url)
    # An unreachable tracking server whose URI carries a password (MLflow's own error quotes the URI).
    from tests.servers import free_port

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://hpo:{TRACKING_PASSWORD}@127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    assert "unreachable" in hpo("sync unreachable", "sync", "--storage", url, code=2)
    outputs["dashboard serving"] = _dashboard_banner(workspace, url, env)

    study_dir = workspace / "studies" / "small"
    assert (study_dir / "analysis.json").is_file() and (study_dir / "analysis.html").is_file() and mlflow_db.is_file()
    # Every file of the workspace as bytes (the MLflow store and its artifacts too, free pages included).
    seen = {f"file {p.relative_to(workspace)}": p.read_bytes().decode("latin-1") for p in workspace.rglob("*") if p.is_file()}
    with sqlite3.connect(mlflow_db) as con:  # the tags, params and descriptions of every run and experiment
        seen["mlflow store"] = "\n".join(con.iterdump())
    seen["optuna storage attributes"] = _optuna_attrs(postgres_url)
    seen.update(outputs)
    leaked = {name: _leaks(text) for name, text in seen.items() if _leaks(text)}
    assert not leaked, str(leaked)
    assert "small" in seen["mlflow store"]
    shown = ("run --json", "run", "studies", "data", "changed space", "delete plan", "sync unreachable", "dashboard serving")
    assert all("***@" in outputs[name] for name in shown), outputs


def _dashboard_banner(workspace: Path, url: str, env: dict[str, str]) -> str:
    """What ``hpo dashboard`` says once it serves (its first line on stderr), then stop it."""
    from tests.servers import free_port

    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "dashboard", "--storage", url, "--port", str(free_port())],
        cwd=workspace,
        env=_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert "optuna-dashboard for" in line, line + err
    return line + out + err


def _optuna_attrs(postgres_url: str) -> str:
    """Every study and trial attribute hpo keeps in the Optuna storage, as text."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(postgres_url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database) as conn:
        rows = [
            conn.execute(f"SELECT string_agg(key || '=' || value_json, ' ') FROM {table}").fetchone()
            for table in ("study_user_attributes", "study_system_attributes", "trial_user_attributes", "trial_system_attributes")
        ]
    return " ".join(str(r[0]) for r in rows if r)
