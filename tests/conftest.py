"""Shared helpers: running `rl-run` as a user does, and reading run directories back."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
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


def rl_run(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [RL_RUN, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"rl-run failed ({result.returncode}):\n{result.stderr[-3000:]}"
    return result


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
