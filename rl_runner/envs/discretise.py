"""A continuous observation cut into bins, one integer state per cell of the grid, for
tabular agents (seed 003's Q-learning on CartPole: 6 bins per dimension, 6^4 states)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

# Seed 003's CartPole bounds: position, velocity, angle, angular velocity.
CARTPOLE_LOW = (-2.4, -3.0, -0.418, -2.0)
CARTPOLE_HIGH = (2.4, 3.0, 0.418, 2.0)


class DiscretiseObservation(gym.ObservationWrapper):
    """Dimension i is cut into bins[i] equal bins between low[i] and high[i] (values
    beyond them fall in the end bins); the state is sum_i bin_i * prod(bins[:i])."""

    def __init__(
        self, env: gym.Env, bins: Sequence[int], low: Sequence[float], high: Sequence[float]
    ) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"needs a flat Box observation space, got {space}")
        dimensions = space.shape[0]
        for name, values in (("bins", bins), ("low", low), ("high", high)):
            if len(values) != dimensions:
                raise ValueError(
                    f"{name} needs one value per observation dimension ({dimensions}), "
                    f"got {list(values)}"
                )
        if any(count < 1 for count in bins):
            raise ValueError(f"bins must be >= 1, got {list(bins)}")
        low, high = _numbers("low", low), _numbers("high", high)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError(f"low and high must be finite, got {list(low)} and {list(high)}")
        if any(not lo < hi for lo, hi in zip(low, high, strict=True)):
            raise ValueError(f"each low must be below its high, got {list(low)} and {list(high)}")
        # inner edges only: np.digitize then gives 0 .. bins-1
        self.edges = [
            np.linspace(lo, hi, count + 1)[1:-1]
            for lo, hi, count in zip(low, high, bins, strict=True)
        ]
        self.place_values = np.cumprod([1, *bins[:-1]])
        self.observation_space = gym.spaces.Discrete(int(np.prod(bins)))

    def observation(self, observation: np.ndarray) -> int:
        indices = [
            np.digitize(value, edges) for value, edges in zip(observation, self.edges, strict=True)
        ]
        return int(np.dot(indices, self.place_values))


def _numbers(name: str, values: Sequence[object]) -> list[float]:
    try:
        return [float(value) for value in values]  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numbers, got {list(values)}") from error


def make_discretised(
    env_id: str = "CartPole-v1",
    bins: Sequence[int] = (6, 6, 6, 6),
    low: Sequence[float] = CARTPOLE_LOW,
    high: Sequence[float] = CARTPOLE_HIGH,
    **kwargs: Any,
) -> gym.Env:
    """`env_id` (keeping its time limit) with discretised observations; other kwargs go
    to its constructor."""
    return DiscretiseObservation(
        gym.make(env_id, disable_env_checker=True, **kwargs), bins, low, high
    )
