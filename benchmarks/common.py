"""Helpers for the benchmarks: run our trainer in-process and evaluate any policy."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

from rl_runner.build import build_trainer
from rl_runner.config.compose import compose_settings
from rl_runner.rundir import EVALUATIONS_FILE, read_jsonl


def train_ours(overrides: list[str]) -> tuple[float, dict, object, list[dict]]:
    """Train with `rl-run`'s config and trainer.

    Returns (training seconds, summary, agent, evaluation rows)."""
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(compose_settings(overrides), Path(run_dir), checkpoint=None)
        started = time.perf_counter()
        summary = trainer.run()
        seconds = time.perf_counter() - started
        evaluations = read_jsonl(Path(run_dir) / EVALUATIONS_FILE)
    return seconds, summary, trainer.agent, evaluations


def evaluate(policy: Callable[[np.ndarray], int], env_id: str, seeds: list[int]) -> float:
    """Mean return of `policy` over one episode per seed (each reset with its seed)."""
    env = gym.make(env_id)
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))
