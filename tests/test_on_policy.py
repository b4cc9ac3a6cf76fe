"""PPO and A2C beyond the registry's shared tests: GAE against a hand computation,
Box actions, parallel envs in both vectorisation modes, worker processes that never
outlive their run, normalisation that evaluation leaves alone, and learning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ok, read_jsonl, rl_run, start_rl_run
from test_resume import assert_same_run, assert_trees_equal, final_state

from rl_runner.agents.common import UpdateSchedule
from rl_runner.buffers.rollout import generalised_advantages

SHORT = [
    "network.hidden_sizes=[32,32]",
    "algo.n_steps=64",
    "algo.lr_schedule=constant",
    "eval.episodes=2",
    "eval.every=500",
    "checkpoint.every=500",
    "trainer.log_every=250",
]
PPO_SHORT = [*SHORT, "algo.batch_size=64", "algo.n_epochs=2"]


def test_gae_bootstraps_a_truncation_from_its_final_observation_and_not_a_termination():
    gamma, lam = 0.9, 0.8
    # one env, 4 steps: step 1 ends by truncation (time limit), step 2 by termination,
    # step 3 is the rollout's last (bootstraps from the value after it)
    rewards = np.array([[1.0], [2.0], [3.0], [4.0]])
    values = np.array([[0.5], [0.6], [0.7], [0.8]])
    next_values = np.array([[0.0], [10.0], [0.0], [20.0]])  # where not stored in the rollout
    terminated = np.array([[False], [False], [True], [False]])
    truncated = np.array([[False], [True], [False], [False]])
    advantages = generalised_advantages(
        rewards, values, next_values, terminated, truncated, gamma, lam
    )[:, 0]
    delta3 = 4.0 + gamma * 20.0 - 0.8
    delta2 = 3.0 - 0.7  # terminated: no bootstrap
    delta1 = 2.0 + gamma * 10.0 - 0.6  # truncated: bootstraps from its final observation
    delta0 = 1.0 + gamma * 0.6 - 0.5  # goes on: the next stored value
    # the sums stop at an episode's end, either kind
    expected = [delta0 + gamma * lam * delta1, delta1, delta2, delta3]
    np.testing.assert_allclose(advantages, expected)


@pytest.mark.parametrize("num_envs", [1, 3, 4])
def test_off_policy_gradient_steps_per_env_step_do_not_depend_on_num_envs(num_envs: int):
    schedule = UpdateSchedule(random_steps=0, learning_starts=0, train_freq=2, gradient_steps=3)
    made = 0
    for _ in range(24 // num_envs):
        schedule.observed(num_envs)
        made += schedule.updates_due(stored=100, batch_size=10)
    assert made == 24 // 2 * 3


def test_dqn_with_four_envs_makes_the_documented_gradient_steps(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [
        "algo=dqn",
        "env.num_envs=4",
        "network.hidden_sizes=[16]",
        "algo.learning_starts=200",
        "algo.train_freq=1",
        "algo.gradient_steps=1",
        "trainer.total_steps=1000",
        "eval.episodes=1",
    ]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    summary = json.loads((run_dir / "summary.json").read_text())
    # one per env step from the vector step that reaches learning_starts (steps 197-200)
    assert summary["agent_updates"] == 1000 - 196


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_box_actions_stay_in_bounds_and_learning_is_logged(tmp_path: Path, algo: str):
    run_dir = tmp_path / "run"
    extra = PPO_SHORT if algo == "ppo" else SHORT
    ok(
        rl_run(
            f"algo={algo}",
            "env=pendulum",
            *extra,
            "trainer.total_steps=1000",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    rows = read_jsonl(run_dir / "metrics.jsonl")
    losses = [row for row in rows if "loss/value" in row]
    assert losses and all(np.isfinite(row["loss/policy"]) for row in losses)
    assert any("train/action_std" in row for row in rows)
    state = final_state(run_dir, 1000)["agent"]
    assert {"policy", "value", "log_std", "optimizer", "rng", "counters"} <= set(state)
    # the rollout in progress: 1000 steps = 15 rollouts of 64 and 40 steps of the next
    assert state["replay"]["size"] == 1000 % 64


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_resume_with_four_envs_is_bitwise_equal_mid_rollout(tmp_path: Path, mode: str):
    args = [
        "algo=ppo",
        "env=pendulum",
        *PPO_SHORT,
        "env.num_envs=4",
        f"env.vectorization_mode={mode}",
        "algo.normalize_observations=true",
        "algo.normalize_rewards=true",
    ]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    ok(rl_run(*args, "trainer.total_steps=1500", f"hydra.run.dir={straight}", cwd=tmp_path))
    ok(rl_run(*args, "trainer.total_steps=1000", f"hydra.run.dir={resumed}", cwd=tmp_path))
    state = final_state(resumed, 1000)["agent"]
    assert 0 < state["replay"]["size"] < 64, "the checkpoint falls inside a rollout"
    # the other mode on resume: env snapshots are the same in both
    other = "sync" if mode == "async" else "async"
    result = ok(
        rl_run(
            f"resume={resumed}",
            "trainer.total_steps=1500",
            f"env.vectorization_mode={other}",
            cwd=tmp_path,
        )
    )
    assert_same_run(straight, resumed, 1500)
    assert "not the exact continuation" not in result.stderr


def test_evaluation_leaves_the_normalisers_unchanged(tmp_path: Path):
    """Evaluating every 100 steps or once at the end: the agent, normaliser statistics
    included, ends the same."""
    common = [
        "algo=ppo",
        "env=pendulum",
        *PPO_SHORT,
        "algo.normalize_observations=true",
        "algo.normalize_rewards=true",
        "trainer.total_steps=600",
        "checkpoint.every=600",
    ]
    sparse, dense = tmp_path / "sparse", tmp_path / "dense"
    ok(rl_run(*common, "eval.every=600", f"hydra.run.dir={sparse}", cwd=tmp_path))
    ok(rl_run(*common, "eval.every=100", f"hydra.run.dir={dense}", cwd=tmp_path))
    left, right = final_state(sparse, 600)["agent"], final_state(dense, 600)["agent"]
    assert left["observation_normaliser"]["count"] > 600  # training steps moved them
    assert_trees_equal(left, right)


def test_logged_episode_returns_are_the_raw_rewards_with_reward_normalisation(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            "algo=ppo",
            "env=cartpole",
            *PPO_SHORT,
            "algo.normalize_rewards=true",
            "trainer.total_steps=1000",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    episodes = [
        row for row in read_jsonl(run_dir / "metrics.jsonl") if "train/episode_return" in row
    ]
    assert len(episodes) > 10
    # CartPole pays 1 per step: the raw return is the length
    assert all(row["train/episode_return"] == row["train/episode_length"] for row in episodes)


def _children(pid: int) -> set[int]:
    """The process's children (Linux /proc)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found.update(int(child) for child in children)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_for_training(process: subprocess.Popen[str], run_dir: Path, workers: int) -> set[int]:
    """The worker processes, once the run has logged its first training row."""
    deadline = time.monotonic() + 120
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        children = _children(process.pid)
        if len(children) >= workers and metrics.exists() and metrics.stat().st_size > 0:
            return children
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.2)
    raise AssertionError("the run did not start training")


def _wait_gone(pids: set[int]) -> set[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(map(_alive, pids)):
        time.sleep(0.1)
    return {pid for pid in pids if _alive(pid)}


ASYNC_LONG = [
    "algo=ppo",
    "env=hopper",
    "env.num_envs=4",
    "env.vectorization_mode=async",
    "algo.n_steps=64",
    "trainer.total_steps=1000000",
    "checkpoint.every=1000000",
    "eval.every=1000000",
]


def test_no_worker_outlives_a_sigkilled_run(tmp_path: Path):
    run_dir = tmp_path / "run"
    process = start_rl_run(*ASYNC_LONG, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    try:
        workers = _wait_for_training(process, run_dir, 4)
        process.kill()
        process.wait(timeout=30)
        assert _wait_gone(workers) == set(), "workers outlived their run"
    finally:
        if process.poll() is None:
            process.kill()


def test_ctrl_c_of_an_async_run_checkpoints_through_its_workers_and_stops_them(tmp_path: Path):
    run_dir = tmp_path / "run"
    process = start_rl_run(*ASYNC_LONG, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    try:
        workers = _wait_for_training(process, run_dir, 4)
        # a terminal's Ctrl-C reaches every process of the foreground job, workers too
        process.send_signal(signal.SIGINT)
        for worker in workers:
            os.kill(worker, signal.SIGINT)
        assert process.wait(timeout=60) == 130, process.stderr.read() if process.stderr else ""
        assert _wait_gone(workers) == set()
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "interrupted"
        step = summary["env_steps"]
        assert (run_dir / "checkpoints" / f"step_{step:010d}.pt").exists()
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
@pytest.mark.parametrize(("algo", "budget"), [("ppo", 100_000), ("a2c", 500_000)])
def test_cartpole_preset_solves_within_its_budget(tmp_path: Path, algo: str, budget: int):
    """RL Zoo's presets: PPO within 100k steps, A2C within 500k (seed 0)."""
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            f"algo={algo}",
            "env=cartpole",
            "trainer.stop_at_eval_return=475",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
            timeout=1200,
        )
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["reached_eval_target"], summary
    assert summary["env_steps"] <= budget
