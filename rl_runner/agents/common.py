"""Small pieces shared by the agents."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from rl_runner.agents.base import Metrics
from rl_runner.buffers.replay import FrameStackReplay, ReplayBuffer
from rl_runner.config.algorithms import EpsilonConfig, EpsilonSchedule, ScheduleUnit
from rl_runner.config.schema import CNNConfig, MLPConfig, ReplayConfig
from rl_runner.config.settings import Settings
from rl_runner.envs.spaces import frame_stacks
from rl_runner.errors import ConfigError
from rl_runner.hardware import cpu_flags
from rl_runner.networks.flat import FlatParameters


def make_optimizer(
    name: str,
    parameters: Iterable[nn.Parameter],
    lr: float,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    eps: float = 1e-8,
) -> torch.optim.Optimizer:
    """An optimiser by name, using the fused (one-kernel) CPU/GPU update where torch has it."""
    params = list(parameters)
    if name == "adam":
        return torch.optim.Adam(
            params, lr=lr, weight_decay=weight_decay, amsgrad=amsgrad, eps=eps, fused=True
        )
    if name == "adamw":
        return torch.optim.AdamW(
            params, lr=lr, weight_decay=weight_decay, amsgrad=amsgrad, eps=eps, fused=True
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay, eps=eps, foreach=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, foreach=True)
    raise ValueError(f"unknown optimizer {name!r}")


def reapply_hyperparameters(
    optimizer: torch.optim.Optimizer, lr: float | None, weight_decay: float, eps: float
) -> None:
    """`Optimizer.load_state_dict` brings back the saved hyperparameters; a resumed run's
    config may have changed them. `lr=None` leaves a scheduled learning rate, which the
    agent sets before each update, as saved."""
    for group in optimizer.param_groups:
        if lr is not None:
            group["lr"] = lr
        group["weight_decay"] = weight_decay
        if "eps" in group:
            group["eps"] = eps


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """From start to end over `duration` steps, then end."""
    return start + min(step / duration, 1.0) * (end - start)


def epsilon_at(schedule: EpsilonConfig, env_steps: int, episodes: int) -> float:
    """The exploration rate after `env_steps` steps and `episodes` finished episodes."""
    t = episodes if schedule.unit is ScheduleUnit.episodes else env_steps
    kind = schedule.schedule
    if kind is EpsilonSchedule.linear:
        return linear_schedule(schedule.start, schedule.end, schedule.decay_steps, t)
    if kind is EpsilonSchedule.exponential:
        return schedule.end + (schedule.start - schedule.end) * math.exp(-t / schedule.decay_steps)
    if kind is EpsilonSchedule.geometric:
        return max(schedule.end, schedule.start * schedule.factor**t)
    return max(schedule.end, schedule.start / (t + 1))


def check_no_action_join(network: MLPConfig) -> None:
    """A network over observations alone has no layer for an action to join."""
    if network.critic_action_layer != 0:
        raise ConfigError("network.critic_action_layer: applies to actor-critic algorithms only")


def replay_memory(
    settings: Settings,
    num_envs: int,
    obs_shape: tuple[int, ...],
    obs_dtype: npt.DTypeLike,
    action_shape: tuple[int, ...],
    action_dtype: npt.DTypeLike,
    device: torch.device,
) -> ReplayBuffer:
    """The replay memory of a run. An image's successor is the next step's image:
    stored once, and where images are frame stacks (env=atari), each frame once."""
    buffer: ReplayConfig = settings.buffer
    layout = (obs_shape, obs_dtype, action_shape, action_dtype)
    if frame_stacks(settings):
        return FrameStackReplay(buffer.capacity, *layout, settings.run.seed, device, num_envs)
    images = isinstance(settings.network, CNNConfig)
    return ReplayBuffer(
        buffer.capacity,
        *layout,
        settings.run.seed,
        device,
        share_next_obs=images,
        num_envs=num_envs,
    )


def finished_episodes(terminated: np.ndarray, truncated: np.ndarray) -> int:
    return int(np.count_nonzero(terminated | truncated))


@dataclass
class Counters:
    """Env steps, finished episodes and updates, for an agent that counts them itself."""

    env_steps: int = 0
    episodes: int = 0
    updates: int = 0

    def observed(self, terminated: np.ndarray, truncated: np.ndarray) -> None:
        self.env_steps += len(terminated)
        self.episodes += finished_episodes(terminated, truncated)

    def state_dict(self) -> dict[str, int]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.env_steps, self.episodes, self.updates = (
            state["env_steps"],
            state["episodes"],
            state["updates"],
        )


def mean_metrics(burst: list[Metrics]) -> Metrics:
    """Each quantity's mean over a burst of gradient steps (a quantity some steps do
    not report, like a delayed actor's loss, over the steps that do)."""
    values: dict[str, list[torch.Tensor | float]] = {}
    for metrics in burst:
        for tag, value in metrics.items():
            values.setdefault(tag, []).append(value)
    return {
        tag: torch.stack([torch.as_tensor(v) for v in items]).mean() if len(items) > 1 else items[0]
        for tag, items in values.items()
    }


def optimise(
    loss: torch.Tensor,
    parameters: FlatParameters,
    optimizer: torch.optim.Optimizer,
    max_grad_norm: float | None = None,
    clip_value: float | None = None,
) -> None:
    """One gradient step on flattened parameters (one kernel per operation), the
    gradient first clipped element-wise to ±clip_value, then to norm max_grad_norm."""
    parameters.zero_grad()
    loss.backward()
    if clip_value is not None:
        parameters.clip_grad_value_(clip_value)
    if max_grad_norm is not None:
        parameters.clip_grad_norm_(max_grad_norm)
    optimizer.step()


class UpdateSchedule:
    """When an off-policy agent acts at random and when it learns, in env steps:
    random actions for the first `random_steps`; from `learning_starts` on (and once
    the memory holds a batch), `gradient_steps` updates for every `train_freq` env
    steps. The ratio of gradient steps to env steps is the same whatever num_envs is:
    one step of 4 envs with train_freq=1 is 4 env steps, so 4 * gradient_steps updates
    (SB3 counts per vector step instead; Tianshou's update_per_step is this rule)."""

    def __init__(
        self, random_steps: int, learning_starts: int, train_freq: int, gradient_steps: int
    ) -> None:
        self.random_steps = random_steps
        self.learning_starts = learning_starts
        self.train_freq = train_freq
        self.gradient_steps = gradient_steps
        self.env_steps = 0
        self.steps_since_train = 0

    @property
    def acting_randomly(self) -> bool:
        return self.env_steps < self.random_steps

    def observed(self, count: int) -> None:
        self.env_steps += count
        self.steps_since_train += count

    def updates_due(self, stored: int, batch_size: int) -> int:
        """Gradient steps to make now: gradient_steps for each train_freq env steps since
        the last call that had some (the remainder carries over); call once per step."""
        periods = self.steps_since_train // self.train_freq
        if periods == 0:
            return 0
        self.steps_since_train -= periods * self.train_freq
        if self.env_steps < self.learning_starts or stored < batch_size:
            return 0
        return periods * self.gradient_steps

    def state_dict(self) -> dict[str, int]:
        return {"env_steps": self.env_steps, "steps_since_train": self.steps_since_train}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.env_steps = state["env_steps"]
        self.steps_since_train = state["steps_since_train"]


def resolve_matmul_precision(setting: str, device: torch.device) -> str:
    """`auto`: medium (oneDNN's kernels, allowed to compute float32 products in
    bfloat16: it does with AMX; on AMD Zen 5's AVX-512 BF16 they measured exact float32,
    and faster than MKL's) where the CPU has bfloat16 instructions, else highest (exact
    float32). Explicit values pass through."""
    if setting != "auto":
        return setting
    if device.type == "cuda":
        return "high"  # TensorFloat-32 products
    return "medium" if cpu_has_native_bfloat16() else "highest"


def cpu_has_native_bfloat16() -> bool:
    """AMX or AVX-512 BF16: without them torch emulates bfloat16, slower than float32."""
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})


@contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """torch's float32 matrix-product precision while the block runs (it is global)."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)
