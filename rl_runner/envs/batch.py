"""Training environments stepped in lock-step, with explicit same-step autoreset."""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from rl_runner.envs.factory import EnvFactory
from rl_runner.envs.snapshot import env_state, restore_env_state


class BatchStep(NamedTuple):
    """One step of every env. `next_obs` continues the episodes (reset where one ended);
    `final_obs` is what each action led to, the right successor for a stored transition."""

    next_obs: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray


class EnvBatch:
    """`num_envs` copies of one environment.

    A finished episode is reset inside `step`, so callers never see a stale
    observation. Each copy is seeded once, through its first `reset`, with
    seed + index; later resets continue its own generator.
    """

    def __init__(self, factory: EnvFactory, num_envs: int, seed: int) -> None:
        self.envs = [factory() for _ in range(num_envs)]
        self.seed = seed
        self.observation_space: gym.Space = self.envs[0].observation_space
        self.action_space: gym.Space = self.envs[0].action_space

    @property
    def num_envs(self) -> int:
        return len(self.envs)

    def reset(self) -> np.ndarray:
        observations = []
        for index, env in enumerate(self.envs):
            env.action_space.seed(self.seed + index)
            env.observation_space.seed(self.seed + index)
            obs, _ = env.reset(seed=self.seed + index)
            observations.append(obs)
        return np.stack(observations)

    def step(self, actions: np.ndarray) -> BatchStep:
        if len(self.envs) == 1:
            return self._step_one(actions[0])
        final_obs, rewards, terminated, truncated, next_obs = [], [], [], [], []
        for env, action in zip(self.envs, actions, strict=True):
            obs, reward, term, trunc, _ = env.step(action)
            final_obs.append(obs)
            rewards.append(reward)
            terminated.append(term)
            truncated.append(trunc)
            if term or trunc:
                obs, _ = env.reset()
            next_obs.append(obs)
        return BatchStep(
            next_obs=np.stack(next_obs),
            rewards=np.asarray(rewards, dtype=np.float32),
            terminated=np.asarray(terminated, dtype=bool),
            truncated=np.asarray(truncated, dtype=bool),
            final_obs=np.stack(final_obs),
        )

    def _step_one(self, action: Any) -> BatchStep:
        """The single-env case without per-step lists (same result as the general path)."""
        env = self.envs[0]
        obs, reward, terminated, truncated, _ = env.step(action)
        final_obs = obs[None]
        next_obs = env.reset()[0][None] if terminated or truncated else final_obs
        return BatchStep(
            next_obs=next_obs,
            rewards=np.array([reward], dtype=np.float32),
            terminated=np.array([terminated]),
            truncated=np.array([truncated]),
            final_obs=final_obs,
        )

    def state_dict(self) -> list[Any]:
        return [env_state(env) for env in self.envs]

    def load_state_dict(self, state: list[Any]) -> None:
        if len(state) != len(self.envs):
            raise ValueError(f"checkpoint holds {len(state)} envs, the run has {len(self.envs)}")
        for env, env_snapshot in zip(self.envs, state, strict=True):
            restore_env_state(env, env_snapshot)

    def close(self) -> None:
        for env in self.envs:
            env.close()
