"""Uniform experience replay in preallocated storage."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import torch


class ReplayBatch(NamedTuple):
    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor  # 1.0 where the next state is terminal (no bootstrap)


class ReplayBuffer:
    """A ring buffer of transitions.

    Storage is numpy (cheap per-step writes) with torch views over the same memory
    (cheap batched sampling). Only `terminated` is stored: a truncated episode still
    bootstraps from its final observation.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: npt.DTypeLike,
        action_shape: tuple[int, ...],
        action_dtype: npt.DTypeLike,
        seed: int,
        device: torch.device,
    ) -> None:
        self.capacity = capacity
        self.device = device
        self._arrays = {
            "obs": np.zeros((capacity, *obs_shape), dtype=obs_dtype),
            "actions": np.zeros((capacity, *action_shape), dtype=action_dtype),
            "rewards": np.zeros(capacity, dtype=np.float32),
            "next_obs": np.zeros((capacity, *obs_shape), dtype=obs_dtype),
            "terminated": np.zeros(capacity, dtype=np.float32),
        }
        self._tensors = {name: torch.from_numpy(array) for name, array in self._arrays.items()}
        self._generator = torch.Generator().manual_seed(seed)
        self.position = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
    ) -> None:
        """Store a batch of transitions, one per environment."""
        count = len(obs)
        if count == 1:  # the common single-env case: plain row writes, no index arrays
            self._write(self.position, obs[0], actions[0], rewards[0], next_obs[0], terminated[0])
        else:
            rows = np.arange(self.position, self.position + count) % self.capacity
            self._write(rows, obs, actions, rewards, next_obs, terminated)
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def _write(self, rows: int | np.ndarray, *fields: Any) -> None:
        for array, values in zip(self._arrays.values(), fields, strict=True):
            array[rows] = values

    def sample(self, batch_size: int) -> ReplayBatch:
        rows = torch.randint(self.size, (batch_size,), generator=self._generator)
        tensors = self._tensors
        batch = ReplayBatch(
            obs=tensors["obs"][rows],
            actions=tensors["actions"][rows],
            rewards=tensors["rewards"][rows],
            next_obs=tensors["next_obs"][rows],
            terminated=tensors["terminated"][rows],
        )
        if self.device.type == "cpu":
            return batch
        return ReplayBatch(*(field.to(self.device, non_blocking=True) for field in batch))

    def state_dict(self) -> dict[str, Any]:
        # Clone the filled rows: saving a view would write the whole preallocated storage.
        return {
            "position": self.position,
            "size": self.size,
            "generator": self._generator.get_state(),
            "storage": {
                name: tensor[: self.size].clone() for name, tensor in self._tensors.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = state["size"]
        if size > self.capacity:
            raise ValueError(
                f"checkpoint holds {size} transitions, buffer capacity is {self.capacity}"
            )
        for name, stored in state["storage"].items():
            target = self._tensors[name]
            if stored.shape[1:] != target.shape[1:] or stored.dtype != target.dtype:
                raise ValueError(
                    f"replay field {name!r}: checkpoint has {tuple(stored.shape[1:])} "
                    f"{stored.dtype}, the run has {tuple(target.shape[1:])} {target.dtype}"
                )
            target[:size] = stored
        self.position = state["position"]
        self.size = size
        self._generator.set_state(state["generator"])
