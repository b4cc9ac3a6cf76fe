"""Seed 004's DQN from pixels: the screen-patch observations, the CNN with BatchNorm,
and the run through `rl-run` (train, evaluate, checkpoint, resume exactly)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from conftest import ok, rl_run
from test_resume import assert_same_run

import rl_runner.envs  # noqa: F401  (registers the rl_runner/ envs)
from rl_runner.config.schema import CNNConfig
from rl_runner.networks.cnn import ConvNetwork

SHORT = [
    "+experiment=dqn_pixels_tutorial",
    "buffer.batch_size=16",
    "algo.learning_starts=100",
    "eval.every=200",
    "eval.episodes=2",
    "checkpoint.every=200",
    "trainer.log_every=100",
]


def test_observations_are_byte_patches_around_the_cart():
    env = gym.make("rl_runner/CartPolePixels-v0")
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (2, 3, 40, 90) and obs.dtype == np.uint8
    assert np.array_equal(obs[0], obs[1])  # a reset's difference is zero, as the tutorial's
    for _ in range(5):
        obs, *_ = env.step(1)
    before = obs[1]  # consecutive pairs chain: this step's current patch is next's previous
    obs, *_ = env.step(0)
    assert np.array_equal(obs[0], before) and not np.array_equal(obs[0], obs[1])


def test_the_network_reads_the_difference_and_acting_leaves_batch_norm_alone():
    network = ConvNetwork((2, 3, 40, 90), CNNConfig(), num_outputs=2)
    frames = torch.randint(0, 256, (4, 2, 3, 40, 90), dtype=torch.uint8)
    same = frames.clone()
    same[:, 0] = same[:, 1]  # no motion: the input is all zero
    network.eval()
    statistics = [b.clone() for b in network.buffers()]
    with torch.no_grad():
        zero_input = network.head(network.features(torch.zeros(4, 3, 40, 90)).flatten(1))
        assert torch.allclose(network(same), zero_input)
        network(frames)
    assert all(torch.equal(a, b) for a, b in zip(statistics, network.buffers(), strict=True))


def test_pixel_dqn_trains_checkpoints_and_resumes_exactly(tmp_path: Path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    ok(rl_run(*SHORT, "trainer.total_steps=400", f"hydra.run.dir={straight}", cwd=tmp_path))
    ok(rl_run(*SHORT, "trainer.total_steps=200", f"hydra.run.dir={resumed}", cwd=tmp_path))
    ok(rl_run(f"resume={resumed}", "trainer.total_steps=400", cwd=tmp_path))
    assert_same_run(straight, resumed, 400)
    state = torch.load(straight / "checkpoints" / "step_0000000400.pt", weights_only=True)
    agent = state["agent"]
    stored = agent["replay"]["storage"]
    assert stored["obs"].dtype == torch.uint8 and stored["obs"].shape[1:] == (2, 3, 40, 90)
    # next observations stored once: only where an episode ended (its final observation)
    ended = agent["replay"]["ended_rows"]
    assert 0 < len(ended) < 40 and stored["next_obs"].shape[0] == len(ended)
    assert state["loop"]["episodes"] == len(ended)
    online, target = agent["q_network"], agent["target_network"]
    means = [key for key in online if key.endswith("running_mean")]
    assert len(means) == 3  # one BatchNorm per convolution, its statistics saved
    # the target copies (every 10 episodes) carried the statistics, not only the weights
    assert all(target[key].abs().sum() > 0 for key in means)
