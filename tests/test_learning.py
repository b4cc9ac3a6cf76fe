"""Does DQN actually learn? Long checks, marked slow (CI runs them)."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest
from conftest import ok, read_jsonl, rl_run

import rl_runner.envs  # noqa: F401  (registers the rl_runner/ envs)


@pytest.mark.slow
def test_default_preset_solves_cartpole_within_50k_steps(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            "algo=dqn",
            "env=cartpole",
            "seed=0",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
            timeout=900,
        )
    )
    evaluations = read_jsonl(run_dir / "evaluations.jsonl")
    assert evaluations[-1]["step"] == 50_000
    best = max(row["eval/return_mean"] for row in evaluations)
    assert best >= 475, [row["eval/return_mean"] for row in evaluations]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_eval_return_mean"] == best


@pytest.mark.slow
def test_tutorial_preset_learns(tmp_path: Path):
    """The seed-000 tutorial's settings (one update per step) improve well past random
    play (about 22 steps) within 15k steps."""
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            "+experiment=dqn_cartpole_tutorial",
            "trainer.total_steps=15000",
            "eval.every=5000",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
            timeout=900,
        )
    )
    best = max(row["eval/return_mean"] for row in read_jsonl(run_dir / "evaluations.jsonl"))
    assert best >= 100


def test_the_shaped_cartpole_reward_scores_only_the_outcome():
    env = gym.make("rl_runner/CartPoleShaped-v0", success_steps=5, episode_steps=8)
    env.reset(seed=0)
    rewards, done = [], False
    while not done:  # pushing one way: the pole falls within 8 steps or the cut comes
        _, reward, terminated, truncated, _ = env.step(1)
        rewards.append(reward)
        done = terminated or truncated
    assert rewards[:-1] == [0.0] * (len(rewards) - 1)
    assert rewards[-1] == (1.0 if len(rewards) >= 5 else -1.0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seed_003s_small_dqn_balances_its_shaped_cartpole(tmp_path: Path, seed: int):
    """Every one of 10 evaluation episodes lasts 195+ steps, within 20k steps."""
    run_dir = tmp_path / "run"
    args = ["+experiment=dqn_cartpole_small_tutorial", f"seed={seed}"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["reached_eval_target"] is True and summary["env_steps"] <= 20_000
    assert read_jsonl(run_dir / "evaluations.jsonl")[-1]["eval/length_mean"] >= 195
