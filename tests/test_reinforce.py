"""REINFORCE: its returns, and learning CartPole-v1 through `rl-run` (seed 003's preset)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ok, read_jsonl, rl_run

from rl_runner.agents.reinforce import discounted_returns, normalised


def test_returns_are_discounted_to_the_end_of_the_episode():
    assert discounted_returns([1.0, 1.0, 1.0], 0.9) == pytest.approx([2.71, 1.9, 1.0])
    assert discounted_returns([0.0, 0.0, 1.0], 1.0) == pytest.approx([1.0, 1.0, 1.0])


def test_normalised_returns_have_zero_mean_and_unit_spread():
    values = normalised(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert float(values.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(values.std()) == pytest.approx(1.0, abs=1e-6)
    # a one-step episode: no spread to divide by, and centring would leave it nothing
    assert torch.equal(normalised(torch.tensor([5.0])), torch.tensor([5.0]))


def test_a_checkpoint_holds_the_running_episode(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["algo=reinforce", "trainer.total_steps=1010", "eval.every=1010"]
    ok(rl_run(*args, "checkpoint.every=1010", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    state = torch.load(run_dir / "checkpoints" / "step_0000001010.pt", weights_only=True)
    episode = state["agent"]["running_episodes"][0]
    length = int(state["loop"]["episode_lengths"][0])
    assert length > 0 and episode["obs"].shape == (length, 4)
    assert len(episode["actions"]) == len(episode["rewards"]) == length
    assert set(state["agent"]) >= {"policy", "optimizer", "rng", "counters"}


def test_a_resume_keeps_its_baseline_or_its_absence(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            "algo=reinforce", "trainer.total_steps=300", f"hydra.run.dir={run_dir}", cwd=tmp_path
        )
    )
    result = rl_run(
        f"resume={run_dir}", "algo.baseline=true", "trainer.total_steps=600", cwd=tmp_path
    )
    assert result.returncode == 2 and "algo.baseline: cannot change" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("baseline", [False, True])
def test_reinforce_balances_cartpole(tmp_path: Path, baseline: bool):
    """The tutorial's preset (lr 1e-4) reaches a greedy return of 195 within 100k steps."""
    run_dir = tmp_path / "run"
    args = [
        "+experiment=reinforce_cartpole_tutorial",
        f"algo.baseline={str(baseline).lower()}",
        "trainer.total_steps=100000",
        "trainer.stop_at_eval_return=195",
    ]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["reached_eval_target"] is True, summary
    entropies = [
        row["train/entropy"]
        for row in read_jsonl(run_dir / "metrics.jsonl")
        if "train/entropy" in row
    ]
    assert entropies[-1] < entropies[0] <= np.log(2) + 1e-6  # the policy grew surer
