"""Metrics to TensorBoard and JSON-lines files under one `log(metrics, step)`.

The x-axis is always the environment step. On resume, rows past the checkpoint's
step are dropped from the JSONL files and purged from TensorBoard, so the logs read
as one uninterrupted run. The JSONL files are strict JSON: a non-finite value is
written as the string "NaN", "Infinity" or "-Infinity".
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from rl_runner.errors import StorageError
from rl_runner.rundir import (
    EVALUATIONS_FILE,
    METRICS_FILE,
    TENSORBOARD_DIR,
    VIDEO_PREFIX,
    VIDEOS_DIR,
    atomic_file,
    io_reason,
    json_number,
    truncate_jsonl,
)
from rl_runner.tracking import NoTracker, Tracker
from rl_runner.video import gif_bytes

HPARAMS_DIR = "hparams"  # inside tensorboard/: the HParams record of a finished run


class RunLogger:
    def __init__(
        self, run_dir: Path, resume_step: int | None = None, tracker: Tracker | None = None
    ) -> None:
        self.run_dir = run_dir
        self.tracker = tracker or NoTracker()  # gets every row (tracking=mlflow)
        # a resumed run's logs that were deleted: their rows before the resume are lost
        self.missing_on_resume: list[str] = []
        if resume_step is not None:
            for name in (METRICS_FILE, EVALUATIONS_FILE):
                if not (run_dir / name).exists():
                    self.missing_on_resume.append(name)
                truncate_jsonl(run_dir / name, resume_step)
        purge_step = None if resume_step is None else resume_step + 1
        with self._tensorboard():
            self._writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=purge_step)
        self._metrics: IO[str] = open(run_dir / METRICS_FILE, "a")  # noqa: SIM115 (closed in close())
        self._evaluations: IO[str] = open(run_dir / EVALUATIONS_FILE, "a")  # noqa: SIM115

    @contextlib.contextmanager
    def _tensorboard(self) -> Iterator[None]:
        """TensorBoard writes in a background thread and hands its failures (a full
        disk) to the next call: make them the run's storage error."""
        try:
            yield
        except OSError as error:
            directory = self.run_dir / TENSORBOARD_DIR
            raise StorageError(f"cannot write {directory}: {io_reason(error)}") from error

    def log(self, metrics: Mapping[str, torch.Tensor | float], step: int) -> dict[str, float]:
        """Write one row; returns the values as floats."""
        values = {tag: float(value) for tag, value in metrics.items()}
        with self._tensorboard():
            for tag, value in values.items():
                self._writer.add_scalar(tag, value, step)
        row = {tag: json_number(value) for tag, value in values.items()}
        self._write(self._metrics, {"step": step, "time": time.time(), **row})
        self.tracker.record(step, values)
        return values

    def log_evaluation(self, step: int, metrics: dict[str, float], returns: list[float]) -> None:
        self.log(metrics, step)
        row = {tag: json_number(value) for tag, value in metrics.items()}
        episodes = [json_number(value) for value in returns]
        self._write(self._evaluations, {"step": step, **row, "returns": episodes})
        self.flush()

    def log_hparams(self, hparams: dict[str, Any], results: dict[str, float], step: int) -> None:
        """The run's settings and results for TensorBoard's HParams dashboard, which
        compares the runs below a log directory (a sweep's jobs) in one table. Written
        to their own folder, replaced whenever the run finishes (a resumed run that
        finishes again has one record, and its step-by-step logs stay as they were)."""
        values = {
            key: value if isinstance(value, (int, float, str, bool)) else str(value)
            for key, value in hparams.items()
        }
        directory = self.run_dir / TENSORBOARD_DIR / HPARAMS_DIR
        with self._tensorboard():
            shutil.rmtree(directory, ignore_errors=True)
            with SummaryWriter(str(directory)) as writer:
                for summary in hparams_summaries(values, results):
                    writer._get_file_writer().add_summary(summary)
                for tag, value in results.items():
                    writer.add_scalar(tag, value, step)

    def log_video(self, step: int, frames: list[np.ndarray], fps: float) -> None:
        """An evaluation episode's frames, as `videos/eval_step_<N>.gif` (written
        atomically; a resume that films the same step again replaces it) and as
        TensorBoard's `eval/video` (the GIF, as `add_video` writes one: TensorBoard's
        image dashboard plays it), and to the tracker's artifacts under videos/."""
        data = gif_bytes(frames, fps)
        directory = self.run_dir / VIDEOS_DIR
        directory.mkdir(exist_ok=True)
        path = directory / f"{VIDEO_PREFIX}{step:010d}.gif"
        with atomic_file(path) as temporary:
            temporary.write_bytes(data)
        self.tracker.add_video(step, path)
        height, width = frames[0].shape[:2]
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=data)
        summary = Summary(value=[Summary.Value(tag="eval/video", image=image)])
        with self._tensorboard():
            # SummaryWriter's own file writer, as add_video uses it (add_video itself
            # needs moviepy to encode the GIF)
            self._writer._get_file_writer().add_summary(summary, step)

    def log_text(self, tag: str, text: str) -> None:
        with self._tensorboard():
            self._writer.add_text(tag, text, 0)

    def _write(self, handle: IO[str], row: dict[str, Any]) -> None:
        try:
            handle.write(json.dumps(row, allow_nan=False) + "\n")
        except OSError as error:
            raise StorageError(f"cannot write {handle.name}: {io_reason(error)}") from error

    def flush(self) -> None:
        with self._tensorboard():
            self._writer.flush()
        for handle in (self._metrics, self._evaluations):
            try:
                handle.flush()
            except OSError as error:
                raise StorageError(f"cannot write {handle.name}: {io_reason(error)}") from error

    def close(self) -> None:
        """Close everything; a write error here only means rows past the newest
        checkpoint are lost, which a resume drops anyway."""
        with contextlib.suppress(OSError):
            self._writer.close()
        for handle in (self._metrics, self._evaluations):
            with contextlib.suppress(OSError):
                handle.close()
