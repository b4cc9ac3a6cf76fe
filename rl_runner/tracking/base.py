"""What every tracker shares: the protocol the trainer calls, and a background thread
that feeds the tracker so it never holds the training up.

Rows go to the tracker when a checkpoint is written (and at the end), never before: a
killed run's resume starts again from its newest checkpoint, so the tracker gets each
step once. `.tracking.json` in the run directory names the tracker's run; a resume
continues that run, asks it which steps it holds, and sends it the rest from the run's
own files. The first failure is said once, in one line, and the run goes on
with its own files (the truth) complete.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from rl_runner.rundir import (
    EVALUATIONS_FILE,
    METRICS_FILE,
    SWEEP_INDEX,
    VIDEO_PREFIX,
    VIDEOS_DIR,
    read_jsonl,
    read_summary,
    write_json_atomic,
)

log = logging.getLogger("rl_runner")

TRACKING_FILE = ".tracking.json"  # in a run directory: its tracker run
FINISH_TIMEOUT_S = 30  # what the end of a run waits for the tracker, at most
ARTIFACTS = ("checkpoints/best.pt", "summary.json", "manifest.json")

Row = tuple[int, int, dict[str, float]]  # (env step, time in ms, the row's scalars)
Video = tuple[int, Path]  # (env step, the GIF)


class Tracker(Protocol):
    def record(self, step: int, values: Mapping[str, float]) -> None:
        """A logged row, kept until `send_through` passes its step."""

    def add_video(self, step: int, path: Path) -> None:
        """An evaluation's GIF, kept and sent with the rows of its step."""

    def send_through(self, step: int) -> None:
        """The rows up to `step` (a checkpoint's) go to the tracker."""

    def finish(self, status: str) -> None:
        """The rest, the status and the artifacts; waits for them a bounded time."""

    def catch_up(self, step: int) -> None:
        """On resume: the rows up to `step` (the checkpoint's) that the tracker never got
        (a kill while they waited to be sent; tracking turned on at this resume), from
        the run's own files."""


class NoTracker:
    def record(self, step: int, values: Mapping[str, float]) -> None:
        pass

    def add_video(self, step: int, path: Path) -> None:
        pass

    def catch_up(self, step: int) -> None:
        pass

    def send_through(self, step: int) -> None:
        pass

    def finish(self, status: str) -> None:
        pass


class BackgroundTracker:
    """One tracker run for one run directory, fed from a background thread. A tracker
    says what its run is (`_open`), how it takes rows (`_send`) and how it ends
    (`_close`); `name` and `where` make its one line of failure."""

    name = "tracker"

    def __init__(self, run_dir: Path, params: dict[str, Any], where: str) -> None:
        self.run_dir = run_dir
        self.where = where
        self._rows: list[Row] = []
        self._videos: list[Video] = []
        self._work: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._failed = False
        self._worker = threading.Thread(
            target=self._serve, name=f"{self.name}-tracker", daemon=True
        )
        self._worker.start()
        self._work.put(lambda: self._open(params))

    # -- what each tracker does, on the background thread -----------------------------
    def _open(self, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def _send(self, rows: list[Row], videos: list[Video]) -> None:
        raise NotImplementedError

    def _close(self, status: str) -> None:
        raise NotImplementedError

    def _same_run(self, saved: dict[str, Any]) -> bool:
        """Whether `.tracking.json`'s run is this tracker's (same backend, same place)."""
        raise NotImplementedError

    def _resume_point(self) -> int:
        """On resume, after `_open`: the newest step the tracker's run holds (-1: none)."""
        raise NotImplementedError

    # -- the trainer's side: never waits on the tracker --------------------------------
    def record(self, step: int, values: Mapping[str, float]) -> None:
        if not self._failed:
            self._rows.append((step, int(time.time() * 1000), dict(values)))

    def add_video(self, step: int, path: Path) -> None:
        if not self._failed:
            self._videos.append((step, path))

    def send_through(self, step: int) -> None:
        rows = [row for row in self._rows if row[0] <= step]
        videos = [video for video in self._videos if video[0] <= step]
        self._rows = [row for row in self._rows if row[0] > step]
        self._videos = [video for video in self._videos if video[0] > step]
        if (rows or videos) and not self._failed:
            self._work.put(lambda: self._send(rows, videos))

    def catch_up(self, step: int) -> None:
        # metrics.jsonl holds every logged row, the evaluations' too; read here, before
        # the training appends to it
        rows = [
            (row["step"], int(float(row.get("time", time.time())) * 1000), _numbers(row))
            for row in read_jsonl(self.run_dir / METRICS_FILE)
            if row["step"] <= step
        ]
        videos = [video for video in _videos_in(self.run_dir) if video[0] <= step]
        # which of them the tracker holds, its run (opened first) says
        self._work.put(lambda: self._send_missing(rows, videos))

    def _send_missing(self, rows: list[Row], videos: list[Video]) -> None:
        held = self._resume_point()
        rows = [row for row in rows if row[0] > held]
        videos = [video for video in videos if video[0] > held]
        if rows or videos:
            self._send(rows, videos)

    def finish(self, status: str) -> None:
        if status in ("completed", "interrupted"):  # ended on a checkpoint of this step
            self.send_through(max((row[0] for row in self._rows), default=0))
        # else the rows past the newest checkpoint are the resume's to log again
        self._work.put(lambda: self._close(status))
        self._work.put(None)
        self._worker.join(FINISH_TIMEOUT_S)
        if self._worker.is_alive():
            self._warn(f"it did not answer within {FINISH_TIMEOUT_S} s at the end")

    # -- shared by the trackers --------------------------------------------------------
    def saved(self) -> dict[str, Any]:
        """`.tracking.json` as the last session left it ({} for none)."""
        return read_summary(self.run_dir / TRACKING_FILE) or {}

    def save(self, record: dict[str, Any]) -> None:
        """`.tracking.json`: the tracker's run (a resume continues it)."""
        write_json_atomic(self.run_dir / TRACKING_FILE, record)

    def sweep_dir(self) -> Path | None:
        """The sweep directory this run is a job of; None for a run outside a sweep."""
        parent = self.run_dir.parent
        return parent if (parent / SWEEP_INDEX).is_file() else None

    def with_plot(self, send: Callable[[Path], object]) -> None:
        """rl-plot's figure of this run (training and evaluation returns), given to
        `send` as a temporary file; nothing when there is nothing to draw yet (a run
        that failed before its first evaluation)."""
        from rl_runner.tools.plot import plot_runs

        evaluations = self.run_dir / EVALUATIONS_FILE
        if not evaluations.is_file() or evaluations.stat().st_size == 0:
            return
        with tempfile.TemporaryDirectory() as folder:
            figure = Path(folder) / "curves.png"
            plot_runs([self.run_dir], figure)
            send(figure)

    # -- the background thread --------------------------------------------------------
    def _serve(self) -> None:
        while (task := self._work.get()) is not None:
            if self._failed:
                continue
            try:
                task()
            except Exception as error:  # noqa: BLE001 - any failure: said once, run goes on
                self._warn(f"{type(error).__name__}: {' '.join(str(error).split())[:300]}")

    def _warn(self, reason: str) -> None:
        if not self._failed:
            self._failed = True
            log.warning(
                "tracking: %s at %s failed (%s); the run goes on without it, its own "
                "files complete",
                self.name,
                self.where,
                reason,
            )


def newest_step(rows: list[Row], videos: list[Video]) -> int:
    return max([row[0] for row in rows] + [video[0] for video in videos])


def _videos_in(run_dir: Path) -> list[Video]:
    """The run's evaluation GIFs by step (what a resume's catch-up sends again)."""
    found = []
    for path in sorted((run_dir / VIDEOS_DIR).glob(f"{VIDEO_PREFIX}*.gif")):
        digits = path.stem.removeprefix(VIDEO_PREFIX)
        if digits.isdigit():
            found.append((int(digits), path))
    return found


def _numbers(row: dict[str, Any]) -> dict[str, float]:
    """A JSONL row's scalars (strict JSON writes NaN and infinities as strings)."""
    values = {}
    for key, value in row.items():
        if key in ("step", "time") or isinstance(value, (list, bool)):
            continue
        try:
            values[key] = float(value)
        except (TypeError, ValueError):
            continue
    return values
