"""Run directories: one writer at a time, unique default names, a failed start undone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rl_runner.errors import ConfigError, RunLocked
from rl_runner.rundir import (
    LOCK_FILE,
    RunLock,
    claim_run_dir,
    release_stray_claims,
    resume_command,
)


def test_a_second_lock_is_refused_naming_the_holder(tmp_path: Path):
    first = RunLock(tmp_path).acquire()
    with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
        RunLock(tmp_path).acquire()
    first.release()
    assert not (tmp_path / LOCK_FILE).exists()
    RunLock(tmp_path).acquire().release()


def test_a_stale_lock_file_of_a_dead_process_is_taken_over(tmp_path: Path):
    # What a SIGKILLed run leaves: the file, with no process holding the lock.
    (tmp_path / LOCK_FILE).write_text("999999")
    lock = RunLock(tmp_path).acquire()
    assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())
    lock.release()


def test_a_claim_no_launch_took_over_is_undone_as_rl_run_exits(tmp_path: Path):
    """A Ctrl-C that lands after the claim but before the launch holding it returns."""
    claim_run_dir(tmp_path / "outputs" / "day" / "run", unique=True, option="hydra.run.dir")
    existing = tmp_path / "existing"
    existing.mkdir()
    RunLock(existing).acquire()  # a resume's lock, likewise
    release_stray_claims()
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["existing"]


def test_default_names_taken_in_the_same_second_get_a_suffix(tmp_path: Path):
    name = tmp_path / "outputs" / "day" / "12-00-00_dqn_cartpole_seed0"
    first = claim_run_dir(name, unique=True, option="hydra.run.dir")
    second = claim_run_dir(name, unique=True, option="hydra.run.dir")
    third = claim_run_dir(name, unique=True, option="hydra.run.dir")
    assert [c.path.name for c in (first, second, third)] == [
        name.name,
        f"{name.name}-2",
        f"{name.name}-3",
    ]
    for claim in (first, second, third):
        claim.release(abandon=False)


def test_an_explicit_dir_in_use_is_refused(tmp_path: Path):
    claim = claim_run_dir(tmp_path / "run", unique=False, option="hydra.run.dir")
    with pytest.raises(RunLocked, match="in use by another rl-run"):
        claim_run_dir(tmp_path / "run", unique=False, option="hydra.run.dir")
    claim.release(abandon=False)


def test_a_failed_start_removes_only_what_it_created(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fresh = claim_run_dir(Path("outputs/day/run"), unique=True, option="hydra.run.dir")
    (fresh.path / ".hydra").mkdir()
    (fresh.path / "train.log").write_text("")
    fresh.release(abandon=True)
    assert not (tmp_path / "outputs").exists()  # the date folders it made went too

    mine = tmp_path / "runs" / "mine"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    for directory in (Path("runs/mine"), Path(".")):
        claim = claim_run_dir(directory, unique=False, option="hydra.run.dir")
        (claim.path / "train.log").write_text("")
        claim.release(abandon=True)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_a_started_run_is_never_removed(tmp_path: Path):
    claim = claim_run_dir(tmp_path / "run", unique=False, option="hydra.run.dir")
    (claim.path / "metrics.jsonl").write_text("")
    claim.release(abandon=True)
    assert (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_sweep_dir_must_be_empty(tmp_path: Path):
    (tmp_path / "sweep" / "0").mkdir(parents=True)
    with pytest.raises(ConfigError, match="hydra.sweep.dir: .* is not empty"):
        claim_run_dir(tmp_path / "sweep", unique=False, option="hydra.sweep.dir", sweep=True)
    assert (tmp_path / "sweep" / "0").is_dir()


def test_the_resume_command_is_quoted_for_the_shell():
    assert resume_command(Path("/tmp/my run é")) == "rl-run resume='/tmp/my run é'"
    assert resume_command(Path("/tmp/plain")) == "rl-run resume=/tmp/plain"


def test_a_run_inside_a_run_is_refused_but_similar_folder_names_are_not(tmp_path: Path):
    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    (tmp_path / "run" / ".hydra" / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(ConfigError, match="inside the run directory"):
        claim_run_dir(tmp_path / "run" / "tensorboard" / "x", unique=False, option="hydra.run.dir")
    home = tmp_path / "home"  # a user's folders that happen to share run-output names
    (home / "tensorboard").mkdir(parents=True)
    (home / "checkpoints").mkdir()
    claim_run_dir(home / "outputs" / "run", unique=True, option="hydra.run.dir").release(
        abandon=False
    )
