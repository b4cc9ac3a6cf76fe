"""Metrics to TensorBoard and JSON-lines files under one `log(metrics, step)`.

The x-axis is always the environment step. On resume, rows past the checkpoint's
step are dropped from the JSONL files and purged from TensorBoard, so the logs read
as one uninterrupted run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import torch
from torch.utils.tensorboard import SummaryWriter

METRICS_FILE = "metrics.jsonl"
EVALUATIONS_FILE = "evaluations.jsonl"
TENSORBOARD_DIR = "tensorboard"


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Keep only the rows of `path` whose step is at most `last_step`."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text().splitlines(keepends=True)
        if line.strip() and json.loads(line)["step"] <= last_step
    ]
    path.write_text("".join(kept))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class RunLogger:
    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.run_dir = run_dir
        if resume_step is not None:
            for name in (METRICS_FILE, EVALUATIONS_FILE):
                truncate_jsonl(run_dir / name, resume_step)
        purge_step = None if resume_step is None else resume_step + 1
        self._writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=purge_step)
        self._metrics: IO[str] = open(run_dir / METRICS_FILE, "a")  # noqa: SIM115 (closed in close())
        self._evaluations: IO[str] = open(run_dir / EVALUATIONS_FILE, "a")  # noqa: SIM115

    def log(self, metrics: Mapping[str, torch.Tensor | float], step: int) -> None:
        values = {tag: float(value) for tag, value in metrics.items()}
        for tag, value in values.items():
            self._writer.add_scalar(tag, value, step)
        self._metrics.write(json.dumps({"step": step, "time": time.time(), **values}) + "\n")

    def log_evaluation(self, step: int, metrics: dict[str, float], returns: list[float]) -> None:
        self.log(metrics, step)
        row = {"step": step, **metrics, "returns": returns}
        self._evaluations.write(json.dumps(row) + "\n")
        self.flush()

    def log_text(self, tag: str, text: str) -> None:
        self._writer.add_text(tag, text, 0)

    def flush(self) -> None:
        self._writer.flush()
        self._metrics.flush()
        self._evaluations.flush()

    def close(self) -> None:
        self._writer.close()
        self._metrics.close()
        self._evaluations.close()
