"""Running normalisation of observations and rewards (SB3's VecNormalize, Gymnasium's
NormalizeObservation / NormalizeReward), as agent state: the statistics are saved in
the checkpoint and only training steps update them, so evaluation and rendering see
the policy's inputs exactly as training last left them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

EPSILON = 1e-8


class RunningMeanStd:
    """Mean and variance of every sample seen so far (Chan et al.'s parallel update),
    in float64; starts at mean 0, variance 1 with a tiny prior count, as SB3's."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 1e-4

    def update(self, batch: np.ndarray) -> None:
        batch_mean, batch_var, batch_count = batch.mean(axis=0), batch.var(axis=0), len(batch)
        delta = batch_mean - self.mean
        total = self.count + batch_count
        squares = self.var * self.count + batch_var * batch_count
        # asarray: arithmetic on 0-d arrays (the return statistics) gives numpy scalars
        self.var = np.asarray((squares + delta**2 * self.count * batch_count / total) / total)
        self.mean = np.asarray(self.mean + delta * batch_count / total)
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {
            "mean": torch.from_numpy(self.mean.copy()),
            "var": torch.from_numpy(self.var.copy()),
            "count": self.count,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mean = state["mean"].numpy()
        if mean.shape != self.mean.shape:
            raise ValueError(f"normaliser statistics of shape {mean.shape}, not {self.mean.shape}")
        self.mean, self.var, self.count = mean.copy(), state["var"].numpy().copy(), state["count"]


class ObservationNormaliser:
    """(obs - mean) / sqrt(var + eps), clipped to +-clip."""

    def __init__(self, shape: tuple[int, ...], clip: float) -> None:
        self.statistics = RunningMeanStd(shape)
        self.clip = clip

    def __call__(self, obs: np.ndarray, update: bool) -> np.ndarray:
        if update:
            self.statistics.update(np.asarray(obs, dtype=np.float64))
        scaled = (obs - self.statistics.mean) / np.sqrt(self.statistics.var + EPSILON)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)


class RewardNormaliser:
    """Rewards divided by the standard deviation of each env's discounted return so
    far (reset where an episode ends), clipped to +-clip."""

    def __init__(self, num_envs: int, gamma: float, clip: float) -> None:
        self.statistics = RunningMeanStd(())
        self.returns = np.zeros(num_envs, dtype=np.float64)
        self.gamma = gamma
        self.clip = clip

    def __call__(self, rewards: np.ndarray, ended: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + rewards
        self.statistics.update(self.returns)
        self.returns[ended] = 0.0
        scaled = rewards / np.sqrt(self.statistics.var + EPSILON)
        return np.clip(scaled, -self.clip, self.clip)

    def state_dict(self) -> dict[str, Any]:
        return {**self.statistics.state_dict(), "returns": torch.from_numpy(self.returns.copy())}

    def load_state_dict(self, state: dict[str, Any], with_returns: bool = True) -> None:
        """`with_returns=False`: the statistics only, each env's return starting at 0
        (the returns belong to the training envs' episodes in progress, as the rollout
        does: rl-render's one env, or a resume without the rollout, starts afresh)."""
        self.statistics.load_state_dict(state)
        if not with_returns:
            self.returns[:] = 0.0
            return
        returns = state["returns"].numpy()
        if returns.shape != self.returns.shape:
            raise ValueError(f"reward normaliser of {len(returns)} envs, not {len(self.returns)}")
        self.returns = returns.copy()
