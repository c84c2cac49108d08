"""Time budgets for symbolic work: SymPy has none of its own, so a stage that may run long
(simplification, a whole derivation) runs under a wall-clock budget and is interrupted when it
is spent.

Budgets nest: an inner one (one ``simplify`` call) may expire and be handled by its caller
(keep the unsimplified form) while the outer one (the whole derivation) keeps counting. The
interruption is :class:`BudgetExceeded`, a ``BaseException``, so that no ``except Exception``
inside SymPy swallows it. Budgets use ``SIGALRM`` and so apply in the main thread of a POSIX
process; elsewhere the work runs unbudgeted.

>>> import time
>>> with time_budget(5) as outer:
...     try:
...         with time_budget(0.05) as inner:
...             time.sleep(1)
...     except BudgetExceeded as err:
...         print(err.budget is inner)
True
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field


class BudgetExceeded(BaseException):
    """Raised inside the work when the innermost expired budget is spent; ``budget`` says which."""

    def __init__(self, budget):
        super().__init__(f"the time budget of {budget.seconds:g} s is spent")
        self.budget = budget


@dataclass(eq=False)
class Budget:
    """One running budget: its length in seconds and its deadline on the monotonic clock."""

    seconds: float
    deadline: float = field(default=0.0)


_active: list = []  # running budgets, outermost first
_saved_handler = None


def _can_interrupt() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _arm() -> None:
    soonest = min(b.deadline for b in _active)
    signal.setitimer(signal.ITIMER_REAL, max(soonest - time.monotonic(), 1e-4))


def _on_alarm(signum, frame):
    if not _active:  # a late alarm after the last budget closed
        return
    now = time.monotonic()
    expired = [b for b in _active if b.deadline <= now + 1e-4]
    if expired:
        raise BudgetExceeded(expired[-1])
    _arm()


@contextmanager
def time_budget(seconds: float | None):
    """Run the body under a budget of ``seconds`` (None: no budget); yields the :class:`Budget`."""
    global _saved_handler
    budget = Budget(float(seconds or 0), time.monotonic() + float(seconds or 0))
    if seconds is None or not _can_interrupt():
        yield budget
        return
    if not _active:
        _saved_handler = signal.signal(signal.SIGALRM, _on_alarm)
    _active.append(budget)
    _arm()
    try:
        yield budget
    finally:
        _active.remove(budget)
        if _active:
            _arm()
        else:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, _saved_handler)
