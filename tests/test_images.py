"""Images for every algorithm that reads a network: REINFORCE's policy, and DDPG's,
TD3's and SAC's actor and twin critics, convolve them (DQN's, PPO's and A2C's are in
test_pixels.py, test_atari.py and test_on_policy.py). The env is fake_envs' DotImage, a
contextual bandit seen in pixels, so learning it is learning to read the image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import ok, read_jsonl, rl_run, run_env
from test_export import rl_export
from test_resume import assert_same_run

SMALL_CNN = [
    "network=cnn",
    "network.channels=[8,16]",
    "network.kernel_size=3",
    "network.hidden_sizes=[64]",
    "network.batch_norm=false",
]
POINT = ["env=gym", "env.id=fake_envs:DotImage-v0", *SMALL_CNN]  # continuous actions
HALF = ["env=gym", "env.id=fake_envs:DotImageDiscrete-v0", *SMALL_CNN]  # discrete
WARM_UP = ["algo.random_steps=500", "algo.learning_starts=500"]


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac"])
def test_an_actor_critic_learns_to_point_at_the_dot_from_pixels(tmp_path: Path, algo: str):
    run_dir = tmp_path / "run"
    args = [f"algo={algo}", *POINT, *WARM_UP, "trainer.total_steps=6000", "eval.every=2000"]
    args += ["eval.episodes=20", "checkpoint.every=6000", f"hydra.run.dir={run_dir}"]
    ok(rl_run(*args, cwd=tmp_path, timeout=600))
    returns = [row["eval/return_mean"] for row in read_jsonl(run_dir / "evaluations.jsonl")]
    assert max(returns) >= -0.6, returns  # pointing at random scores about -1.3


def test_reinforce_learns_which_half_of_the_image_holds_the_dot(tmp_path: Path):
    run_dir = tmp_path / "run"
    # one-step episodes, with the default normalise_returns: a lone return is kept as it is
    args = ["algo=reinforce", *HALF, "algo.lr=1e-3"]
    args += ["trainer.total_steps=3000", "eval.every=1000", "eval.episodes=50"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    returns = [row["eval/return_mean"] for row in read_jsonl(run_dir / "evaluations.jsonl")]
    assert max(returns) >= 0.9, returns  # guessing scores 0.5


SHORT = ["eval.every=300", "eval.episodes=4", "checkpoint.every=300", "trainer.log_every=100"]
SHORT += ["env.num_envs=2"]
IMAGE_RUNS = {
    "sac": ["algo=sac", *POINT, "algo.random_steps=100", "algo.learning_starts=100"],
    "td3": ["algo=td3", *POINT, "algo.random_steps=100", "algo.learning_starts=100"],
    "reinforce": ["algo=reinforce", *HALF],
}


@pytest.mark.parametrize("algo", sorted(IMAGE_RUNS))
def test_an_image_run_checkpoints_its_convolutions_and_resumes_exactly(tmp_path: Path, algo: str):
    args = [*IMAGE_RUNS[algo], *SHORT, "buffer.capacity=1000"]
    if algo == "reinforce":
        args.remove("buffer.capacity=1000")  # no replay memory
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    ok(rl_run(*args, "trainer.total_steps=600", f"hydra.run.dir={straight}", cwd=tmp_path))
    ok(rl_run(*args, "trainer.total_steps=300", f"hydra.run.dir={resumed}", cwd=tmp_path))
    ok(rl_run(f"resume={resumed}", "trainer.total_steps=600", cwd=tmp_path))
    assert_same_run(straight, resumed, 600)

    agent = torch.load(straight / "checkpoints" / "step_0000000600.pt", weights_only=True)["agent"]
    if algo == "reinforce":
        assert agent["policy"]["features.0.weight"].shape == (8, 1, 3, 3)
        return
    # one set of convolutions each for the actor and the critics, which share theirs
    for part in ("actor", "critic", "critic_target"):
        assert agent[part]["encoder.0.weight"].shape == (8, 1, 3, 3), part
    assert agent["critic"]["heads.weights.0"].shape == (2, 64 + 2, 64)  # the action joins
    assert agent["replay"]["storage"]["obs"].dtype == torch.uint8  # pixels, not floats


def test_an_exported_image_actor_replays_its_evaluation(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [*IMAGE_RUNS["td3"], *SHORT, "buffer.capacity=1000", "trainer.total_steps=300"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    ok(rl_export(str(run_dir), cwd=tmp_path, env=run_env()))  # checks itself by replaying
    description = json.loads((run_dir / "export" / "policy.onnx.json").read_text())
    assert description["input"]["shape"] == [1, 12, 12]


def test_batch_norm_is_refused_where_the_agent_does_not_keep_its_statistics(tmp_path: Path):
    result = rl_run("algo=td3", *POINT, "network.batch_norm=true", cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "network.batch_norm: algo=td3" in lines[0] and "network.batch_norm=false" in lines[0]
    assert not (tmp_path / "outputs").exists()
