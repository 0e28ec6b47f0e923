"""Where ``hpo export -o PATH`` may write, and the write itself: whole, atomic, never over a store.

`-o PATH` replaces an existing regular file, and nothing else: not a device, a FIFO, a socket, a
folder or (unless asked) a symbolic link, and never a store of the workspace. See
docs/export-delete.md, "What -o replaces".
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError, option
from hpo.storage import sqlite_path
from hpo.workspace import Workspace, load_workspace

if TYPE_CHECKING:
    import pandas as pd

_SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal", ".lock")  # .lock: hpo's study lock beside the database
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def summary(df: pd.DataFrame, fmt: str, target: Target, size: int) -> dict[str, Any]:
    """What ``hpo export -o FILE --json`` says of the file it wrote."""
    states = df["state"].value_counts(sort=False).to_dict() if len(df) else {}
    return {
        "study": df.attrs["study"],
        "path": str(target.path),
        "format": fmt,
        "bytes": size,
        "trials": len(df),
        "states": {str(k): int(v) for k, v in states.items()},
        "columns": [str(c) for c in df.columns],
    }


@dataclass(frozen=True)
class Target:
    """Where an export goes, as checked: ``path`` (a symlink's target when followed) and what was there."""

    shown: str  # the path as the user typed it, for messages
    path: Path
    identity: tuple[int, int] | None  # (st_dev, st_ino) of the file to replace; None when there is none
    mode: int  # permissions for the new file: the replaced file's, else 0o666 less the umask


def check_target(
    output: Path, *, follow_symlinks: bool = False, storage: str | None = None, workspace: Workspace | None = None
) -> Target:
    """Check that ``-o output`` may be written, before any work is done; else ``HpoError``, one line.

    Refused: a folder, device, FIFO or socket; a symbolic link unless ``follow_symlinks`` (then its
    target passes the same checks); a file hpo may not write; an SQLite database; a store of the
    workspace (see :func:`protected_paths`); a path whose folder is missing or not writable.
    """
    ws = workspace or load_workspace()
    shown = str(output)
    path = Path(os.path.abspath(output))
    st = _lstat(path, shown)
    if st is not None and stat.S_ISLNK(st.st_mode):
        if not follow_symlinks:
            raise HpoError(
                f"-o {shown}: is a symbolic link (to {os.readlink(path)}); "
                f"hpo export replaces only a regular file ({option('follow_symlinks')} writes to its target)"
            )
        path = Path(os.path.realpath(path))
        st = _lstat(path, shown)
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise HpoError(f"-o {shown}: is a loop of symbolic links")
        shown, folder_shown = f"{shown} (-> {path})", str(path.parent)
    else:
        folder_shown = os.path.dirname(output) or "."
        # Compare by real folder: studies/../studies/hpo.db is the storage too.
        path = Path(os.path.realpath(path.parent)) / path.name
    if st is not None:
        _check_kind(st, shown)
    _check_not_a_store(path, st, shown, protected_paths(ws, ws.storage_url(storage)))
    if st is not None:
        _check_file(path, st, shown)
    folder = path.parent
    if not folder.is_dir():
        raise HpoError(f"-o {shown}: cannot write it (no such folder {folder_shown})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HpoError(f"-o {shown}: cannot write it (folder {folder_shown} is not writable)")
    if st is None:
        umask = os.umask(0)
        os.umask(umask)
        return Target(shown, path, None, 0o666 & ~umask)
    return Target(shown, path, (st.st_dev, st.st_ino), stat.S_IMODE(st.st_mode) & 0o777)


def protected_paths(ws: Workspace, storage_url: str) -> tuple[dict[Path, str], dict[Path, str]]:
    """The stores of the workspace that an export never replaces: files, and folders it never writes into,
    each with what it is.

    Files: the Optuna storage (``storage_url`` and the default ``studies/hpo.db``) and MLflow's SQLite
    store (``$MLFLOW_TRACKING_URI``, default ``mlflow.db``), each with its ``-wal``, ``-shm``,
    ``-journal`` and ``.lock`` companions. Folders: MLflow's file store and artifacts (``mlruns/``,
    ``mlartifacts/``, a ``file:`` tracking URI) and ``search_spaces/``.
    """
    optuna, mlflow = "the Optuna storage", "the MLflow store"
    databases = [(ws.studies_dir / "hpo.db", optuna), (ws.root / "mlflow.db", mlflow)]
    folders = [(ws.root / "mlruns", mlflow), (ws.root / "mlartifacts", mlflow), (ws.search_spaces_dir, "the search space folder")]
    for url, what in ((storage_url, optuna), (os.environ.get("MLFLOW_TRACKING_URI", ""), mlflow)):
        db = sqlite_path(url.split("?", 1)[0].replace("sqlite:///file:", "sqlite:///"))
        if db is not None:
            databases.append((db, what))
        elif url.startswith("file:"):
            folders.append((Path(url.removeprefix("file://").removeprefix("file:")), what))
        elif url and "://" not in url:
            folders.append((Path(url), what))  # MLflow reads a bare path as a file store
    files = {_real(Path(str(db) + suffix)): what for db, what in databases for suffix in _SQLITE_COMPANIONS}
    return files, {_real(f): what for f, what in folders}


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _lstat(path: Path, shown: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise HpoError(f"-o {shown}: cannot check it ({(e.strerror or str(e)).lower()})") from None


def _check_kind(st: os.stat_result, shown: str) -> None:
    for test, kind in _KINDS:
        if test(st.st_mode):
            if kind == "a folder":
                raise HpoError(f"-o {shown}: is a folder; name a file")
            raise HpoError(f"-o {shown}: is {kind}; hpo export replaces only a regular file (without -o it writes to stdout)")
    if not stat.S_ISREG(st.st_mode):
        raise HpoError(f"-o {shown}: is not a regular file; hpo export replaces only a regular file")


def _check_not_a_store(
    path: Path, st: os.stat_result | None, shown: str, protected: tuple[dict[Path, str], dict[Path, str]]
) -> None:
    files, folders = protected
    for file, what in files.items():
        if path == file or (st is not None and _same_file(st, file)):
            raise HpoError(f"-o {shown}: is {what} (or a file of it); hpo export never replaces it, name another file")
    for folder, what in folders.items():
        if path.is_relative_to(folder):
            raise HpoError(f"-o {shown}: lies in {what} ({folder}); hpo export never writes there, name another file")


def _same_file(st: os.stat_result, other: Path) -> bool:
    try:
        o = os.stat(other)
    except OSError:
        return False
    return (o.st_dev, o.st_ino) == (st.st_dev, st.st_ino)


def _check_file(path: Path, st: os.stat_result, shown: str) -> None:
    """An existing regular file: writable by us and not an SQLite database (read without following a link)."""
    if not os.access(path, os.W_OK):
        raise HpoError(f"-o {shown}: is read-only; hpo export replaces only a file it may write")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise HpoError(f"-o {shown}: cannot check it ({(e.strerror or str(e)).lower()})") from None
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
            raise HpoError(f"-o {shown}: changed while hpo checked it; run the export again")
        head = os.read(fd, len(_SQLITE_MAGIC))
    finally:
        os.close(fd)
    if head == _SQLITE_MAGIC:
        raise HpoError(f"-o {shown}: is an SQLite database; hpo export never replaces a database, name another file")


def write_file(data: bytes, target: Target) -> None:
    """Write ``data`` to ``target`` whole, through a new file beside it renamed over it at the end.

    A failure leaves ``target`` as it was. Just before the rename the target is checked again: a file
    that appeared, or was swapped for another (a link, a device), since :func:`check_target` is refused.
    """
    with _temporary(target) as tmp:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.fchmod(fd, target.mode)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise HpoError(f"-o {target.shown}: cannot write it ({(e.strerror or str(e)).lower()})") from None
        _swap_in(tmp, target)


@contextlib.contextmanager
def _temporary(target: Target) -> Iterator[Path]:
    tmp = target.path.with_name(f".{target.path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        yield tmp
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # renamed into place, or never made


def _swap_in(tmp: Path, target: Target) -> None:
    changed = HpoError(f"-o {target.shown}: changed while hpo exported (something else wrote there); nothing was replaced")
    try:
        if target.identity is None:
            # Nothing was there: link() puts the file in place only if the name is still free.
            try:
                os.link(tmp, target.path)
                return
            except FileExistsError:
                raise changed from None
            except OSError:
                if os.path.lexists(target.path):  # a file system without hard links: check, then rename
                    raise changed from None
        else:
            st = _lstat(target.path, target.shown)
            if st is None or (st.st_dev, st.st_ino) != target.identity or not stat.S_ISREG(st.st_mode):
                raise changed
        os.replace(tmp, target.path)
    except OSError as e:
        raise HpoError(f"-o {target.shown}: cannot write it ({(e.strerror or str(e)).lower()})") from None
