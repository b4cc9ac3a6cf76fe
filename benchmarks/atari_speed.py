"""Atari speed: emulator frames/s raw and through env=atari's preprocessing, 8 envs in
this process (sync) or in 8 worker processes (async) beside SB3's vector env, and DQN
and PPO training steps/s against Stable-Baselines3 at identical settings.

Identical settings: BreakoutNoFrameskip-v4 (SB3's Atari id: no sticky actions), whose
preprocessing in both is the DQN papers' (up to 30 no-ops, each action on 4 frames
with the last two max-pooled, 84x84 grayscale, a life lost ends a training episode,
rewards clipped to their sign, FIRE on reset, 4 frames stacked); the Nature CNN; one
torch thread, CPU.
- DQN: CleanRL's dqn_atari settings (lr 1e-4, batch 32, a gradient step every 4 env
  steps, target copy every 1,000), a 10k memory and learning from step 1,000 so that
  the timed run learns.
- PPO: CleanRL's ppo_atari (8 envs of 128 steps, 4 epochs of 4 minibatches of 256).
Training runs alternate (ours, SB3, ours, SB3, ...) so machine noise hits both alike;
each figure is whole-run steps/s (learn() or the trainer's run, start to end).

    python benchmarks/atari_speed.py                  # 2 rounds of everything
    python benchmarks/atari_speed.py --rounds 1 --no-training
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import gymnasium as gym
import numpy as np
import torch
from common import train_ours

from rl_runner.config.schema import AtariConfig
from rl_runner.envs.atari import make_atari, register_ale
from rl_runner.envs.batch import EnvBatch, VectorEnv
from rl_runner.envs.workers import SubprocessEnvBatch

GAME = "BreakoutNoFrameskip-v4"
NO_STICKY = AtariConfig(repeat_action_probability=0.0)
ENVS = 8


def random_steps_per_second(
    step: Callable[[np.ndarray], object], actions: int, steps: int
) -> float:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for _ in range(steps):
        step(rng.integers(4, size=actions))
    return steps * actions / (time.perf_counter() - started)


def single_env_rate(env: gym.Env, steps: int) -> float:
    env.reset(seed=0)

    def step(action: np.ndarray) -> None:
        _, _, terminated, truncated, _ = env.step(int(action[0]))
        if terminated or truncated:
            env.reset()

    return random_steps_per_second(step, 1, steps)


def vector_rate(envs: VectorEnv, steps: int) -> float:
    envs.reset()
    try:
        return random_steps_per_second(envs.step, envs.num_envs, steps)
    finally:
        envs.close()


def sb3_vector_rate(steps: int) -> float:
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    envs = VecFrameStack(make_atari_env(GAME, n_envs=ENVS, seed=0), n_stack=4)
    envs.reset()
    try:
        return random_steps_per_second(envs.step, ENVS, steps)
    finally:
        envs.close()


def env_speed(steps: int) -> None:
    register_ale()
    raw = gym.make(GAME, disable_env_checker=True)  # one emulator frame per step
    raw_frames = single_env_rate(raw, steps * 4)
    ours = single_env_rate(make_atari(GAME, NO_STICKY, {}, None, training=True), steps)
    factory = partial(make_atari, GAME, NO_STICKY, {}, None, True)
    sync = vector_rate(EnvBatch(factory, ENVS, seed=0), steps // ENVS)
    workers = vector_rate(SubprocessEnvBatch(factory, ENVS, seed=0), steps // ENVS)
    sb3 = sb3_vector_rate(steps // ENVS)
    print(f"raw ALE, one env:              {raw_frames:8.0f} frames/s")
    print(f"env=atari, one env:            {ours:8.0f} steps/s = {4 * ours:6.0f} frames/s")
    print(f"env=atari, {ENVS} envs sync:        {sync:8.0f} steps/s")
    print(
        f"env=atari, {ENVS} envs async:       {workers:8.0f} steps/s ({workers / sync:.2f}x sync)"
    )
    print(f"SB3 make_atari_env, {ENVS} envs:    {sb3:8.0f} steps/s (ours sync {sync / sb3:.2f}x)")


def our_overrides(algo: str, steps: int) -> list[str]:
    common = [
        f"algo={algo}",
        "env=atari",
        f"env.id={GAME}",
        "env.atari.repeat_action_probability=0",
        "seed=0",
        "threads=1",
        "device=cpu",
        f"trainer.total_steps={steps}",
        f"eval.every={steps}",  # one short evaluation, at the end
        "eval.episodes=1",
        "eval.max_episode_steps=100",
        f"checkpoint.every={steps}",
        "checkpoint.replay=false",
    ]
    if algo == "dqn":
        return [
            *common,
            "buffer.capacity=10000",
            "algo.learning_starts=1000",
            "trainer.log_every=1000",
        ]
    return [*common, "trainer.log_every=1024"]


def run_ours(algo: str, steps: int) -> float:
    return steps / train_ours(our_overrides(algo, steps)).seconds


def run_sb3(algo: str, steps: int) -> float:
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    envs = VecFrameStack(make_atari_env(GAME, n_envs=1 if algo == "dqn" else ENVS, seed=0), 4)
    if algo == "dqn":
        model = DQN(
            "CnnPolicy",
            envs,
            learning_rate=1e-4,
            buffer_size=10_000,
            learning_starts=1000,
            batch_size=32,
            train_freq=4,
            gradient_steps=1,
            target_update_interval=1000,
            exploration_fraction=0.1,
            exploration_final_eps=0.01,
            device="cpu",
            seed=0,
        )
    else:
        model = PPO(
            "CnnPolicy",
            envs,
            learning_rate=2.5e-4,
            n_steps=128,
            batch_size=256,
            n_epochs=4,
            clip_range=0.1,
            ent_coef=0.01,
            vf_coef=0.5,
            device="cpu",
            seed=0,
        )
    started = time.perf_counter()
    model.learn(steps)
    seconds = time.perf_counter() - started
    envs.close()
    return steps / seconds


def training_speed(rounds: int) -> None:
    for algo, steps in (("dqn", 6_000), ("ppo", 3 * 1024)):
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(run_ours(algo, steps))
            theirs.append(run_sb3(algo, steps))
        ratio = statistics.median(o / t for o, t in zip(ours, theirs, strict=True))
        print(
            f"{algo.upper()} on {GAME}, {steps} steps: "
            f"ours {statistics.median(ours):6.0f} steps/s, "
            f"SB3 {statistics.median(theirs):6.0f} steps/s, "
            f"ratio {ratio:.2f}x (median of {rounds})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--env-steps", type=int, default=8000)
    parser.add_argument("--no-training", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env_speed(args.env_steps)
    if not args.no_training:
        training_speed(args.rounds)


if __name__ == "__main__":
    main()
