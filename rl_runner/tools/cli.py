"""What the command-line tools share: one-line argument errors and warnings, stopping on
SIGINT/SIGTERM, and telling many curves apart."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NoReturn

from rl_runner.rundir import EVALUATIONS_FILE
from rl_runner.stopping import StopSignal

# Curves beyond this many no longer get one of matplotlib's ten distinct colours.
DISTINCT_COLOURS = 10
Linestyle = Literal["-", "--", ":", "-."]
# Cycled once colours come from a colour map, so that neighbouring hues differ in dash too.
LINESTYLES: tuple[Linestyle, ...] = ("-", "--", ":", "-.")


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line, `<prog>: error: ...`, exit status 2 (as rl-run's)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def tool_description(doc: str | None) -> str:
    """A tool's --help line: its docstring's first sentence, without markup."""
    paragraph = " ".join((doc or "").split("\n\n")[0].split())
    return paragraph.replace("`", "").split(". ")[0].rstrip(".") + "."


class Stopped(StopSignal):
    """SIGINT or SIGTERM while a tool runs: the atomic writes on the way out remove
    what is half written."""

    def line(self, prog: str, kept: str) -> str:
        """The one line a stopped tool prints: which signal, and what was kept."""
        return f"{prog}: stopped by {signal.Signals(self.signal_number).name}; {kept}"


def _raise_stopped(signal_number: int, _frame: object) -> None:
    raise Stopped(signal_number)


def stop_on_signals() -> None:
    """SIGINT and SIGTERM raise `Stopped`. To be installed before a renderer starts:
    SDL (pygame's classic-control rendering) takes SIGTERM over where it finds the
    default action, and then only queues a quit event nobody reads."""
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _raise_stopped)


def run_writing_all_or_nothing(
    prog: str, main: Callable[[list[str] | None], int], arguments: list[str] | None
) -> int:
    """`main` under `stop_on_signals`, for a tool whose files are written atomically
    at its end: a stop leaves nothing of them."""
    stop_on_signals()
    try:
        return main(arguments)
    except Stopped as stop:
        print(stop.line(prog, "nothing was written"), file=sys.stderr)
        return stop.exit_code


def warn(prog: str, message: str) -> None:
    print(f"{prog}: warning: {message}", file=sys.stderr)


def warn_no_evaluation(prog: str, run_dir: Path) -> None:
    """For a run without an evaluation row (its evaluations.jsonl is empty or missing:
    it has not reached its first evaluation, or stopped before it), whose curve the
    figure will lack."""
    warn(prog, f"{run_dir}: no evaluation yet ({EVALUATIONS_FILE} is empty or missing)")


def curve_styles(count: int) -> list[tuple[Any, Linestyle]]:
    """A (colour, linestyle) per curve, none repeated: matplotlib's ten colours while
    they suffice, else as many colours from a colour map, with the linestyles cycled."""
    if count <= DISTINCT_COLOURS:
        return [(f"C{index}", "-") for index in range(count)]
    from matplotlib import colormaps

    colours = colormaps["turbo"].resampled(count)
    return [(colours(index), LINESTYLES[index % len(LINESTYLES)]) for index in range(count)]
