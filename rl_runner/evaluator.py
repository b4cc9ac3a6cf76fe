"""Fixed-seed evaluation of the greedy policy on separate environments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rl_runner.envs.batch import action_masks
from rl_runner.envs.factory import EnvFactory

# (observations, legal-action masks or None) -> actions
Policy = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


@dataclass(frozen=True)
class EvalResult:
    returns: np.ndarray
    lengths: np.ndarray

    @property
    def return_mean(self) -> float:
        return float(self.returns.mean())

    def metrics(self) -> dict[str, float]:
        return {
            "eval/return_mean": self.return_mean,
            "eval/return_std": float(self.returns.std()),
            "eval/return_min": float(self.returns.min()),
            "eval/return_max": float(self.returns.max()),
            "eval/length_mean": float(self.lengths.mean()),
        }


class Evaluator:
    """Runs `episodes` episodes at once, one env each, episode k reset with seed + k.

    The seeds are the same at every call, so evaluations compare across time and
    across runs. Running the episodes side by side batches the policy's forward pass.
    """

    def __init__(self, factory: EnvFactory, episodes: int, seed: int) -> None:
        self.envs = [factory() for _ in range(episodes)]
        self.seed = seed

    def run(self, policy: Policy) -> EvalResult:
        count = len(self.envs)
        first = [env.reset(seed=self.seed + k) for k, env in enumerate(self.envs)]
        obs = np.stack([np.asarray(obs) for obs, _ in first])
        masks = action_masks([info for _, info in first])
        returns = np.zeros(count)
        lengths = np.zeros(count, dtype=np.int64)
        running = np.ones(count, dtype=bool)
        while running.any():
            active = np.flatnonzero(running)
            actions = policy(obs[active], None if masks is None else masks[active])
            for env_index, action in zip(active, actions, strict=True):
                next_obs, reward, terminated, truncated, info = self.envs[env_index].step(action)
                obs[env_index] = next_obs
                if masks is not None:
                    masks[env_index] = info["action_mask"]
                returns[env_index] += reward
                lengths[env_index] += 1
                running[env_index] = not (terminated or truncated)
        return EvalResult(returns=returns, lengths=lengths)

    def close(self) -> None:
        for env in self.envs:
            env.close()
