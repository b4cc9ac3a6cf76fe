"""Stop signals that arrive before the training loop installs its own handlers, and
the stop of a sweep whose jobs run in other processes.

`rl-run` installs these first. A SIGINT or SIGTERM while the run is being set up raises
`StartupInterrupted` (a KeyboardInterrupt: library code that catches `Exception` does not
swallow it) and is remembered, so that the trainer stops before its first step even if
some library did swallow the exception.

A sweep's driver whose jobs run in other processes on this machine (joblib's, a local
Ray's or submitit's workers) must not stop its launcher at the first signal: the
launcher would kill the workers mid-write. It asks each running job to checkpoint and
stop (`SWEEP_STOP_SIGNAL`, which a job takes as one stop request, never as the second
Ctrl-C that stops at once, since a Ctrl-C at a terminal reaches the workers too), waits
until none is running, and only then stops the launcher.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Nothing heavier than the standard library at the top: `rl-run` imports this first of
# all, so that a Ctrl-C while the rest loads is already its own (see entry.py).

SWEEP_STOP_SIGNAL = signal.SIGUSR1
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, SWEEP_STOP_SIGNAL)
_POLL_SECONDS = 0.2

_pending: int | None = None


class StopSignal(KeyboardInterrupt):
    """A stop signal, raised where it lands (so that `finally` blocks on the way out
    undo what is half done); a KeyboardInterrupt, so that library code catching
    `Exception` does not swallow it."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number  # 130 for SIGINT, 143 for SIGTERM


class StartupInterrupted(StopSignal):
    """A stop signal before training started."""


def _remember_and_stop(signum: int, _frame: object) -> None:
    """The first stop signal stops the start-up; a second (two Ctrl-C in a row) must not
    interrupt the clean-up the first set going."""
    global _pending
    if _pending is not None:
        return
    _pending = signum
    raise StartupInterrupted(signum)


def _remember(signum: int, _frame: object) -> None:
    global _pending
    if _pending is None:
        _pending = signum


def remember_stop_signals() -> None:
    """While modules load: a stop signal is only remembered (an exception raised inside
    a library's import can leave it half set up)."""
    for stop_signal in _STOP_SIGNALS:
        signal.signal(stop_signal, _remember)


def install_startup_handlers() -> None:
    for stop_signal in _STOP_SIGNALS:
        signal.signal(stop_signal, _remember_and_stop)


def ignore_stop_signals() -> None:
    """The process is ending: a further Ctrl-C must not cut its clean-up short (the
    release of a claimed run directory) with a traceback."""
    if threading.current_thread() is threading.main_thread():
        for stop_signal in _STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_IGN)


@contextmanager
def stop_signals_deferred() -> Iterator[None]:
    """Hold stop signals back for a few statements that must not be cut in two; one
    that arrives meanwhile is delivered (its handler runs) as the block ends."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def pending_signal() -> int | None:
    """The stop signal that arrived during set-up, if any."""
    return _pending


def raise_if_stopped_during_startup() -> None:
    if _pending is not None:
        raise StartupInterrupted(_pending)


def stop_name(signum: int) -> str:
    """How a stop is named in the messages of the run it stopped."""
    if signum == SWEEP_STOP_SIGNAL:
        return "the sweep's stop"
    return signal.Signals(signum).name


def job_process() -> dict[str, object]:
    """What a running job's row in the sweep's index says about where it runs, so
    that its driver can ask it to stop."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def install_sweep_driver_handlers(sweep_dir: Path) -> None:
    """The driver's first stop signal waits for the jobs it runs elsewhere to
    checkpoint, then stops the launcher; a second stops it at once."""

    def stop(signum: int, _frame: object) -> None:
        global _pending
        if _pending is None:
            _pending = signum
            stop_running_jobs(sweep_dir, announce=_announce)
        raise StartupInterrupted(signum)

    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, stop)


def _announce(jobs: int) -> None:
    print(
        f"rl-run: stopping the sweep: waiting for {jobs} running job(s) to save a "
        "checkpoint (stop again to end them at once)",
        file=sys.stderr,
        flush=True,
    )


def stop_running_jobs(sweep_dir: Path, announce: Callable[[int], None]) -> None:
    """No further job starts; each job running in another process on this machine is
    asked to stop, and this returns once none is left running (the job has rewritten
    its row) or alive."""
    from rl_runner.rundir import SWEEP_STOPPING

    (sweep_dir / SWEEP_STOPPING).touch()
    asked: set[int] = set()
    while running := _running_elsewhere(sweep_dir):
        for pid in running - asked:
            _send(pid, SWEEP_STOP_SIGNAL)
        if not asked:
            announce(len(running))
        asked |= running
        time.sleep(_POLL_SECONDS)


def _running_elsewhere(sweep_dir: Path) -> set[int]:
    """The live processes, other than this one, of this machine's running jobs."""
    from rl_runner.rundir import read_sweep_index

    here = job_process()
    pids = {
        row["pid"]
        for row in read_sweep_index(sweep_dir).values()
        if row.get("status") == "running"
        and row.get("host") == here["host"]
        and row.get("pid") not in (None, here["pid"])
    }
    return {pid for pid in pids if _send(pid, 0)}


def _send(pid: int, signum: int) -> bool:
    """False where the process is gone."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True
