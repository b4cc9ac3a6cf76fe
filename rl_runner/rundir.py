"""The run directory: its file names, one writer at a time, and a start that leaves no trace.

A run directory is the unit of truth (config, logs, checkpoints, summary). This module
knows its layout and guards it: `claim_run_dir` creates (or adopts) the directory and
remembers what it created, so a start that fails removes exactly that and nothing of
the user's; `RunLock` keeps a second process out while one writes. No torch or Hydra
import here: `rl-run` checks directories before it loads anything heavy.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import shlex
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rl_runner.errors import ConfigError, RunLocked, StorageError
from rl_runner.stopping import stop_signals_deferred

HYDRA_DIR = ".hydra"
SAVED_CONFIG = Path(HYDRA_DIR) / "config.yaml"
RESUME_HISTORY = Path(HYDRA_DIR) / "resumes.yaml"
METRICS_FILE = "metrics.jsonl"
EVALUATIONS_FILE = "evaluations.jsonl"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINT_DIR = "checkpoints"
BEST_CHECKPOINT = "best.pt"
SUMMARY_FILE = "summary.json"
VIDEOS_DIR = "videos"  # eval.video's GIFs
VIDEO_PREFIX = "eval_step_"  # videos/eval_step_<N>.gif: the evaluation at step N
LOG_FILE = "train.log"
LOCK_FILE = ".rl-run.lock"
RUN_ID_FILE = ".rl-run-id"  # the run's identity, which each of its checkpoints carries
SWEEP_INDEX = "sweep.jsonl"  # one row per job of a sweep, kept current as jobs run
_SWEEP_INDEX_LOCK = ".sweep-index.lock"
SWEEP_STOPPING = ".sweep-stopping"  # a stopping sweep's driver says: no job starts
# Files whose presence means a run has started writing here.
RUN_MARKERS = (SUMMARY_FILE, CHECKPOINT_DIR, METRICS_FILE, EVALUATIONS_FILE, TENSORBOARD_DIR)
_PERIODIC = re.compile(r"^step_(\d+)\.pt$")
# PATH_MAX is 4096 on Linux; the longest file a run writes adds about 100 characters.
MAX_RUN_DIR_LENGTH = 3900


def periodic_checkpoints(directory: Path) -> list[Path]:
    """Periodic checkpoints (`step_<N>.pt`) in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _PERIODIC.match(p.name))]
    return [path for _, path in sorted(found)]


def checkpoint_step(path: Path) -> int | None:
    """The step in a periodic checkpoint's name (`step_<N>.pt`)."""
    match = _PERIODIC.match(path.name)
    return int(match.group(1)) if match else None


def inside_run(path: Path) -> Path | None:
    """The run directory that `path` would be nested in, if any. Only a saved config
    counts here: a home directory with a `tensorboard/` folder is not a run."""
    for parent in path.resolve().parents:
        if (parent / SAVED_CONFIG).is_file():
            return parent
    return None


def contains_runs(path: Path) -> bool:
    """Runs below `path` (as in outputs/<date>/<run> or a sweep's <dir>/<job>)."""
    return any(
        next(path.glob("*/" * depth + str(SAVED_CONFIG)), None) is not None for depth in range(1, 5)
    )


def has_training_output(path: Path) -> bool:
    return any((path / marker).exists() for marker in RUN_MARKERS)


def holds_run(path: Path) -> bool:
    """A run started here: it saved its config (it is resumable) or wrote output."""
    return (path / SAVED_CONFIG).exists() or has_training_output(path)


def missing_config_advice(run_dir: Path) -> str:
    """Where to go from a run whose saved config was deleted (its checkpoints cannot
    rebuild the settings)."""
    return (
        f"{run_dir} holds a run whose saved config {SAVED_CONFIG} is missing; restore that "
        f"file to continue it with {resume_command(run_dir)}, or move the directory away"
    )


def resume_command(run_dir: Path) -> str:
    """The command that continues `run_dir`, quoted for a POSIX shell."""
    return f"rl-run resume={shlex.quote(str(run_dir))}"


def io_reason(error: OSError) -> str:
    """`[Errno 28] No space left on device: 'x'` -> `No space left on device`."""
    return error.strerror or str(error)


def json_number(value: float) -> float | str:
    """A float as strict JSON can hold it: non-finite values become "NaN", "Infinity"
    or "-Infinity" (strings that Python's float() reads back)."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def discard_outputs(run_dir: Path) -> None:
    """Remove the training outputs of a run that stopped before its first checkpoint,
    so it can start again from its saved config (the config and train.log stay)."""
    for name in (METRICS_FILE, EVALUATIONS_FILE, SUMMARY_FILE):
        (run_dir / name).unlink(missing_ok=True)
    for name in (TENSORBOARD_DIR, CHECKPOINT_DIR):
        shutil.rmtree(run_dir / name, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: Path, what: str = "") -> Iterator[Path]:
    """A temporary path beside `path` to write; renamed over `path` once written.

    Readers never see half a file, and a failed write (a full disk, a kill) leaves
    the old file as it was and no temporary behind. `what` ("checkpoint ") goes into
    the error message.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise StorageError(f"cannot write {what}{path}: {io_reason(error)}") from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _rewrite_sweep_index(sweep_dir: Path, change: Callable[[dict[str, dict]], None]) -> None:
    """Jobs may run in parallel processes: the read-modify-write of the sweep's index
    (sweep.jsonl) holds a lock, and the file is replaced whole, so a reader never sees
    half of it."""
    index = sweep_dir / SWEEP_INDEX
    with open(sweep_dir / _SWEEP_INDEX_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        rows = read_sweep_index(sweep_dir)
        change(rows)
        with atomic_file(index, "the sweep index ") as temporary:
            temporary.write_text("".join(json.dumps(entry) + "\n" for entry in rows.values()))


def read_sweep_index(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """The sweep's index, job by job (empty before its first job)."""
    index = sweep_dir / SWEEP_INDEX
    lines = index.read_text().splitlines() if index.is_file() else []
    return {entry["job"]: entry for entry in map(json.loads, filter(None, lines))}


def update_sweep_index(sweep_dir: Path, job: str, row: dict[str, Any]) -> None:
    """Set `job`'s row of the sweep's index, keeping the others."""
    _rewrite_sweep_index(sweep_dir, lambda rows: rows.update({job: {"job": job, **row}}))


def mark_running_jobs_interrupted(sweep_dir: Path) -> None:
    """After the sweep's driver stopped, jobs it ran in other processes (Ray's) that
    were still running are interrupted; their own summaries could not say so."""

    def interrupt(rows: dict[str, dict]) -> None:
        for row in rows.values():
            if row.get("status") == "running":
                row["status"] = "interrupted"

    if (sweep_dir / SWEEP_INDEX).is_file():
        _rewrite_sweep_index(sweep_dir, interrupt)


def read_run_id(run_dir: Path) -> str | None:
    """The run's identity, or None for a run from before identities (or whose file
    was deleted)."""
    try:
        return (run_dir / RUN_ID_FILE).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def write_run_id(run_dir: Path, run_id: str) -> None:
    with atomic_file(run_dir / RUN_ID_FILE) as temporary:
        temporary.write_text(run_id + "\n")


def write_json_atomic(path: Path, data: Any) -> None:
    """Non-finite floats must already be replaced (strict JSON has no NaN)."""
    with atomic_file(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")


def check_writable(directory: Path) -> None:
    """Prove `directory` takes a new file now (permission bits say little to root or
    on read-only mounts), instead of finding out after a segment of training."""
    probe = directory / f".rl-run-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"{directory} is not writable ({io_reason(error)})") from error


def _parse_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(line, row) pairs of a JSONL file. A torn last line (a kill during a write
    leaves one) is dropped; a broken line before it is an error."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text") from error
    lines = [line for line in text.splitlines(keepends=True) if line.strip()]
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines):
                break
            raise ValueError(f"{path}: line {number} is not JSON ({error.msg})") from error
        if not isinstance(row, dict) or type(row.get("step")) is not int:
            raise ValueError(f"{path}: line {number} is not a row with an integer step")
        rows.append((line if line.endswith("\n") else line + "\n", row))
    return rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [row for _, row in _parse_rows(path)]


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Keep only the rows of `path` whose step is at most `last_step` (atomically: a
    kill during the rewrite leaves the old file)."""
    if not path.exists():
        return
    kept = "".join(line for line, row in _parse_rows(path) if row["step"] <= last_step)
    with atomic_file(path) as temporary:
        temporary.write_text(kept)


def read_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- one writer per run directory ----------------------------------------------------------
class RunLock:
    """An exclusive `flock` on `<run dir>/.rl-run.lock`, holding the owner's pid.

    The kernel drops the lock when its process dies, however it dies, so a stale lock
    of a killed run is taken over without any guessing from pids. Each lock held is
    also known to `release_stray_claims`.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        # A stop signal waits until the lock is held and known: one landing between the
        # file's creation and its registration would leave the file behind.
        with stop_signals_deferred():
            self._acquire()
            _held_locks.add(self)
        return self

    def _acquire(self) -> None:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise ConfigError(
                    f"{self.path.parent} is not writable ({io_reason(error)})"
                ) from error
            self._lock_or_raise(fd)
            # A holder that was releasing may have unlinked the file we opened: retry then.
            if self._same_file(fd):
                break
            os.close(fd)
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError as error:  # a full disk: give the directory back as it was
            self.release()
            raise StorageError(f"cannot write {self.path}: {io_reason(error)}") from error

    def _lock_or_raise(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLocked(
                f"{self.path.parent} is in use by another rl-run (pid {holder}); "
                "wait for it to finish or stop it first"
            ) from None

    def check_free(self) -> None:
        """Raise RunLocked where another process holds the lock; change nothing."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return  # no lock file: no holder
        self._lock_or_raise(fd)
        os.close(fd)  # closing drops the lock just taken

    def _same_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still locked: no one can adopt a dead file
        os.close(self._fd)
        self._fd = None
        _held_locks.discard(self)


_held_locks: set[RunLock] = set()
_held_claims: list[ClaimedDir] = []


def release_stray_claims() -> None:
    """Undo the claims and release the locks this process still holds when it ends:
    a stop signal that lands after a claim is made but before the launch holding it
    is returned leaves them to no one else."""
    for claim in list(_held_claims):
        claim.release(abandon=True)
    for lock in list(_held_locks):
        lock.release()


# -- claiming a directory for a new run ------------------------------------------------------
@dataclass
class ClaimedDir:
    """A locked directory this process may write a run into, and what it found there."""

    path: Path
    lock: RunLock
    created: list[Path] = field(default_factory=list)  # directories made here, outermost first
    existing: set[str] = field(default_factory=set)  # entries present before the claim

    def __post_init__(self) -> None:
        _held_claims.append(self)

    def release(self, abandon: bool) -> None:
        """Unlock. With `abandon` (the start failed), also remove what this process added
        (Hydra's log and config files, the directories it made) and nothing else, unless
        training output exists by now."""
        abandoned = abandon and self._nothing_trained()
        if abandoned:
            for entry in self.path.iterdir():
                if entry.name in self.existing or entry.name == LOCK_FILE:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        self.lock.release()
        _held_claims[:] = [claim for claim in _held_claims if claim is not self]
        if abandoned:
            for directory in reversed(self.created):
                try:
                    directory.rmdir()
                except OSError:  # something another process put there
                    break

    def _nothing_trained(self) -> bool:
        """No training output yet (a saved config alone is undone with the start)."""
        if not self.path.is_dir() or has_training_output(self.path):
            return False
        added = [entry for entry in self.path.iterdir() if entry.name not in self.existing]
        return not any(entry.is_dir() and has_training_output(entry) for entry in added)


def _make_dirs(path: Path, created: list[Path]) -> None:
    """`mkdir -p path`, appending each directory it creates to `created` as it goes
    (so an interruption half-way still knows what to undo)."""
    missing = []
    for candidate in [path, *path.parents]:
        if candidate.exists() or candidate.is_symlink():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue  # made by a concurrent run a moment ago: not ours
        created.append(directory)


def _make_new_dir(path: Path, unique: bool, created: list[Path]) -> Path:
    """Create `path` (or, if `unique`, the first free `<path>-2`, `-3`, ...); an
    existing `path` is adopted when not `unique`."""
    candidate, counter = path, 1
    while True:
        try:
            candidate.mkdir()
            created.append(candidate)
            return candidate
        except FileExistsError:
            if not unique:
                return candidate
            counter += 1
            candidate = path.with_name(f"{path.name}-{counter}")


def _remove_created(created: list[Path]) -> None:
    """Undo `_make_dirs`/`_make_new_dir`: the directories are new, so a lock file in
    one can only be this process's."""
    for directory in reversed(created):
        (directory / LOCK_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            directory.rmdir()


def claim_run_dir(
    path: Path, unique: bool, option: str, sweep: bool = False, adopt: bool = False
) -> ClaimedDir:
    """Create or adopt `path` for a new run (or a sweep's jobs) and lock it.

    `unique`: the path is rl-run's default name, so if it exists (a run started in the
    same second) the next free name is taken instead. A path the user chose must not
    hold a run; a sweep directory must be empty, unless `adopt` (a sweep continued with
    resume=auto: its jobs' directories each look after their own run). `option` names
    the setting in errors.
    """
    outer = inside_run(path)
    if outer is not None:  # its TensorBoard and resume would pick this run up
        raise ConfigError(f"{option}: {path} is inside the run directory {outer}")
    if path.is_dir() and contains_runs(path) and not adopt:
        raise ConfigError(f"{option}: {path} holds other runs; choose a directory of its own")
    if len(str(path.absolute())) > MAX_RUN_DIR_LENGTH:
        raise ConfigError(
            f"{option}: the path is longer than {MAX_RUN_DIR_LENGTH} characters; "
            "the files of a run would not fit under the system's path limit"
        )
    created: list[Path] = []
    try:  # any exit before the claim exists (Ctrl-C included) removes what was made
        try:
            _make_dirs(path.parent, created)
            directory = _make_new_dir(path, unique, created)
        except OSError as error:
            raise ConfigError(f"{option}: cannot create {path} ({io_reason(error)})") from error
        if not directory.is_dir():
            raise ConfigError(f"{option}: {directory} exists and is not a directory")
        existing = {entry.name for entry in directory.iterdir()} - {LOCK_FILE}
        claim = ClaimedDir(directory, RunLock(directory).acquire(), created, existing)
    except BaseException:
        _remove_created(created)
        raise
    try:
        _check_claimed(claim, option, sweep and not adopt)
    except BaseException:
        claim.release(abandon=True)
        raise
    return claim


def _check_claimed(claim: ClaimedDir, option: str, sweep: bool) -> None:
    """Checks that need the lock (another process may be creating a run there)."""
    directory, existing = claim.path, claim.existing
    if sweep and existing:
        raise ConfigError(
            f"{option}: {directory} is not empty; a sweep writes its jobs into a new directory"
        )
    if holds_run(directory) and not (directory / SAVED_CONFIG).exists():
        raise ConfigError(f"{option}: {missing_config_advice(directory)}")
    if holds_run(directory):
        raise ConfigError(
            f"{option}: {directory} already holds a run; continue it with "
            f"{resume_command(directory)} or choose another directory"
        )
