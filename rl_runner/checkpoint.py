"""Atomic checkpoint files: the last `keep_last` periodic ones plus the best.

A checkpoint is a tree of tensors, containers and Python scalars, written to a
temporary file and renamed into place (a crash or a full disk mid-write never leaves
a torn file, nor replaces a good one) and read back with
`torch.load(weights_only=True)` (no code runs on load).
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from rl_runner.errors import CheckpointError, StorageError
from rl_runner.rundir import (
    BEST_CHECKPOINT,
    atomic_file,
    io_reason,
    periodic_checkpoints,
    read_run_id,
)

FORMAT = "rl-runner-checkpoint/1"
REPLAY_KEY = "replay"  # the agent's replay memory inside a checkpoint's "agent" part
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format
_PICKLE_PROTOCOL_2_PLUS = b"\x80"


def save_atomic(state: dict[str, Any], path: Path) -> None:
    with atomic_file(path, what="checkpoint ") as temporary, open(temporary, "wb") as handle:
        try:
            torch.save(state, handle)
        except RuntimeError as error:  # torch wraps write failures of its zip writer
            raise StorageError(
                f"cannot write checkpoint {path}: the write stopped part-way, as on a full "
                "disk or past a file size limit"
            ) from error
        handle.flush()
        os.fsync(handle.fileno())


def _foreign_format(path: Path) -> str | None:
    """Why `path` is not torch's zip format at all, or None when it is."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(_ZIP_MAGIC):
        return None
    if head.startswith(_PICKLE_PROTOCOL_2_PLUS):
        return "a plain pickle, not an rl-runner checkpoint (pickles are never loaded)"
    return "not an rl-runner checkpoint (unknown file format)"


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint, with one clear error for anything unreadable (and none of
    torch's advice to load a file unsafely)."""
    try:
        foreign = _foreign_format(path)
        if foreign is not None:
            raise CheckpointError(f"checkpoint {path} is {foreign}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on odd files; the error says it
            state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:
        raise CheckpointError(f"checkpoint {path} cannot be read ({io_reason(error)})") from error
    except CheckpointError:
        raise
    except Exception as error:  # torch raises many types for torn files
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not an rl-runner checkpoint")
    return state


def check_run_identity(run_dir: Path, path: Path, state: dict[str, Any]) -> None:
    """Refuse a checkpoint that another run wrote (copied in): resuming it would splice
    two runs' histories into one. Runs and checkpoints from before identities pass."""
    mine, theirs = read_run_id(run_dir), state.get("run_id")
    if mine is not None and theirs is not None and mine != theirs:
        raise CheckpointError(
            f"checkpoint {path} was written by another run (id {theirs[:8]}), not by "
            f"{run_dir} (id {mine[:8]}); move it out of {path.parent} to resume from this "
            "run's own checkpoints"
        )


def holds_replay(state: dict[str, Any]) -> bool:
    agent = state.get("agent")
    return isinstance(agent, dict) and REPLAY_KEY in agent


def without_replay(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's content minus the agent's replay memory (shared, not copied)."""
    agent = {key: value for key, value in state["agent"].items() if key != REPLAY_KEY}
    return {**state, "agent": agent}


class Checkpointer:
    """Periodic checkpoints `step_N.pt` (the last `keep_last`) and `best.pt`.

    Only the newest periodic checkpoint holds the replay memory (a million MuJoCo
    transitions are hundreds of MB): when a new one is written, the one before it is
    rewritten without. Older checkpoints and best.pt hold networks, optimisers, RNGs
    and counters; a resume from one starts with an empty memory.
    """

    def __init__(self, directory: Path, keep_last: int) -> None:
        self.directory = directory
        self.keep_last = keep_last
        # the newest checkpoint written by this process, and its content without the
        # replay memory (None: it held none) to rewrite it that way once a newer one exists
        self._newest: tuple[Path, dict[str, Any] | None] | None = None

    def save(self, state: dict[str, Any], step: int) -> Path:
        self._make_directory()
        path = self.directory / f"step_{step:010d}.pt"
        previous = self.latest()
        save_atomic({"format": FORMAT, **state}, path)
        for old in periodic_checkpoints(self.directory)[: -self.keep_last]:
            old.unlink()
        if previous is not None and previous != path and previous.exists():
            self._drop_replay(previous)
        # A copy: the live tensors change with the next update.
        light = copy.deepcopy(without_replay(state)) if holds_replay(state) else None
        self._newest = (path, light)
        return path

    def _drop_replay(self, path: Path) -> None:
        if self._newest is not None and self._newest[0] == path:
            light = self._newest[1]
        else:  # the run was restarted since that checkpoint was written
            stored = load_checkpoint(path)
            light = without_replay(stored) if holds_replay(stored) else None
        if light is not None:
            save_atomic({**light, "format": FORMAT}, path)

    def save_best(self, state: dict[str, Any]) -> Path:
        self._make_directory()
        path = self.directory / BEST_CHECKPOINT
        save_atomic({"format": FORMAT, **state}, path)
        return path

    def _make_directory(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(f"cannot create {self.directory}: {io_reason(error)}") from error

    def remove_partial_writes(self) -> None:
        """Temporary files of a write that a kill interrupted."""
        for temporary in self.directory.glob(".*.tmp"):
            temporary.unlink(missing_ok=True)

    def latest(self) -> Path | None:
        checkpoints = periodic_checkpoints(self.directory)
        return checkpoints[-1] if checkpoints else None
