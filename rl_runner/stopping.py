"""Stop signals that arrive before the training loop installs its own handlers.

`rl-run` installs these first. A SIGINT or SIGTERM while the run is being set up raises
`StartupInterrupted` (a KeyboardInterrupt: library code that catches `Exception` does not
swallow it) and is remembered, so that the trainer stops before its first step even if
some library did swallow the exception.
"""

from __future__ import annotations

import signal

_pending: int | None = None


class StartupInterrupted(KeyboardInterrupt):
    """A stop signal before training started."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number


def _remember_and_stop(signum: int, _frame: object) -> None:
    global _pending
    _pending = signum
    raise StartupInterrupted(signum)


def install_startup_handlers() -> None:
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _remember_and_stop)


def pending_signal() -> int | None:
    """The stop signal that arrived during set-up, if any."""
    return _pending


def raise_if_stopped_during_startup() -> None:
    if _pending is not None:
        raise StartupInterrupted(_pending)
