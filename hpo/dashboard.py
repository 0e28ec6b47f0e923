"""`hpo dashboard`: optuna-dashboard on the study storage, bound to loopback unless told otherwise."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from hpo.errors import HpoError
from hpo.storage import open_storage
from hpo.workspace import load_workspace


def serve(storage: str | None = None, *, host: str = "127.0.0.1", port: int = 8080, say: Callable[[str], None] = print) -> None:
    """Serve until interrupted. The storage is opened as hpo opens it (WAL SQLite, heartbeats)."""
    import socket

    if not 0 < port < 65536:
        raise HpoError(f"--port must be between 1 and 65535, but got {port}")
    url = load_workspace().storage_url(storage)
    opened = open_storage(url, create=False)
    with socket.socket() as probe:  # a clear error instead of a traceback from the server
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise HpoError(f"--host {host} --port {port}: cannot listen there ({e.strerror}); pick another --port") from None
    import optuna_dashboard

    say(f"optuna-dashboard for {url} at http://{host}:{port}/ (Ctrl-C stops it)")
    # wsgiref swallows a KeyboardInterrupt that lands while it answers a request (a bare
    # `except`), so Ctrl-C could be lost; the dashboard holds nothing that needs a clean exit.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: os._exit(0))
    optuna_dashboard.run_server(opened, host=host, port=port)
