"""Seed 003's reshaped CartPole reward, for its small DQN: 0 at every step, and at the
end of an episode +1 if it lasted `success_steps` steps or more, else -1. The values
stay within [-1, 1] (the tutorial's DQN has no target network, and CartPole's own +1
per step drives its values up without bound). Episodes are cut at `episode_steps`
(200 in the tutorial's loop). Evaluations then report the shaped return (+1 or -1);
`eval/length_mean` is the tutorial's own measure, steps balanced.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym


class EpisodeOutcomeReward(gym.Wrapper):
    def __init__(self, env: gym.Env, success_steps: int) -> None:
        super().__init__(env)
        self.success_steps = success_steps
        self.steps = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.steps = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        reward = 0.0
        if terminated or truncated:
            reward = 1.0 if self.steps >= self.success_steps else -1.0
        return obs, reward, terminated, truncated, info


def make_shaped_cartpole(
    success_steps: int = 195, episode_steps: int = 200, **kwargs: Any
) -> gym.Env:
    if not 1 <= success_steps <= episode_steps:
        raise ValueError(
            f"success_steps must be in [1, episode_steps={episode_steps}], got {success_steps}"
        )
    env = gym.make(
        "CartPole-v1", max_episode_steps=episode_steps, disable_env_checker=True, **kwargs
    )
    return EpisodeOutcomeReward(env, success_steps)
