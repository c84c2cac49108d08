"""Ctrl-C and SIGTERM as an exception that the training loop can catch, and sections (saving an
epoch) that finish before it is raised.

Inside ``with StopSignals() as stop:`` SIGINT and SIGTERM raise :class:`Interrupted` (a
``KeyboardInterrupt``) where the program is; inside ``with stop.deferred():`` they are noted and
raised when the section ends. The previous handlers come back on exit. Outside the main thread,
where Python allows no handlers, nothing is installed and a plain ``KeyboardInterrupt`` still works.

>>> import os, signal
>>> with StopSignals() as stop:
...     with stop.deferred(raise_pending=False):
...         os.kill(os.getpid(), signal.SIGTERM)   # noted, not raised inside the section
...     stop.pending
15
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived: ``signum`` is SIGINT (Ctrl-C) or SIGTERM."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal_name(signum))
        self.signum = signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:  # pragma: no cover
        return f"signal {signum}"


def signal_of(err: BaseException) -> int:
    """The signal behind an interruption (a bare KeyboardInterrupt is Ctrl-C)."""
    return getattr(err, "signum", signal.SIGINT)


class StopSignals:
    """Install handlers for SIGINT and SIGTERM that raise :class:`Interrupted` (see the module)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.pending: int | None = None
        self._deferring = 0
        self._previous: dict = {}

    def __enter__(self):
        if self.enabled and threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
        return False

    def _handle(self, signum, frame):
        if self._deferring:
            self.pending = self.pending or signum
            return
        raise Interrupted(signum)

    @contextmanager
    def deferred(self, raise_pending: bool = True):
        """Hold stop signals until the section ends; then raise the first one (if ``raise_pending``)."""
        self._deferring += 1
        try:
            yield self
        finally:
            self._deferring -= 1
        if raise_pending and not self._deferring and self.pending is not None:
            signum, self.pending = self.pending, None
            raise Interrupted(signum)
