"""The waits of a storage (heartbeats, grace period, outage window), overridable per run, and URLs
without their passwords: what every other module of the storage package needs, so they import
this module and never each other in a circle."""

from __future__ import annotations

import os

from hpo.errors import HpoError

HEARTBEAT_INTERVAL = 5  # seconds between a running trial's heartbeats
GRACE_PERIOD = 20  # seconds without a heartbeat before a RUNNING trial counts as dead
MAX_RETRY = 3  # a trial whose worker died is retried this often, with the same parameters
SQLITE_TIMEOUT = 120  # seconds a writer waits for SQLite's lock before giving up
OUTAGE_SECONDS = 60  # how long workers retry, with backoff, while the storage does not answer
CONNECT_TIMEOUT = 10  # seconds to wait for a database server to accept a connection (then retried)

# The waits above, overridable per run (tests shorten them; a cluster with slow networks lengthens them).
TIMING_ENV = {
    "HPO_HEARTBEAT_INTERVAL": HEARTBEAT_INTERVAL,
    "HPO_GRACE_PERIOD": GRACE_PERIOD,
    "HPO_OUTAGE_SECONDS": OUTAGE_SECONDS,
}


def timing(name: str) -> int:
    """The wait ``name`` (a key of :data:`TIMING_ENV`) in seconds: its environment variable, else the default."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return TIMING_ENV[name]
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 < value <= 86_400:
        raise HpoError(f"environment variable {name} must be a whole number of seconds from 1 to 86400, but got {raw!r}")
    return value


def check_timings() -> None:
    """Refuse a bad wait setting before anything is written (a storage file, a lock file)."""
    for name in TIMING_ENV:
        timing(name)


def safe_url(url: str) -> str:
    """``url`` without its password, for messages (see :func:`hpo.secrets.masked_url`)."""
    from hpo.secrets import masked_url

    return masked_url(url)
