"""Faults: SIGKILL at any moment, writes cut short, a full disk, read-only directories,
divergence. Whatever happens, the newest checkpoint stays good, the run resumes bit for
bit, and every log holds each step exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from conftest import FAST, ok, read_jsonl, rl_run, start_rl_run, tree_digest, wait_until
from test_cli_run import scalars
from test_plot import RL_PLOT
from test_resume import assert_same_run

CHECKPOINT_EVERY = 500
ARGS = [*FAST, "eval.every=1000", f"checkpoint.every={CHECKPOINT_EVERY}", "trainer.log_every=250"]
TOTAL = 10_000
# rl_runner.errors.EXIT_STORAGE, EXIT_DIVERGED, EXIT_TRAINING_FAILED
STORAGE_FAILED, DIVERGED, TRAINING_FAILED = 4, 3, 5


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("straight")
    ok(rl_run(*ARGS, f"trainer.total_steps={TOTAL}", f"hydra.run.dir={work / 'run'}", cwd=work))
    return work / "run"


def assert_each_step_logged_once(run_dir: Path) -> None:
    rows = read_jsonl(run_dir / "metrics.jsonl")
    counts = Counter((tag, row["step"]) for row in rows for tag in row if tag != "time")
    repeated = [key for key, n in counts.items() if n > 1 and key[0] != "step"]
    # Episodes can end on the same step in parallel envs; here there is one env.
    assert not repeated, repeated[:5]
    steps = [row["step"] for row in read_jsonl(run_dir / "evaluations.jsonl")]
    assert steps == sorted(set(steps))


def assert_logs_match(straight: Path, other: Path) -> None:
    assert_same_run(straight, other, TOTAL)
    assert_each_step_logged_once(other)
    left, right = scalars(straight), scalars(other)
    del left["time/sps"], right["time/sps"]
    assert left == right  # TensorBoard: no step twice, none missing


def writing_a_checkpoint(run_dir: Path) -> bool:
    return (
        any((run_dir / "checkpoints").glob(".*.tmp"))
        if (run_dir / "checkpoints").is_dir()
        else False
    )


def newest_checkpoint_step(run_dir: Path) -> int:
    newest = sorted(run_dir.glob("checkpoints/step_*.pt"))
    return int(newest[-1].stem.removeprefix("step_")) if newest else 0


def writing_or_two_more_checkpoints(run_dir: Path) -> Callable[[], bool]:
    start = newest_checkpoint_step(run_dir)
    return lambda: (
        writing_a_checkpoint(run_dir)
        or newest_checkpoint_step(run_dir) >= start + 2 * CHECKPOINT_EVERY
    )


def start_segment(run_dir: Path, cwd: Path) -> subprocess.Popen[str]:
    """Continue the run as a user would: resume it, or rerun the command if it was
    killed before its config was even saved."""
    if (run_dir / ".hydra" / "config.yaml").is_file():
        return start_rl_run(f"resume={run_dir}", cwd=cwd)
    return start_rl_run(*ARGS, f"trainer.total_steps={TOTAL}", f"hydra.run.dir={run_dir}", cwd=cwd)


def test_sigkill_at_random_moments_then_resume_is_exact(tmp_path: Path, straight_run: Path):
    run_dir = tmp_path / "run"
    rng = random.Random(20261125)
    # One kill before the first checkpoint, eight at random moments, three aimed at
    # the instant a checkpoint is being written.
    plan = ["before-first-checkpoint", *["random"] * 8, *["checkpoint-write"] * 3]
    kills = 0
    for moment in plan:
        process = start_segment(run_dir, tmp_path)
        if moment == "before-first-checkpoint":
            hit = wait_until(lambda: (run_dir / ".hydra" / "config.yaml").exists(), process, 120)
            assert hit and not list(run_dir.glob("checkpoints/step_*.pt"))
        elif moment == "random":
            wait_until(lambda: (run_dir / "metrics.jsonl").exists(), process, 120)
            time.sleep(rng.uniform(0.0, 2.0))
        else:
            # A write lasts about a millisecond, and a loaded machine's poll can miss
            # every one: after two checkpoints seen only whole, kill anyway, so that no
            # missed write lets the run finish and leave the rest of the plan unkilled.
            wait_until(writing_or_two_more_checkpoints(run_dir), process, 120)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate(timeout=120)
        newest = sorted(run_dir.glob("checkpoints/step_*.pt"))
        if newest:  # the summary follows the checkpoints: never stale after a kill
            summary = json.loads((run_dir / "summary.json").read_text())
            assert f"step_{summary['env_steps']:010d}.pt" == newest[-1].name
    assert kills >= 10
    while True:  # finish it
        result = rl_run(f"resume={run_dir}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        if json.loads((run_dir / "summary.json").read_text())["status"] == "completed":
            break
    assert_logs_match(straight_run, run_dir)
    assert not list(run_dir.glob("**/.*.tmp"))


def test_writes_cut_short_by_a_kill_are_dropped_on_resume(tmp_path: Path, straight_run: Path):
    """What a kill in the middle of each kind of write leaves behind."""
    run_dir = tmp_path / "run"
    ok(rl_run(*ARGS, "trainer.total_steps=2000", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    newest = run_dir / "checkpoints" / "step_0000002000.pt"
    (run_dir / "checkpoints" / ".step_0000002500.pt.tmp").write_bytes(newest.read_bytes()[:999])
    (run_dir / ".summary.json.tmp").write_text('{"status": "runn')
    with open(run_dir / "metrics.jsonl", "a") as metrics:
        metrics.write('{"step": 2250, "time": 1.0, "loss/t')
    with open(run_dir / "evaluations.jsonl", "a") as evaluations:
        evaluations.write('{"step": 3000, "eval/return_me')
    # rl-plot reads a run in this state (up to its last whole row).
    plotted = subprocess.run([RL_PLOT, str(run_dir)], cwd=tmp_path, capture_output=True, text=True)
    assert plotted.returncode == 0, plotted.stderr
    ok(rl_run(f"resume={run_dir}", f"trainer.total_steps={TOTAL}", cwd=tmp_path))
    assert_logs_match(straight_run, run_dir)
    assert not list(run_dir.glob("**/.*.tmp"))


def test_a_full_disk_stops_the_run_and_keeps_the_newest_checkpoint(
    tmp_path: Path, straight_run: Path
):
    run_dir = tmp_path / "run"
    ok(rl_run(*ARGS, "trainer.total_steps=1000", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    kept = run_dir / "checkpoints" / "step_0000001000.pt"
    kept_digest = tree_digest(kept.parent)[kept.name]
    # The next checkpoint holds more transitions than the file system will take.
    limit = kept.stat().st_size + 4096
    result = rl_run(
        f"resume={run_dir}", f"trainer.total_steps={TOTAL}", cwd=tmp_path, file_size_limit=limit
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == STORAGE_FAILED, result.stderr
    assert len(lines) == 1 and lines[0].startswith("rl-run: error: cannot write checkpoint")
    assert "is intact" in lines[0] and f"resume={run_dir}" in lines[0]
    assert tree_digest(kept.parent)[kept.name] == kept_digest
    assert not list(run_dir.glob("**/.*.tmp"))
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    # Space freed: the same command continues, and nothing of the run was lost.
    ok(rl_run(f"resume={run_dir}", cwd=tmp_path))
    assert_logs_match(straight_run, run_dir)


def test_a_disk_that_takes_nothing_refuses_the_start_cleanly(tmp_path: Path, finished_run: Path):
    run_dir = tmp_path / "run"
    result = rl_run(*FAST, f"hydra.run.dir={run_dir}", cwd=tmp_path, file_size_limit=0)
    assert result.returncode == STORAGE_FAILED and result.stderr.count("\n") == 1, result.stderr
    assert "cannot write" in result.stderr and not run_dir.exists()
    before = tree_digest(finished_run)
    result = rl_run(
        f"resume={finished_run}", "trainer.total_steps=4000", cwd=tmp_path, file_size_limit=0
    )
    assert result.returncode == STORAGE_FAILED and result.stderr.count("\n") == 1, result.stderr
    assert tree_digest(finished_run) == before


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make `path` read-only for this process: permission bits for a user, a read-only
    bind mount for root (whom permission bits do not stop)."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    mounted = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only directory as root here: {mounted.stderr!r}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_read_only_checkpoints_refuse_the_resume_before_training(
    tmp_path: Path, finished_run: Path
):
    before = tree_digest(finished_run)
    with read_only(finished_run / "checkpoints"):
        result = rl_run(f"resume={finished_run}", "trainer.total_steps=4000", cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "checkpoints is not writable" in lines[0]
    assert tree_digest(finished_run) == before


def test_an_unwritable_working_directory_is_one_line(tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    with read_only(work):
        result = rl_run(*FAST, "trainer.total_steps=300", cwd=work)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("rl-run: error: hydra.run.dir: cannot create")
    assert list(work.iterdir()) == []


def strict_json_rows(path: Path) -> list[dict]:
    def refuse(token: str) -> None:
        raise AssertionError(f"bare {token} in {path}")

    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(rl_run(*ARGS, "trainer.total_steps=1000", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    checkpoints_before = tree_digest(run_dir / "checkpoints")
    # Allowed on resume: the algorithm's hyperparameters. These blow the network up.
    result = rl_run(
        f"resume={run_dir}",
        "trainer.total_steps=4000",
        "algo.lr=1e12",
        "algo.loss=mse",
        "algo.max_grad_norm=null",
        cwd=tmp_path,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == DIVERGED, result.stderr
    assert len(lines) == 1 and lines[0].startswith("rl-run: training diverged: loss/td is nan")
    assert "at step 1250" in lines[0] and "step_0000001000.pt" in lines[0]
    assert tree_digest(run_dir / "checkpoints") == checkpoints_before
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged" and "loss/td" in summary["error"]
    rows = strict_json_rows(run_dir / "metrics.jsonl")
    assert rows[-1]["step"] == 1250 and rows[-1]["loss/td"] == "NaN"
    assert "diverged" in (run_dir / "train.log").read_text()
    state = torch.load(run_dir / "checkpoints" / "step_0000001000.pt", weights_only=True)
    weights = state["agent"]["q_network"].values()
    assert all(torch.isfinite(tensor).all() for tensor in weights)


@pytest.mark.parametrize(
    "algo, env_id, kwargs, named",
    [
        (
            "sac",
            "NonFiniteOutput-v0",
            ["algo.learning_starts=100", "algo.random_steps=100"],
            "a reward of nan in env 0",
        ),
        (
            "ppo",
            "NonFiniteOutput-v0",
            [
                "+env.kwargs.where=observation",
                "+env.kwargs.value=inf",
                "algo.n_steps=64",
                "algo.batch_size=32",
            ],
            "an observation of inf in env 0",
        ),
        ("tabular_pg", "NonFiniteRewardChain-v0", [], "a reward of nan in env 0"),
    ],
)
def test_a_non_finite_env_output_stops_the_run_naming_the_env(
    tmp_path: Path, algo: str, env_id: str, kwargs: list[str], named: str
):
    """Not "training diverged ... use a smaller learning rate" found at the next log
    row, and not a run that completes with NaN returns (tabular PG never reads a
    reward): the step that returned it stops the run, before the agent stores it."""
    run_dir = tmp_path / "run"
    result = rl_run(
        f"algo={algo}",
        "env=gym",
        f"env.id=fake_envs:{env_id}",
        *kwargs,
        "trainer.total_steps=400",
        "checkpoint.every=20",
        "eval.every=200",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == TRAINING_FAILED, result.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"rl-run: error: the env returned {named} at step 30;"), lines[0]
    assert "step_0000000020.pt is intact" in lines[0] and "learning rate" not in lines[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and named in summary["error"]
    returns = [
        row["train/episode_return"]
        for row in strict_json_rows(run_dir / "metrics.jsonl")
        if "train/episode_return" in row
    ]
    assert all(isinstance(value, float) for value in returns)  # none is "NaN"
