"""env=atari: ALE games with the DQN papers' preprocessing, their scores as the papers
report them, the Nature CNN, and exact resume of the emulator."""

from __future__ import annotations

import io
import json
import logging
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import ok, read_jsonl, rl_run
from PIL import Image
from test_export import rl_export
from test_render import played, rl_render
from test_resume import assert_same_run

from rl_runner import build
from rl_runner.buffers.replay import FrameStackReplay
from rl_runner.config.compose import compose_settings
from rl_runner.config.schema import AtariConfig
from rl_runner.envs.atari import GAME_OVER_KEY, SCORE_KEY, make_atari
from rl_runner.envs.batch import EnvBatch
from rl_runner.envs.snapshot import env_state, restore_env_state

# A short DQN that learns from its 200th step, a small memory that wraps, short evaluations.
SHORT = [
    "algo=dqn",
    "env=atari",
    "algo.learning_starts=200",
    "algo.epsilon.decay_steps=500",
    "buffer.capacity=700",
    "eval.every=400",
    "eval.episodes=1",
    "eval.max_episode_steps=150",
    "checkpoint.every=400",
    "trainer.log_every=200",
]


def atari_env(training: bool, game: str = "ALE/Breakout-v5") -> gym.Env:
    return make_atari(game, AtariConfig(), {}, 27_000, training)


def play(env: gym.Env, actions: list[int]) -> list[tuple]:
    """(observation, reward, terminated, truncated, score, game over) of each step,
    resetting where an episode ends."""
    steps = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        steps.append(
            (obs.copy(), reward, terminated, truncated, info[SCORE_KEY], info[GAME_OVER_KEY])
        )
        if terminated or truncated:
            env.reset()
    return steps


def random_actions(count: int, seed: int = 0, actions: int = 4) -> list[int]:
    return [int(a) for a in np.random.default_rng(seed).integers(actions, size=count)]


def test_a_life_lost_ends_a_training_episode_but_not_the_game():
    env = atari_env(training=True, game="ALE/SpaceInvaders-v5")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    steps = play(env, random_actions(4000, seed=0, actions=6))
    life_ends = [step for step in steps if step[2] and not step[5]]
    game_ends = [step for step in steps if step[5]]
    # three lives: two life-loss episodes before each game's end
    assert len(game_ends) >= 2 and len(life_ends) >= 2 * len(game_ends)
    assert {step[1] for step in steps} == {0.0, 1.0}  # clipped for learning
    assert {step[4] for step in steps} >= {0.0, 5.0, 10.0, 15.0}  # the game's own points


def test_evaluation_envs_play_whole_games_for_their_raw_score():
    env = atari_env(training=False)
    env.reset(seed=0)
    steps = play(env, random_actions(3000))
    assert all(step[2] == step[5] for step in steps if step[2] or step[3])  # ends are games
    assert [step[1] for step in steps] == [step[4] for step in steps]  # rewards unclipped


@pytest.mark.parametrize("game", ["ALE/Breakout-v5", "ALE/Pong-v5"])  # paddle, joystick
@pytest.mark.parametrize("played", [1, 100, 700])
def test_a_snapshot_restores_emulator_and_frame_stack_exactly(game: str, played: int):
    env = atari_env(training=True, game=game)
    env.reset(seed=3)
    play(env, random_actions(played, seed=1))  # 700: mid-game, past life losses
    saved = io.BytesIO()
    torch.save(env_state(env), saved)  # as a checkpoint holds it
    actions = random_actions(1000, seed=2)
    expected = play(env, actions)
    fresh = atari_env(training=True, game=game)
    saved.seek(0)
    restore_env_state(fresh, torch.load(saved, weights_only=True))
    for (obs, *rest), (fresh_obs, *fresh_rest) in zip(expected, play(fresh, actions), strict=True):
        assert np.array_equal(obs, fresh_obs) and rest == fresh_rest


def test_atari_settings_are_checked_up_front(tmp_path: Path):
    result = rl_run("env=atari", "+env.kwargs.frameskip=4", cwd=tmp_path)
    assert result.returncode == 2
    assert "env.kwargs.frameskip: env=atari sets it" in result.stderr.strip().splitlines()[-1]
    result = rl_run("env=atari", "env.atari.frame_stack=0", cwd=tmp_path)
    assert result.returncode == 2 and "env.atari.frame_stack: must be >= 1" in result.stderr
    result = rl_run("env=atari", "env.id=CartPole-v1", cwd=tmp_path)
    assert result.returncode == 2 and "env.id: CartPole-v1 is not an Atari game" in result.stderr
    refusals = {
        ("env=cartpole", "env.atari.frame_skip=2"): "env.atari.frame_skip: its section is null",
        ("env=atari", "env.atari=null"): "env.atari: env=atari needs its preprocessing",
        ("env=gym", "env.id=ALE/Pong-v5", "network=nature_cnn"): "gives the raw screen",
        ("env=gym", "env.id=ALE/Pong-v5"): "env=atari preprocesses it",
        ("algo=td3", "env=atari"): "algo=td3 needs a continuous (Box) action space",
    }
    for args, mentions in refusals.items():
        result = rl_run(*args, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and mentions in lines[0], result.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("game", ["ALE/Breakout-v5", "ALE/Pong-v5"])
def test_dqn_trains_on_atari_with_the_nature_cnn(tmp_path: Path, game: str):
    run_dir = tmp_path / "run"
    args = [*SHORT, f"env.id={game}", "trainer.total_steps=800", f"hydra.run.dir={run_dir}"]
    ok(rl_run(*args, cwd=tmp_path))
    state = torch.load(run_dir / "checkpoints" / "step_0000000800.pt", weights_only=True)
    weights = state["agent"]["q_network"]
    shapes = [tuple(weight.shape) for name, weight in weights.items() if name.endswith("weight")]
    # the Nature CNN: three convolutions, 512 fully connected, a value per action
    actions = 4 if "Breakout" in game else 6
    assert shapes == [(32, 4, 8, 8), (64, 32, 4, 4), (64, 64, 3, 3), (512, 3136), (actions, 512)]
    frames = state["agent"]["replay"]["storage"]["obs"]
    assert frames.dtype == torch.uint8 and tuple(frames.shape) == (700, 84, 84)  # one per row
    evaluations = read_jsonl(run_dir / "evaluations.jsonl")
    assert [row["step"] for row in evaluations] == [400, 800]


def test_an_atari_run_resumes_bit_for_bit(tmp_path: Path):
    """Emulator, sticky actions, frame stacks, lives and the frame memory, through a
    checkpoint: two envs, the memory wrapped, a resume mid-game."""
    args = [*SHORT, "env.num_envs=2"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    ok(rl_run(*args, "trainer.total_steps=1600", f"hydra.run.dir={straight}", cwd=tmp_path))
    ok(rl_run(*args, "trainer.total_steps=800", f"hydra.run.dir={resumed}", cwd=tmp_path))
    ok(rl_run(f"resume={resumed}", "trainer.total_steps=1600", cwd=tmp_path))
    assert_same_run(straight, resumed, 1600)


def test_the_logs_report_whole_games_and_their_raw_scores(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            *SHORT,
            "env.id=ALE/SpaceInvaders-v5",
            "trainer.total_steps=1200",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    games = [row for row in read_jsonl(run_dir / "metrics.jsonl") if "train/episode_return" in row]
    assert games  # a random SpaceInvaders game lasts a few hundred steps
    # three lives per game: far longer than a life; scores in multiples of 5, not signs
    assert min(row["train/episode_length"] for row in games) > 100
    assert all(row["train/episode_return"] % 5 == 0 for row in games)
    assert max(row["train/episode_return"] for row in games) > 20


def test_the_memory_estimate_counts_each_frame_once(tmp_path: Path):
    # 30M transitions of one 84x84 frame and 17 bytes beside it: 197.6 GiB, not two
    # stacks of 4 frames (1577 GiB); refused before anything is written
    result = rl_run("env=atari", "buffer.capacity=30000000", cwd=tmp_path)
    assert result.returncode == 2
    assert "the replay memory (197.6 GiB)" in result.stderr, result.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_memory_larger_than_the_memory_free_now_is_warned_of(monkeypatch, caplog):
    settings = compose_settings(["env=atari", "buffer.capacity=1000000"])
    stacks = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    with caplog.at_level(logging.WARNING, logger="rl_runner"):
        monkeypatch.setattr(build, "_memory_free_now", lambda: 64 * 2**30)
        build._warn_if_memory_is_short(settings, stacks)
        assert caplog.text == ""
        monkeypatch.setattr(build, "_memory_free_now", lambda: 2**30)
        build._warn_if_memory_is_short(settings, stacks)
    assert "the replay memory will fill 6.6 GiB, more than the 1.0 GiB free now" in caplog.text


def test_the_frame_memory_gives_back_every_transition_exactly():
    """Each sampled transition's stacks are the env's own, across life losses, games,
    two envs and a memory that has wrapped: rewards carry each transition's number."""
    envs = EnvBatch(partial(atari_env, True), num_envs=2, seed=0)
    memory = FrameStackReplay(
        1000, (4, 84, 84), np.uint8, (), np.int64, seed=0, device=torch.device("cpu"), num_envs=2
    )
    obs, _ = envs.reset()
    transitions = {}
    rng = np.random.default_rng(0)
    for step in range(1500):
        actions = rng.integers(4, size=2)
        result = envs.step(actions)
        ended = result.terminated | result.truncated
        numbers = np.array([2 * step, 2 * step + 1], dtype=np.float32)
        memory.add(obs, actions, numbers, result.final_obs, result.terminated, ended)
        for index, number in enumerate(numbers):
            transitions[int(number)] = (obs[index], result.final_obs[index])
        obs = result.next_obs
    assert len(memory) == 1000 - 4 * 2  # the oldest 3 rows and the newest of each env
    batch = memory.sample(4000)
    numbers = batch.rewards.numpy().astype(int)
    assert numbers.min() >= 3000 - 1000 + 6 and numbers.max() < 3000 - 2  # live rows only
    for number, sampled_obs, sampled_next in zip(numbers, batch.obs, batch.next_obs, strict=True):
        true_obs, true_next = transitions[int(number)]
        assert np.array_equal(sampled_obs.numpy(), true_obs)
        assert np.array_equal(sampled_next.numpy(), true_next)


PPO_SHORT = [
    "algo=ppo",
    "env=atari",
    "env.num_envs=4",
    "algo.n_steps=64",
    "eval.every=512",
    "eval.episodes=1",
    "eval.max_episode_steps=150",
    "checkpoint.every=512",
    "trainer.log_every=256",
]


@pytest.mark.parametrize("game", ["ALE/Breakout-v5", "PongNoFrameskip-v4"])
def test_ppo_trains_on_atari_with_one_nature_cnn_trunk(tmp_path: Path, game: str):
    run_dir = tmp_path / "run"
    args = [*PPO_SHORT, f"env.id={game}", "trainer.total_steps=1024", f"hydra.run.dir={run_dir}"]
    ok(rl_run(*args, cwd=tmp_path))
    state = torch.load(run_dir / "checkpoints" / "step_0000001024.pt", weights_only=True)
    network = state["agent"]["policy"]
    shapes = [tuple(weight.shape) for name, weight in network.items() if name.endswith("weight")]
    # one trunk, whose head holds a logit per action and the value
    outputs = (4 if "Breakout" in game else 6) + 1
    assert shapes == [(32, 4, 8, 8), (64, 32, 4, 4), (64, 64, 3, 3), (512, 3136), (outputs, 512)]
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert any("loss/policy" in row for row in rows)


def test_an_atari_ppo_run_of_four_envs_resumes_bit_for_bit(tmp_path: Path):
    # a constant learning rate: an annealed one follows trainer.total_steps, which the
    # resume raises
    args = [*PPO_SHORT, "algo.lr_schedule=constant"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    ok(rl_run(*args, "trainer.total_steps=1536", f"hydra.run.dir={straight}", cwd=tmp_path))
    ok(rl_run(*args, "trainer.total_steps=1024", f"hydra.run.dir={resumed}", cwd=tmp_path))
    ok(rl_run(f"resume={resumed}", "trainer.total_steps=1536", cwd=tmp_path))
    assert_same_run(straight, resumed, 1536)


def test_rl_render_films_the_real_screen_of_a_whole_game(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(rl_run(*SHORT, "trainer.total_steps=400", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    [(total, length, gif)] = played(ok(rl_render(str(run_dir), cwd=tmp_path)))
    with Image.open(gif) as image:  # ALE's 160x210 screen in colour, a caption below
        assert image.n_frames == length + 1 and image.size == (160, 210 + 16)
        assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 8
    [evaluation] = read_jsonl(run_dir / "evaluations.jsonl")
    assert total == evaluation["returns"][0]  # the evaluation's own game, seed and score


def test_an_exported_atari_policy_names_its_preprocessing(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(rl_run(*SHORT, "trainer.total_steps=400", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    ok(rl_export(str(run_dir), cwd=tmp_path))
    description = json.loads((run_dir / "export" / "policy.onnx.json").read_text())
    assert description["env"]["atari_preprocessing"]["frame_stack"] == 4
    assert description["input"]["shape"] == [4, 84, 84]
