"""`manifest.json`: what produced a run, read back from a run started in a user's git
repository, then resumed."""

from __future__ import annotations

import json
import platform
import shlex
import shutil
import socket
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
from conftest import FAST, ok, rl_run

from rl_runner.hardware import cpu_flags
from rl_runner.manifest import NUMERIC_CPU_FLAGS, PACKAGE_DIR

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's own git repository, one commit, rl-run started inside it."""
    project = tmp_path / "project"
    project.mkdir()
    git("init", "-q", cwd=project)
    (project / "notes.txt").write_text("first\n")
    git("add", "notes.txt", cwd=project)
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    git(*identity, "commit", "-q", "-m", "first", cwd=project)
    return project


def sessions(run_dir: Path) -> list[dict]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["schema"] == 1
    return manifest["sessions"]


def test_a_run_records_what_produced_it_and_each_resume_adds_a_session(project: Path):
    run_dir = project / "outputs" / "run"
    typed = [*FAST, "trainer.total_steps=1000", f"hydra.run.dir={run_dir}"]
    ok(rl_run(*typed, cwd=project))
    [start] = sessions(run_dir)
    assert start["kind"] == "start" and start["step"] == 0
    # as typed (quoted for a shell to run again), before rl-run rewrites it for Hydra
    assert start["command"] == shlex.join(["rl-run", *typed])
    assert start["host"] == socket.gethostname()
    assert start["working_directory"] == str(project)
    assert start["python"] == platform.python_version()
    assert start["rl_runner"]["version"] == version("rl-runner")
    # the tests run from rl-runner's own checkout (an editable install)
    assert start["rl_runner"]["git"]["repository"] == str(PACKAGE_DIR.parent)
    libraries = start["libraries"]
    assert libraries["torch"] == torch.__version__
    assert libraries["gymnasium"] == version("gymnasium")
    assert libraries["hydra-core"] == version("hydra-core")
    assert start["project_git"] == {
        "commit": git("rev-parse", "HEAD", cwd=project),
        "dirty": False,
        "repository": str(project),
    }
    machine = start["machine"]
    assert machine["device"] == "cpu" and machine["gpu"] is None and machine["cuda"] is None
    assert machine["cpu_flags"] == [flag for flag in NUMERIC_CPU_FLAGS if flag in cpu_flags()]
    assert machine["matmul_precision"] == "highest"  # DQN sets none: torch's default

    (project / "notes.txt").write_text("edited\n")  # a tracked file changed: dirty
    ok(rl_run(f"resume={run_dir}", "trainer.total_steps=2000", cwd=project))
    first, resumed = sessions(run_dir)
    assert first == start
    assert resumed["kind"] == "resume" and resumed["step"] == 1000
    assert resumed["command"] == f"rl-run resume={run_dir} trainer.total_steps=2000"
    assert resumed["project_git"]["dirty"] is True


def test_the_matmul_precision_is_the_one_the_algorithm_trains_with(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["algo=td3", "env=pendulum", "trainer.total_steps=300", "algo.random_steps=100"]
    args += ["algo.learning_starts=100", "eval.episodes=1", "algo.matmul_precision=high"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    [start] = sessions(run_dir)
    assert start["machine"]["matmul_precision"] == "high"
    assert start["project_git"] is None  # not started inside a git repository


def test_a_damaged_manifest_is_kept_aside_by_the_resume(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(rl_run(*FAST, "trainer.total_steps=1000", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    damaged = (run_dir / "manifest.json").read_text()[:-40]
    (run_dir / "manifest.json").write_text(damaged)
    result = ok(rl_run(f"resume={run_dir}", "trainer.total_steps=1500", cwd=tmp_path))
    assert "manifest.json could not be read: kept as manifest.json.damaged" in result.stdout
    assert (run_dir / "manifest.json.damaged").read_text() == damaged
    [resumed] = sessions(run_dir)
    assert resumed["kind"] == "resume" and resumed["step"] == 1000


def test_a_sweep_job_records_its_drivers_command_and_directory(project: Path, tmp_path: Path):
    """From the sweep directory, not from the job's process: a Ray cluster's workers
    run with their own argv, environment and working directory."""
    sweep_dir = tmp_path / "sweep"
    typed = ["-m", *FAST, "trainer.total_steps=500", "seed=0,1", f"hydra.sweep.dir={sweep_dir}"]
    ok(rl_run(*typed, cwd=project))
    for job in ("0_seed=0", "1_seed=1"):
        [start] = sessions(sweep_dir / job)
        assert start["command"] == shlex.join(["rl-run", *typed])
        assert start["working_directory"] == str(project)
        assert start["project_git"]["repository"] == str(project)
