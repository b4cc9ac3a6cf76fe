"""Atomic checkpoint files: the last `keep_last` periodic ones plus the best.

A checkpoint is a tree of tensors, containers and Python scalars, written to a
temporary file and renamed into place (a crash mid-write never leaves a torn file)
and read back with `torch.load(weights_only=True)` (no code runs on load).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from rl_runner.errors import CheckpointError

FORMAT = "rl-runner-checkpoint/1"
CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "best.pt"
_PERIODIC = re.compile(r"^step_(\d+)\.pt$")


def save_atomic(state: dict[str, Any], path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint, with one clear error for anything unreadable."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for torn or foreign files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({reason})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not an rl-runner checkpoint")
    return state


def periodic_checkpoints(directory: Path) -> list[Path]:
    """Periodic checkpoints in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _PERIODIC.match(p.name))]
    return [path for _, path in sorted(found)]


class Checkpointer:
    def __init__(self, directory: Path, keep_last: int) -> None:
        self.directory = directory
        self.keep_last = keep_last

    def save(self, state: dict[str, Any], step: int) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"step_{step:010d}.pt"
        save_atomic({"format": FORMAT, **state}, path)
        for old in periodic_checkpoints(self.directory)[: -self.keep_last]:
            old.unlink()
        return path

    def save_best(self, state: dict[str, Any]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / BEST_NAME
        save_atomic({"format": FORMAT, **state}, path)
        return path

    def latest(self) -> Path | None:
        checkpoints = periodic_checkpoints(self.directory)
        return checkpoints[-1] if checkpoints else None
