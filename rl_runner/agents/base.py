"""What the trainer needs from an agent.

Agents never log, print, evaluate or touch files: they act, store what they see,
update themselves on their own schedule, and return metrics. Every array argument
is batched over the training environments (leading dimension = num_envs).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch

Metrics = dict[str, "torch.Tensor | float"]
NO_EXTRAS: Mapping[str, np.ndarray] = MappingProxyType({})


class Decision(NamedTuple):
    """What `act` chose: the actions the envs are stepped with and, in `extras`, what
    the agent wants back with the step (PPO: the log-probabilities, the values, the
    unclipped Gaussian samples), which the trainer hands on in `Transition.extras`."""

    actions: np.ndarray
    extras: Mapping[str, np.ndarray] = NO_EXTRAS


class Transition(NamedTuple):
    """One step of every training env. `next_obs` is the true successor (the final
    observation where an episode ended), `terminated` stops bootstrapping and
    `truncated` does not; `masks` and `next_masks` are the legal actions at `obs` and
    at `next_obs` where the env reports them; `extras` is what `act` returned beside
    the actions."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    masks: np.ndarray | None = None
    next_masks: np.ndarray | None = None
    extras: Mapping[str, np.ndarray] = NO_EXTRAS


class Agent(Protocol):
    def act(self, obs: np.ndarray, explore: bool, masks: np.ndarray | None = None) -> Decision:
        """Actions for a batch of observations; `explore=False` is the evaluation policy.
        `masks` (batch, actions) marks the legal actions where the env reports them."""
        ...

    def observe(self, step: Transition) -> None:
        """Record one step of every env (acted on with the training policy)."""
        ...

    def update(self) -> Metrics:
        """Learn if the agent's schedule says so; empty when nothing was updated.
        Values may be 0-d tensors: the trainer reads them only when it logs."""
        ...

    @property
    def converged(self) -> bool:
        """The agent's own stopping rule holds (tabular policy gradient's policy stopped
        changing): the trainer ends the run and records why."""
        ...

    def diagnostics(self) -> dict[str, float]:
        """Schedule values worth logging (exploration rate, ...)."""
        ...

    @property
    def counters(self) -> dict[str, int]:
        """Monotone counters for the summary (env_steps, updates, ...)."""
        ...

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        """Everything needed to continue bit-for-bit: networks, optimisers,
        RNG, counters and (unless excluded) the replay memory."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
