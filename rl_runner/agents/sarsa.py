"""Tabular SARSA (Rummery and Niranjan, 1994), seed 003's maze.

for every env step:
    take a (chosen at the previous step; epsilon-greedy over legal actions at an episode's start)
    observe r, s'; choose a' epsilon-greedily among the legal actions of s'
    y = r                       if s' is terminal
    y = r + gamma * Q(s', a')   otherwise
    Q(s, a) += lr * (y - Q(s, a)); the next step takes a'

At a time-limit cut the episode does not end in a terminal state, so the target still
needs a': it is drawn from the agent's own policy at the final observation and used for
the target only (the next episode starts from its reset observation with a fresh choice).
"""

from __future__ import annotations

import numpy as np
import torch

from rl_runner.agents.tabular import TabularTD, table_shape
from rl_runner.config.settings import Settings
from rl_runner.envs.batch import VectorEnv


class SARSA(TabularTD):
    def _next_value(self, env_index: int, next_state: int, legal: np.ndarray) -> float:
        next_action = self._policy_action(next_state, legal)
        self.next_actions[env_index] = next_action
        return float(self.q[next_state, next_action])


def build(settings: Settings, envs: VectorEnv, device: torch.device) -> SARSA:
    return SARSA(settings.algo, *table_shape(envs), envs.num_envs, settings.run.seed)
