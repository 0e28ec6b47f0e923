"""Source version of the workspace's code, read from git; nobody types it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

UNKNOWN = "unknown"


@dataclass(frozen=True)
class SourceVersion:
    """``src_version`` is ``git describe --tags`` (the exact tag when HEAD is tagged)."""

    src_version: str
    commit: str
    dirty: bool | None


def source_version(workspace: Path | None = None) -> SourceVersion:
    """Read the source version of the git repository holding ``workspace`` (default: cwd).

    Outside a git repository (or without git) everything is ``unknown``: that is recorded, not
    an error. A tree with uncommitted changes to tracked files is dirty; untracked files are not
    counted, as with ``git describe --dirty``.
    """
    cwd = workspace or Path.cwd()
    commit = _git(cwd, "rev-parse", "HEAD")
    if commit is None:
        return SourceVersion(UNKNOWN, UNKNOWN, None)
    describe = _git(cwd, "describe", "--tags", "--always") or commit[:12]
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    return SourceVersion(describe, commit, bool(status))


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
