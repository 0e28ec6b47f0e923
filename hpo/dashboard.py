"""`hpo dashboard`: optuna-dashboard on the study storage, read-only and bound to loopback unless told otherwise.

optuna-dashboard (0.21) has no read-only mode: its API deletes and renames studies, creates them, saves
notes, tells trials and uploads artifacts, past every check of ``hpo delete`` (promoted runs, derived
studies, RUNNING trials). So hpo puts :func:`read_only` in front of it: every request but GET, HEAD and
OPTIONS is answered 403 with a JSON ``reason``, which the dashboard shows ("Failed: ...", or "Failed to
delete study"). ``--allow-write`` removes it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError, option
from hpo.secrets import masked_url
from hpo.storage import open_storage
from hpo.workspace import load_workspace

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _read_only_reason(allow_write: str) -> str:
    """Why the dashboard refuses a write, naming ``allow_write``: how the one who started it allows writes."""
    return (
        "hpo dashboard is read-only: it changes nothing in the storage (delete a study with `hpo delete`, "
        f"or restart the dashboard with {allow_write})"
    )


READ_ONLY_REASON = _read_only_reason("--allow-write")  # as `hpo dashboard` serves it
_DRAIN_LIMIT = 1 << 20  # read at most this much of a refused request's body, so the client sees the 403


def read_only(app: WSGIApplication, reason: str = READ_ONLY_REASON) -> WSGIApplication:
    """``app`` that answers 403 ``{"reason": ...}`` to every request that could write (not GET, HEAD, OPTIONS)."""

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if str(environ.get("REQUEST_METHOD", "GET")).upper() in READ_METHODS:
            return app(environ, start_response)
        _drain(environ)
        body = json.dumps({"reason": reason}).encode()
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return guarded


def _drain(environ: WSGIEnvironment) -> None:
    # A client still sending its body when the server answers and closes may see a reset, not the 403.
    try:
        left = min(int(environ.get("CONTENT_LENGTH") or 0), _DRAIN_LIMIT)
    except ValueError:
        return
    stream = environ.get("wsgi.input")
    while left > 0 and stream is not None:
        chunk = stream.read(min(left, 65536))
        if not chunk:
            break
        left -= len(chunk)


def exposure_warning(host: str, *, allow_write: bool) -> str | None:
    """The warning for a bind address other hosts can reach (None for loopback)."""
    if not _reachable_from_other_hosts(host):
        return None
    where = "every network interface" if host in ("0.0.0.0", "::", "") else host
    if allow_write:
        return (
            f"warning: --host {host} with --allow-write: anyone who can reach {where} can delete and rename studies, "
            "overwrite notes and tell trials, with no password and none of the checks of `hpo delete`; "
            "bind to 127.0.0.1 (an SSH tunnel reaches it from elsewhere)"
        )
    return (
        f"warning: --host {host}: anyone who can reach {where} can read every study in the storage (no password); "
        "bind to 127.0.0.1 (an SSH tunnel reaches it from elsewhere)"
    )


def _reachable_from_other_hosts(host: str) -> bool:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host or None, None)}
    except (OSError, UnicodeError):
        return True  # cannot tell: warn rather than stay silent
    return not addresses or any(not ipaddress.ip_address(str(a).split("%", 1)[0]).is_loopback for a in addresses)


def serve(
    storage: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    allow_write: bool = False,
    say: Callable[[str], None] = print,
) -> None:
    """Serve until interrupted. The storage is opened as hpo opens it (WAL SQLite, heartbeats).

    Read-only unless ``allow_write``; ``say`` gets the start line and, for a bind address other hosts
    can reach, a warning.
    """
    if not 0 < port < 65536:
        raise HpoError(f"{option('port')} must be between 1 and 65535, but got {port}")
    url = load_workspace().storage_url(storage)
    opened = open_storage(url, create=False)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as bottle's wsgiref server picks it
    with socket.socket(family) as probe:  # a clear error instead of a traceback from the server
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            bind = f"{option('host', host)} {option('port', port)}"
            raise HpoError(f"{bind}: cannot listen there ({e.strerror}); pick another {option('port')}") from None
    import bottle
    import optuna_dashboard

    app: Any = optuna_dashboard.wsgi(opened)
    if not allow_write:
        app = read_only(app, _read_only_reason(option("allow_write")))
    warning = exposure_warning(host, allow_write=allow_write)
    if warning:
        say(warning)
    shown_host = f"[{host}]" if ":" in host else host
    access = "with write access: its Delete button skips every check of `hpo delete`" if allow_write else "read-only"
    say(f"optuna-dashboard for {masked_url(url)} at http://{shown_host}:{port}/, {access} (Ctrl-C stops it)")
    # wsgiref swallows a KeyboardInterrupt that lands while it answers a request (a bare
    # `except`), so Ctrl-C could be lost; the dashboard holds nothing that needs a clean exit.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: os._exit(0))
    bottle.run(app, host=host, port=port)
