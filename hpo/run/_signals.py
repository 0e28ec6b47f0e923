"""Stop signals: Ctrl-C, SIGTERM or SIGHUP once finishes the running trials, twice aborts them."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

# Each asks a run to stop as Ctrl-C does: once finishes the running trials, twice aborts them. SIGTERM
# is how `timeout`, schedulers and CI cancel a job; SIGHUP comes when the terminal goes away.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SAME_STOP_SECONDS = 0.5  # a stop signal of another kind this soon after the first is the same stop


class _Stop:
    """Ctrl-C (or another of ``STOP_SIGNALS``) once: finish the running trial, start no other.
    Twice: abort it (it is retried)."""

    def __init__(self, on_first: Callable[[int], None] | None = None, abort_on: frozenset[int] = frozenset()) -> None:
        self.requested = False
        self.aborted = False
        self._on_first = on_first
        self._first: tuple[int, float] | None = None  # the first signal and when it came
        # Signals that abort at once, as a second signal does: `hpo worker`'s SIGTERM, since the
        # engine that sends it (Kubernetes, Slurm, Ray) kills the process a few seconds later.
        self._abort_on = abort_on

    @property
    def signal(self) -> int | None:
        """The stop signal that came first, if any."""
        return None if self._first is None else self._first[0]

    def handle(self, signum: int, frame: object) -> None:
        first = self._first
        if first is not None and first[0] != signum and time.monotonic() - first[1] < SAME_STOP_SECONDS:
            # One stop delivered twice: a scheduler that signals every process (systemd's control group,
            # `kill -TERM` of each pid) reaches a worker directly and through its parent's SIGINT.
            return
        if self.requested or signum in self._abort_on:
            if not self.requested:
                self.requested = True
                self._first = (signum, time.monotonic())
                if self._on_first:
                    self._on_first(signum)
            # Raised inside a model's callback (CatBoost calls back every iteration), this comes
            # back wrapped in the library's own error: `aborted` says what it was.
            self.aborted = True
            # Cut short mid-query, SQLAlchemy's pool logs a traceback as it throws the
            # connection away: expected after an abort, so not shown.
            logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
            # A C extension that cannot pass it on (CatBoost's Cython callback) prints it through
            # sys.excepthook, then as "Exception ignored in ..."; the trial is failed all the same.
            sys.excepthook = _quiet_excepthook(sys.excepthook)
            sys.unraisablehook = _quiet_unraisablehook(sys.unraisablehook)
            raise KeyboardInterrupt
        self.requested = True
        self._first = (signum, time.monotonic())
        if self._on_first:
            self._on_first(signum)


def stopping_message(signum: int, trials: str = "trial") -> str:
    """What the run says when the first stop signal arrives."""
    if signum == signal.SIGINT:
        return f"Stopping after the running {trials} (Ctrl-C again to abort {'them' if trials.endswith('s') else 'it'})"
    return f"{signal.Signals(signum).name} received: stopping after the running {trials} (a second signal aborts)"


def aborting_message(signum: int) -> str:
    """What a worker says when a signal that aborts at once arrives."""
    return f"{signal.Signals(signum).name} received: the running trial is failed and requeued in its budget slot; stopping"


def _quiet_excepthook(hook: Callable[..., object]) -> Callable[..., object]:
    def quiet(kind: type[BaseException], value: BaseException, tb: object) -> object:
        return None if isinstance(value, KeyboardInterrupt) else hook(kind, value, tb)

    return quiet


def _quiet_unraisablehook(hook: Callable[[Any], object]) -> Callable[[Any], object]:
    def quiet(unraisable: Any) -> object:
        return None if isinstance(unraisable.exc_value, KeyboardInterrupt) else hook(unraisable)

    return quiet


@contextlib.contextmanager
def _no_interrupt() -> Iterator[None]:
    """Hold the stop signals back (they are delivered on exit), in the main thread of a process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
