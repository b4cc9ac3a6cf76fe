"""Tabular policy gradient, seed 003's maze (a softmax policy over a table theta).

pi(a|s) = softmax over the legal actions of s of beta * theta(s, a)
for every episode (length T, return G, N(s, a) = times a was taken in s, N(s) = visits):
    theta(s, a) += lr * G * (N(s, a) - pi(a|s) * N(s)) / T    for every legal (s, a)
    stop the run once the update changes pi by less than stop_delta (sum over the table)

The tutorial's loop writes `theta + eta + delta`, a typo for `theta + eta * delta` (its
own formula above the code); this is the formula. The tutorial has no G: its maze pays
1 at the goal and every episode ends there, so G = 1 always. Elsewhere (FrozenLake, an
episode cut by the time limit) an episode that earned nothing must teach nothing, or
the rule learns to repeat whatever it did: the update is weighted by the return, and an
episode with G = 0 changes neither theta nor the convergence measure. Legal actions
come from the env's masks as states are visited; without masks every action is legal.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from rl_runner.agents.base import Decision, Metrics, Transition
from rl_runner.agents.common import Counters
from rl_runner.agents.tabular import check_table, legal_actions, table_shape
from rl_runner.config.algorithms import TabularPGConfig
from rl_runner.config.settings import Settings
from rl_runner.envs.batch import VectorEnv
from rl_runner.seeding import generator_state, restore_generator_state


def softmax_policy(theta: np.ndarray, legal: np.ndarray, beta: float) -> np.ndarray:
    """Rows of action probabilities, zero on illegal actions."""
    logits = np.where(legal, beta * theta, -np.inf)
    logits -= logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=-1, keepdims=True)


class TabularPG:
    def __init__(
        self, config: TabularPGConfig, num_states: int, num_actions: int, num_envs: int, seed: int
    ) -> None:
        self.config = config
        self.num_actions = num_actions
        self.rng = np.random.default_rng(seed)
        self.theta = np.full((num_states, num_actions), config.theta_init)
        self.legal = np.ones((num_states, num_actions), dtype=bool)  # as the masks say
        # each env's running episode: state-action counts and length
        self.counts = np.zeros((num_envs, num_states, num_actions), dtype=np.int64)
        self.lengths = np.zeros(num_envs, dtype=np.int64)
        self.returns = np.zeros(num_envs)
        self.policy_change = math.inf  # of the latest update
        self.count = Counters()
        self._ended: np.ndarray | None = None  # envs whose episode ended at the last step

    def policy(self) -> np.ndarray:
        return softmax_policy(self.theta, self.legal, self.config.beta)

    def policy_table(self) -> dict[str, np.ndarray]:
        """What rl-export writes: the preferences theta (greedy: a row's largest among the
        legal actions) and the softmax policy over the moves training found legal."""
        return {"theta": self.theta.copy(), "policy": self.policy()}

    def act(self, obs: np.ndarray, explore: bool, masks: np.ndarray | None = None) -> Decision:
        states = np.asarray(obs, dtype=np.int64)
        legal = legal_actions(masks, len(states), self.num_actions)
        probabilities = softmax_policy(self.theta[states], legal, self.config.beta)
        if not explore:
            return Decision(probabilities.argmax(axis=-1))
        self.legal[states] = legal  # training visits teach the table its legal moves
        return Decision(
            np.array([self.rng.choice(self.num_actions, p=row) for row in probabilities])
        )

    def observe(self, step: Transition) -> None:
        envs = np.arange(len(step.obs))
        self.counts[envs, np.asarray(step.obs, dtype=np.int64), step.actions] += 1
        self.lengths += 1
        self.returns += step.rewards
        self.count.observed(step.terminated, step.truncated)
        self._ended = step.terminated | step.truncated

    def update(self) -> Metrics:
        """Each finished episode's update, in env order (none for an episode that
        earned nothing)."""
        if self._ended is None or not self._ended.any():
            return {}
        changes = [self._learn_from_episode(int(index)) for index in np.flatnonzero(self._ended)]
        self._ended = None
        learnt = [change for change in changes if change is not None]
        return {"train/policy_change": learnt[-1]} if learnt else {}

    def _learn_from_episode(self, env_index: int) -> float | None:
        counts, earned = self.counts[env_index], self.returns[env_index]
        change = None
        if earned != 0:
            before = self.policy()
            visits = counts.sum(axis=1, keepdims=True)
            step = earned * (counts - before * visits) / self.lengths[env_index]
            self.theta += self.config.lr * np.where(self.legal, step, 0.0)
            change = self.policy_change = float(np.abs(self.policy() - before).sum())
            self.count.updates += 1
        counts[:] = 0
        self.lengths[env_index] = 0
        self.returns[env_index] = 0.0
        return change

    @property
    def converged(self) -> bool:
        stop = self.config.stop_delta
        return stop is not None and self.policy_change < stop

    def diagnostics(self) -> dict[str, float]:
        return {}

    @property
    def counters(self) -> dict[str, int]:
        return self.count.state_dict()

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        return {
            "theta": torch.from_numpy(self.theta.copy()),
            "legal": torch.from_numpy(self.legal.copy()),
            "episode_counts": torch.from_numpy(self.counts.copy()),
            "episode_lengths": torch.from_numpy(self.lengths.copy()),
            "episode_returns": torch.from_numpy(self.returns.copy()),
            "policy_change": self.policy_change,
            "rng": generator_state(self.rng),
            "counters": self.counters,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.theta = check_table("theta table", state["theta"], self.theta)
        self.legal = state["legal"].numpy().copy()
        self.counts = state["episode_counts"].numpy().copy()
        self.lengths = state["episode_lengths"].numpy().copy()
        # a checkpoint from before returns weighted the update: running returns restart at 0
        returns = state.get("episode_returns", torch.zeros(len(self.lengths), dtype=torch.float64))
        self.returns = returns.numpy().copy()
        self.policy_change = state["policy_change"]
        restore_generator_state(self.rng, state["rng"])
        self.count.load_state_dict(state["counters"])


def build(settings: Settings, envs: VectorEnv, device: torch.device) -> TabularPG:
    return TabularPG(settings.algo, *table_shape(envs), envs.num_envs, settings.run.seed)
