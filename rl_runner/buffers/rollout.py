"""On-policy rollout storage: n_steps steps of every env, preallocated once, and GAE.

Each step stores what the acting policy saw and chose (observation, action, its
log-probability, the value estimate) and what followed (reward, termination), plus
`next_values`: the value of the state after the step where the rollout itself does
not hold it — the true final observation of a truncated episode (a time limit is not
a terminal state, so its advantage bootstraps from there) and of the rollout's last
step. A terminated episode's next value is 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def generalised_advantages(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> np.ndarray:
    """GAE(lambda) over (steps, envs) arrays, float64.

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t), where V(s_{t+1})
    is values[t + 1] while the episode goes on and next_values[t] where the step ended
    it by truncation or is the rollout's last; A_t = delta_t + gamma * lambda * A_{t+1}
    within an episode (an episode's end, either kind, stops the sum).
    """
    steps = len(rewards)
    ended = terminated | truncated
    following = np.concatenate([values[1:], np.zeros_like(values[:1])])
    # the value after each step: the next stored one, or the bootstrap where not stored
    bootstrap = np.where(truncated, next_values, following)
    bootstrap[-1] = next_values[-1]
    bootstrap = np.where(terminated, 0.0, bootstrap)
    deltas = rewards + gamma * bootstrap - values
    advantages = np.zeros_like(deltas)
    running = np.zeros_like(deltas[0])
    for t in range(steps - 1, -1, -1):
        running = deltas[t] + gamma * gae_lambda * np.where(ended[t], 0.0, running)
        advantages[t] = running
    return advantages


class Rollout:
    """`n_steps` x `num_envs` transitions of the current policy."""

    def __init__(
        self,
        n_steps: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        action_shape: tuple[int, ...],
        action_dtype: torch.dtype,
        obs_dtype: torch.dtype = torch.float32,  # images: their bytes
    ) -> None:
        self.n_steps = n_steps
        self.num_envs = num_envs
        shape = (n_steps, num_envs)
        self.obs = torch.zeros((*shape, *obs_shape), dtype=obs_dtype)
        self.actions = torch.zeros((*shape, *action_shape), dtype=action_dtype)
        self.log_probs = torch.zeros(shape, dtype=torch.float32)
        self.values = np.zeros(shape, dtype=np.float64)
        self.next_values = np.zeros(shape, dtype=np.float64)
        self.rewards = np.zeros(shape, dtype=np.float64)
        self.terminated = np.zeros(shape, dtype=bool)
        self.truncated = np.zeros(shape, dtype=bool)
        self.size = 0  # steps stored in this rollout

    @property
    def full(self) -> bool:
        return self.size == self.n_steps

    @property
    def at_last_step(self) -> bool:
        """The next step added is the rollout's last."""
        return self.size == self.n_steps - 1

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        log_probs: np.ndarray,
        values: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_values: np.ndarray,
    ) -> None:
        t = self.size
        self.obs[t] = torch.from_numpy(np.asarray(obs))  # cast to the rollout's dtype
        self.actions[t] = torch.from_numpy(np.asarray(actions))
        self.log_probs[t] = torch.from_numpy(np.asarray(log_probs, dtype=np.float32))
        self.values[t] = values
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.truncated[t] = truncated
        self.next_values[t] = next_values
        self.size += 1

    def advantages(self, gamma: float, gae_lambda: float) -> tuple[np.ndarray, np.ndarray]:
        """(advantages, returns = advantages + values), both (n_steps, num_envs)."""
        advantages = generalised_advantages(
            self.rewards,
            self.values,
            self.next_values,
            self.terminated,
            self.truncated,
            gamma,
            gae_lambda,
        )
        return advantages, advantages + self.values

    def clear(self) -> None:
        self.size = 0

    # -- state ------------------------------------------------------------------
    _ARRAYS = ("values", "next_values", "rewards", "terminated", "truncated")

    def state_dict(self) -> dict[str, Any]:
        """The steps stored so far (a checkpoint mid-rollout continues it exactly)."""
        size = self.size
        state: dict[str, Any] = {
            "size": size,
            "obs": self.obs[:size].clone(),
            "actions": self.actions[:size].clone(),
            "log_probs": self.log_probs[:size].clone(),
        }
        for name in self._ARRAYS:
            state[name] = torch.from_numpy(getattr(self, name)[:size].copy())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = state["size"]
        envs = state["obs"].shape[1]
        if size > self.n_steps or envs != self.num_envs:
            raise ValueError(
                f"the checkpoint's rollout ({size} steps of {envs} envs) does not fit this "
                f"run's {self.n_steps} steps of {self.num_envs} envs"
            )
        self.clear()
        for name in ("obs", "actions", "log_probs"):
            getattr(self, name)[:size] = state[name]
        for name in self._ARRAYS:
            getattr(self, name)[:size] = state[name].numpy()
        self.size = size
