"""Tabular Q-learning (Watkins, 1989), seed 003's maze and discretised CartPole.

for every env step:
    a = a random legal action with probability epsilon, else argmax over legal a of Q(s, a)
    y = r                                        if s' is terminal
    y = r + gamma * max over legal a' of Q(s', a')   otherwise (a time-limit cut included)
    Q(s, a) += lr * (y - Q(s, a))
epsilon follows its schedule in env steps or in finished episodes (the maze halves it
after every episode).
"""

from __future__ import annotations

import numpy as np
import torch

from rl_runner.agents.tabular import TabularTD, table_shape
from rl_runner.config.settings import Settings
from rl_runner.envs.batch import VectorEnv


class QLearning(TabularTD):
    def _next_value(self, env_index: int, next_state: int, legal: np.ndarray) -> float:
        return float(self.q[next_state, legal].max())


def build(settings: Settings, envs: VectorEnv, device: torch.device) -> QLearning:
    return QLearning(settings.algo, *table_shape(envs), envs.num_envs, settings.run.seed)
