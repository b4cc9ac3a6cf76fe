"""Shared helpers: running `rl-run` as a user does, and reading run directories back."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

RL_RUN = shutil.which("rl-run", path=str(Path(sys.executable).parent)) or "rl-run"

# Small and quick: a run of a few thousand steps takes seconds.
FAST = [
    "network.hidden_sizes=[32,32]",
    "algo.learning_starts=200",
    "algo.random_steps=200",
    "algo.train_freq=4",
    "algo.gradient_steps=1",
    "eval.episodes=3",
]


TESTS_DIR = Path(__file__).resolve().parent


def run_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # PYTHONPATH: `env.id=fake_envs:<id>` finds the tests' own environments
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(TESTS_DIR), **(extra or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def rl_run(
    *args: str,
    cwd: Path,
    timeout: float = 300,
    file_size_limit: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`rl-run args...` as a user runs it. `file_size_limit` (bytes) makes any write past
    that size fail, as a full disk would (RLIMIT_FSIZE; Python ignores SIGXFSZ).
    `extra_env`: variables set for this run (HOME, PYTHONPATH), over the usual ones."""

    def limit_file_size() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [RL_RUN, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=run_env(extra_env),
        stdin=subprocess.DEVNULL,
        preexec_fn=limit_file_size,
    )


def start_rl_run(*args: str, cwd: Path, own_group: bool = False) -> subprocess.Popen[str]:
    """`rl-run` in the background, for signals and concurrency; `own_group` gives it
    and its workers a process group of their own, as a terminal's foreground job has
    (a Ctrl-C there is a SIGINT to the group)."""
    return subprocess.Popen(
        [RL_RUN, *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=run_env(),
        stdin=subprocess.DEVNULL,
        start_new_session=own_group,
    )


def wait_until(
    condition: Callable[[], bool], process: subprocess.Popen[str], timeout: float
) -> bool:
    """False where the process ended, or the time ran out, before the condition held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"rl-run failed ({result.returncode}):\n{result.stderr[-3000:]}"
    return result


def job_dir(sweep_dir: Path, number: int) -> Path:
    """Job `number`'s directory in a sweep: `<number>_<swept values, seed last>`."""
    [found] = sweep_dir.glob(f"{number}_*")
    return found


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tree_digest(root: Path) -> dict[str, str]:
    """Content hash of every file under root (to prove a run was left untouched)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short completed run shared by the read-back tests."""
    work = tmp_path_factory.mktemp("finished")
    run_dir = work / "run"
    ok(
        rl_run(
            *FAST,
            "trainer.total_steps=3000",
            "trainer.log_every=500",
            "eval.every=1000",
            "checkpoint.every=1000",
            f"hydra.run.dir={run_dir}",
            cwd=work,
        )
    )
    return run_dir
