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

    With `share_next_obs` (images: each observation is large) a transition's next
    observation is not stored again where it is the same env's following observation,
    `num_envs` rows on; only the final observation of an episode that ended is written
    (into storage that is never touched, so never resident, elsewhere). The newest
    `num_envs` transitions, whose successors are not stored yet, are not sampled.
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
        share_next_obs: bool = False,
        num_envs: int = 1,
    ) -> None:
        self.capacity = capacity
        self.device = device
        self.share_next_obs = share_next_obs
        self.num_envs = num_envs
        self._arrays = {
            "obs": np.zeros((capacity, *obs_shape), dtype=obs_dtype),
            "actions": np.zeros((capacity, *action_shape), dtype=action_dtype),
            "rewards": np.zeros(capacity, dtype=np.float32),
            "next_obs": np.zeros((capacity, *obs_shape), dtype=obs_dtype),
            "terminated": np.zeros(capacity, dtype=np.float32),
        }
        self._ended = np.zeros(capacity, dtype=bool)  # the episode ended (shared storage)
        self._tensors = {name: torch.from_numpy(array) for name, array in self._arrays.items()}
        self._generator = torch.Generator().manual_seed(seed)
        self.position = 0
        self.size = 0

    def __len__(self) -> int:
        """Transitions ready to sample."""
        if self.share_next_obs:
            return max(self.size - self.num_envs, 0)
        return self.size

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        ended: np.ndarray | None = None,
    ) -> None:
        """Store a batch of transitions, one per environment. `ended` (terminated or
        truncated) says where a shared next observation must be stored after all."""
        count = len(obs)
        if self.share_next_obs:
            assert ended is not None and count == self.num_envs
            rows = np.arange(self.position, self.position + count) % self.capacity
            self._write_shared(rows, obs, actions, rewards, next_obs, terminated, ended)
        elif count == 1:  # the common single-env case: plain row writes, no index arrays
            self._write(self.position, obs[0], actions[0], rewards[0], next_obs[0], terminated[0])
        else:
            rows = np.arange(self.position, self.position + count) % self.capacity
            self._write(rows, obs, actions, rewards, next_obs, terminated)
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def _write(self, rows: int | np.ndarray, *fields: Any) -> None:
        for array, values in zip(self._arrays.values(), fields, strict=True):
            array[rows] = values

    def _write_shared(
        self,
        rows: np.ndarray,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        ended: np.ndarray,
    ) -> None:
        arrays = self._arrays
        arrays["obs"][rows] = obs
        arrays["actions"][rows] = actions
        arrays["rewards"][rows] = rewards
        arrays["terminated"][rows] = terminated
        self._ended[rows] = ended
        arrays["next_obs"][rows[ended]] = next_obs[ended]

    def sample(self, batch_size: int) -> ReplayBatch:
        tensors = self._tensors
        if self.share_next_obs:
            oldest = (self.position - self.size) % self.capacity
            drawn = torch.randint(len(self), (batch_size,), generator=self._generator)
            rows = (drawn + oldest) % self.capacity
            next_obs = tensors["obs"][(rows + self.num_envs) % self.capacity]
            ended = torch.from_numpy(self._ended)[rows]
            next_obs[ended] = tensors["next_obs"][rows[ended]]
        else:
            rows = torch.randint(self.size, (batch_size,), generator=self._generator)
            next_obs = tensors["next_obs"][rows]
        batch = ReplayBatch(
            obs=tensors["obs"][rows],
            actions=tensors["actions"][rows],
            rewards=tensors["rewards"][rows],
            next_obs=next_obs,
            terminated=tensors["terminated"][rows],
        )
        return self._on_device(batch)

    def _on_device(self, batch: ReplayBatch) -> ReplayBatch:
        if self.device.type == "cpu":
            return batch
        return ReplayBatch(*(field.to(self.device, non_blocking=True) for field in batch))

    def state_dict(self) -> dict[str, Any]:
        """The memory's rows as tensors to save now (as a module's state_dict, they may
        be the live ones). A part-filled memory's rows are copied: saving a view would
        write the whole preallocated storage. A full memory's are its own tensors: a copy
        would double it in RAM at every checkpoint (6.6 GiB for 1M Atari frames)."""
        storage = {
            name: tensor if self.size == self.capacity else tensor[: self.size].clone()
            for name, tensor in self._tensors.items()
            if not (name == "next_obs" and self.share_next_obs)
        }
        state: dict[str, Any] = {
            "position": self.position,
            "size": self.size,
            "generator": self._generator.get_state(),
            "storage": storage,
        }
        if self.share_next_obs:  # the next observations that are stored: ended rows only
            ended_rows = torch.from_numpy(np.flatnonzero(self._ended[: self.size]))
            storage["next_obs"] = self._tensors["next_obs"][ended_rows]  # indexing copies
            state["ended_rows"] = ended_rows
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = state["size"]
        if size > self.capacity:
            raise ValueError(
                f"checkpoint holds {size} transitions, buffer capacity is {self.capacity}"
            )
        if ("ended_rows" in state) != self.share_next_obs:
            raise ValueError("the checkpoint's replay memory stores next observations differently")
        for name, stored in state["storage"].items():
            target = self._tensors[name]
            if stored.shape[1:] != target.shape[1:] or stored.dtype != target.dtype:
                raise ValueError(
                    f"replay field {name!r}: checkpoint has {tuple(stored.shape[1:])} "
                    f"{stored.dtype}, the run has {tuple(target.shape[1:])} {target.dtype}"
                )
            if name == "next_obs" and self.share_next_obs:
                target[state["ended_rows"]] = stored
            else:
                target[:size] = stored
        if self.share_next_obs:
            self._ended[:] = False
            self._ended[state["ended_rows"].numpy()] = True
        self.position = state["position"]
        self.size = size
        self._generator.set_state(state["generator"])


class FrameStackReplay(ReplayBuffer):
    """A replay memory of frame stacks that stores each frame once.

    For observations that are the last `k` frames of an env (Gymnasium's
    `FrameStackObservation`, newest last, padded at a reset with the reset's frame, as
    env=atari makes them), a row holds only its observation's newest frame: a stack is
    that frame and the newest frames of the same env's `k - 1` rows before it, stopping
    at the episode's first (whose frame pads the rest). An (84, 84) frame per
    transition instead of two (4, 84, 84) stacks: 1M transitions in 7 GB, not 56 GB.
    The successor of a transition is the next row's stack; where the episode ended it
    is this stack moved on by the final frame, which is stored for those rows only.

    The oldest `k - 1` rows of each env are never sampled: their stacks reach back into
    rows that are gone (overwritten, or from before the memory was made).
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
        num_envs: int = 1,
    ) -> None:
        self.stack_size = obs_shape[0]
        frame_shape = tuple(obs_shape[1:])
        super().__init__(
            capacity,
            frame_shape,
            obs_dtype,
            action_shape,
            action_dtype,
            seed,
            device,
            share_next_obs=True,
            num_envs=num_envs,
        )

    def __len__(self) -> int:
        return max(self.size - self.stack_size * self.num_envs, 0)

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        ended: np.ndarray | None = None,
    ) -> None:
        super().add(obs[:, -1], actions, rewards, next_obs[:, -1], terminated, ended)

    def _stack_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """(batch, k) rows of the frames of each row's stack, oldest first."""
        ended = torch.from_numpy(self._ended)
        columns = [rows]
        current, in_episode = rows, torch.ones_like(rows, dtype=torch.bool)
        for _ in range(self.stack_size - 1):
            previous = (current - self.num_envs) % self.capacity
            in_episode &= ~ended[previous]  # a row after an ended one starts an episode
            current = torch.where(in_episode, previous, current)
            columns.append(current)
        return torch.stack(columns[::-1], dim=1)

    def sample(self, batch_size: int) -> ReplayBatch:
        tensors = self._tensors
        frames = tensors["obs"]
        first = (self.position - self.size + (self.stack_size - 1) * self.num_envs) % self.capacity
        drawn = torch.randint(len(self), (batch_size,), generator=self._generator)
        rows = (drawn + first) % self.capacity
        obs = frames[self._stack_rows(rows)]
        next_obs = frames[self._stack_rows((rows + self.num_envs) % self.capacity)]
        ended = torch.from_numpy(self._ended)[rows]
        # an ended episode's successor: its stack moved on by the stored final frame
        next_obs[ended] = torch.cat(
            [obs[ended, 1:], tensors["next_obs"][rows[ended]].unsqueeze(1)], dim=1
        )
        batch = ReplayBatch(
            obs=obs,
            actions=tensors["actions"][rows],
            rewards=tensors["rewards"][rows],
            next_obs=next_obs,
            terminated=tensors["terminated"][rows],
        )
        return self._on_device(batch)
