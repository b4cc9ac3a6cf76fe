"""Training environments stepped in lock-step, with explicit same-step autoreset."""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from rl_runner.envs.factory import EnvFactory
from rl_runner.envs.snapshot import env_state, restore_env_state


class BatchStep(NamedTuple):
    """One step of every env. `next_obs` continues the episodes (reset where one ended);
    `final_obs` is what each action led to, the right successor for a stored transition.
    The masks are the legal actions at those observations (`info["action_mask"]`), or
    None for an env that does not report them."""

    next_obs: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray
    next_masks: np.ndarray | None = None
    final_masks: np.ndarray | None = None


def action_masks(infos: list[dict[str, Any]]) -> np.ndarray | None:
    """The envs' legal actions (Gymnasium's `info["action_mask"]`), stacked, or None."""
    if "action_mask" not in infos[0]:
        return None
    return np.stack([np.asarray(info["action_mask"], dtype=bool) for info in infos])


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

    def reset(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The first observations and their action masks (None without masks)."""
        observations, infos = [], []
        for index, env in enumerate(self.envs):
            env.action_space.seed(self.seed + index)
            env.observation_space.seed(self.seed + index)
            obs, info = env.reset(seed=self.seed + index)
            observations.append(obs)
            infos.append(info)
        return np.stack(observations), action_masks(infos)

    def step(self, actions: np.ndarray) -> BatchStep:
        if len(self.envs) == 1:
            return self._step_one(actions[0])
        final_obs, rewards, terminated, truncated, next_obs = [], [], [], [], []
        final_infos, next_infos = [], []
        for env, action in zip(self.envs, actions, strict=True):
            obs, reward, term, trunc, info = env.step(action)
            final_obs.append(obs)
            final_infos.append(info)
            rewards.append(reward)
            terminated.append(term)
            truncated.append(trunc)
            if term or trunc:
                obs, info = env.reset()
            next_obs.append(obs)
            next_infos.append(info)
        return BatchStep(
            next_obs=np.stack(next_obs),
            rewards=np.asarray(rewards, dtype=np.float32),
            terminated=np.asarray(terminated, dtype=bool),
            truncated=np.asarray(truncated, dtype=bool),
            final_obs=np.stack(final_obs),
            next_masks=action_masks(next_infos),
            final_masks=action_masks(final_infos),
        )

    def _step_one(self, action: Any) -> BatchStep:
        """The single-env case without per-step lists (same result as the general path)."""
        env = self.envs[0]
        obs, reward, terminated, truncated, info = env.step(action)
        final_obs = np.asarray(obs)[None]
        final_masks = action_masks([info])
        next_obs, next_masks = final_obs, final_masks
        if terminated or truncated:
            obs, info = env.reset()
            next_obs, next_masks = np.asarray(obs)[None], action_masks([info])
        return BatchStep(
            next_obs=next_obs,
            rewards=np.array([reward], dtype=np.float32),
            terminated=np.array([terminated]),
            truncated=np.array([truncated]),
            final_obs=final_obs,
            next_masks=next_masks,
            final_masks=final_masks,
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
