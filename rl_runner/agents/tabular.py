"""What the tabular agents share: tables indexed by discrete states, legal-action masks,
and the temporal-difference agent that Q-learning and SARSA both are.

A table lives in numpy and goes into the checkpoint as a tensor (checkpoints load with
`weights_only=True`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rl_runner.agents.base import Decision, Metrics, Transition
from rl_runner.agents.common import Counters, epsilon_at
from rl_runner.config.algorithms import TabularTDConfig
from rl_runner.envs.batch import VectorEnv
from rl_runner.seeding import generator_state, restore_generator_state

NO_ACTION = -1


def table_shape(envs: VectorEnv) -> tuple[int, int]:
    """(states, actions) of a discrete env (checked before the run was claimed)."""
    assert isinstance(envs.single_observation_space, gym.spaces.Discrete)
    assert isinstance(envs.single_action_space, gym.spaces.Discrete)
    return int(envs.single_observation_space.n), int(envs.single_action_space.n)


def legal_actions(masks: np.ndarray | None, count: int, num_actions: int) -> np.ndarray:
    """(count, actions) booleans: the env's masks, or every action where it has none."""
    if masks is None:
        return np.ones((count, num_actions), dtype=bool)
    return np.asarray(masks, dtype=bool)


def masked_argmax(values: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """The best legal action of each row (the first of equals)."""
    return np.where(legal, values, -np.inf).argmax(axis=-1)


def check_table(name: str, stored: torch.Tensor, expected: np.ndarray) -> np.ndarray:
    """A checkpoint's table, if it has this run's shape (states x actions)."""
    if tuple(stored.shape) != expected.shape:
        raise ValueError(
            f"the checkpoint's {name} is {tuple(stored.shape)}, this run's env needs "
            f"{expected.shape}"
        )
    return stored.numpy().copy()


def random_legal(rng: np.random.Generator, legal: np.ndarray) -> int:
    return int(rng.choice(np.flatnonzero(legal)))


class TabularTD:
    """A Q table learnt one transition at a time, acting epsilon-greedily among the legal
    actions. Subclasses give the value of the next state, `_next_value`."""

    def __init__(
        self, config: TabularTDConfig, num_states: int, num_actions: int, num_envs: int, seed: int
    ) -> None:
        self.config = config
        self.num_actions = num_actions
        self.rng = np.random.default_rng(seed)
        self.q = self.rng.uniform(0.0, config.q_init_high, size=(num_states, num_actions))
        # SARSA's next action per env, taken at the next step (NO_ACTION: none chosen)
        self.next_actions = np.full(num_envs, NO_ACTION, dtype=np.int64)
        self.count = Counters()
        # the last step, with the legal actions at its next states
        self._transition: tuple[Transition, np.ndarray] | None = None

    @property
    def epsilon(self) -> float:
        return epsilon_at(self.config.epsilon, self.count.env_steps, self.count.episodes)

    def policy_table(self) -> dict[str, np.ndarray]:
        """What rl-export writes: the Q-values, states x actions (greedy: a row's largest
        among the legal actions)."""
        return {"q": self.q.copy()}

    def act(self, obs: np.ndarray, explore: bool, masks: np.ndarray | None = None) -> Decision:
        states = np.asarray(obs, dtype=np.int64)
        legal = legal_actions(masks, len(states), self.num_actions)
        actions = masked_argmax(self.q[states], legal)
        if not explore:
            return Decision(actions)
        for index in range(len(states)):
            if self.next_actions[index] != NO_ACTION:
                actions[index] = self.next_actions[index]
            else:
                actions[index] = self._explore(int(actions[index]), legal[index])
        return Decision(actions)

    def _explore(self, greedy: int, legal: np.ndarray) -> int:
        return random_legal(self.rng, legal) if self.rng.random() < self.epsilon else greedy

    def _policy_action(self, state: int, legal: np.ndarray) -> int:
        """An action of the current epsilon-greedy policy."""
        return self._explore(int(masked_argmax(self.q[state], legal)), legal)

    def observe(self, step: Transition) -> None:
        legal = legal_actions(step.next_masks, len(step.obs), self.num_actions)
        self._transition = (step, legal)
        self.count.observed(step.terminated, step.truncated)

    def update(self) -> Metrics:
        """One TD update per env's last transition:
        Q(s, a) += lr * (r + gamma * V(s') - Q(s, a)), V(s') = 0 where s' is terminal."""
        if self._transition is None:
            return {}
        step, legal = self._transition
        self._transition = None
        errors = []
        for index, (state, action) in enumerate(zip(step.obs, step.actions, strict=True)):
            target = float(step.rewards[index])
            self.next_actions[index] = NO_ACTION
            if not step.terminated[index]:
                value = self._next_value(index, int(step.next_obs[index]), legal[index])
                target += self.config.gamma * value
            if step.truncated[index]:
                self.next_actions[index] = NO_ACTION  # the next episode starts afresh
            error = target - self.q[state, action]
            self.q[state, action] += self.config.lr * error
            errors.append(error)
        self.count.updates += 1
        return {"loss/td": float(np.mean(np.square(errors)))}

    def _next_value(self, env_index: int, next_state: int, legal: np.ndarray) -> float:
        raise NotImplementedError

    @property
    def converged(self) -> bool:
        return False

    def diagnostics(self) -> dict[str, float]:
        return {"train/epsilon": self.epsilon}

    @property
    def counters(self) -> dict[str, int]:
        return self.count.state_dict()

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        return {
            "q_table": torch.from_numpy(self.q.copy()),
            "next_actions": torch.from_numpy(self.next_actions.copy()),
            "rng": generator_state(self.rng),
            "counters": self.counters,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q = check_table("Q table", state["q_table"], self.q)
        self.next_actions = state["next_actions"].numpy().copy()
        restore_generator_state(self.rng, state["rng"])
        self.count.load_state_dict(state["counters"])
