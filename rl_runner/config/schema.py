"""Typed schemas for every config group.

Plain dataclasses (no Hydra import): Hydra validates the YAML tree against them at
composition time (see `store.py`), and the rest of the package receives them as
ordinary typed objects. Value checks that types cannot express live in
`__post_init__` and raise `ConfigError` naming the field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING

from rl_runner.errors import ConfigError


def require(condition: bool, field_name: str, message: str) -> None:
    """Raise a ConfigError naming `field_name` unless `condition` holds."""
    if not condition:
        raise ConfigError(f"{field_name}: {message}")


class Optimizer(str, Enum):
    adam = "adam"
    adamw = "adamw"
    rmsprop = "rmsprop"
    sgd = "sgd"


class TDLoss(str, Enum):
    huber = "huber"
    mse = "mse"


class EpsilonSchedule(str, Enum):
    linear = "linear"
    exponential = "exponential"


class Activation(str, Enum):
    relu = "relu"
    tanh = "tanh"
    elu = "elu"
    gelu = "gelu"
    silu = "silu"


@dataclass
class EpsilonConfig:
    """Exploration rate as a function of environment steps."""

    schedule: EpsilonSchedule = EpsilonSchedule.linear
    start: float = 1.0
    end: float = 0.05
    # linear: steps to go from start to end; exponential: the e-folding time.
    decay_steps: int = 10_000

    def __post_init__(self) -> None:
        require(0.0 <= self.end <= 1.0, "algo.epsilon.end", "must be in [0, 1]")
        require(0.0 <= self.start <= 1.0, "algo.epsilon.start", "must be in [0, 1]")
        require(self.decay_steps > 0, "algo.epsilon.decay_steps", "must be > 0")


@dataclass
class DQNConfig:
    """Deep Q-Network (Mnih et al. 2015) with the usual knobs."""

    name: str = "dqn"
    lr: float = 1e-4
    # linear learning-rate decay from lr to lr_end over lr_decay_steps env steps,
    # then constant; null keeps lr constant
    lr_end: float = 0.0
    lr_decay_steps: int | None = None
    optimizer: Optimizer = Optimizer.adam
    amsgrad: bool = False  # Adam/AdamW only
    weight_decay: float = 0.0
    adam_eps: float = 1e-8
    gamma: float = 0.99
    # env steps of uniformly random actions before the Q-network picks actions
    random_steps: int = 0
    # env steps collected before the first gradient update
    learning_starts: int = 1000
    # gradient_steps updates are made every train_freq env steps
    train_freq: int = 1
    gradient_steps: int = 1
    # every target_update_every env steps: target <- tau*online + (1-tau)*target
    # (tau = 1 is a hard copy)
    target_update_every: int = 1
    target_tau: float = 1.0
    epsilon: EpsilonConfig = field(default_factory=EpsilonConfig)
    loss: TDLoss = TDLoss.huber
    double_dqn: bool = False
    # gradient clipping; null disables each
    max_grad_norm: float | None = 10.0
    grad_clip_value: float | None = None

    def __post_init__(self) -> None:
        require(0 < self.lr < math.inf, "algo.lr", f"must be finite and > 0, got {self.lr}")
        require(
            0 <= self.lr_end < math.inf, "algo.lr_end", f"must be finite, >= 0, got {self.lr_end}"
        )
        require(
            0 <= self.weight_decay < math.inf,
            "algo.weight_decay",
            f"must be finite and >= 0, got {self.weight_decay}",
        )
        require(
            0 < self.adam_eps < math.inf,
            "algo.adam_eps",
            f"must be finite and > 0, got {self.adam_eps}",
        )
        require(
            self.lr_decay_steps is None or self.lr_decay_steps > 0,
            "algo.lr_decay_steps",
            "must be > 0 or null",
        )
        require(0.0 <= self.gamma <= 1.0, "algo.gamma", f"must be in [0, 1], got {self.gamma}")
        require(self.train_freq >= 1, "algo.train_freq", "must be >= 1")
        require(self.gradient_steps >= 1, "algo.gradient_steps", "must be >= 1")
        require(self.target_update_every >= 1, "algo.target_update_every", "must be >= 1")
        require(0.0 < self.target_tau <= 1.0, "algo.target_tau", "must be in (0, 1]")
        require(self.learning_starts >= 0, "algo.learning_starts", "must be >= 0")
        require(self.random_steps >= 0, "algo.random_steps", "must be >= 0")
        for name in ("max_grad_norm", "grad_clip_value"):
            value = getattr(self, name)
            require(
                value is None or 0 < value < math.inf, f"algo.{name}", "must be finite, > 0 or null"
            )


@dataclass
class EnvConfig:
    """A Gymnasium environment by registered id."""

    name: str = "gym"  # short label used in run directory names
    id: str = "CartPole-v1"
    num_envs: int = 1  # parallel training envs stepped in lock-step
    max_episode_steps: int | None = None  # null keeps the registered time limit
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gymnasium.make

    def __post_init__(self) -> None:
        require(self.num_envs >= 1, "env.num_envs", "must be >= 1")
        require(
            self.max_episode_steps is None or self.max_episode_steps >= 1,
            "env.max_episode_steps",
            "must be >= 1 or null",
        )


@dataclass
class MLPConfig:
    """Fully connected network."""

    name: str = "mlp"
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    activation: Activation = Activation.relu

    def __post_init__(self) -> None:
        require(
            all(size > 0 for size in self.hidden_sizes),
            "network.hidden_sizes",
            f"sizes must be > 0, got {list(self.hidden_sizes)}",
        )


@dataclass
class ReplayConfig:
    """Uniform experience replay."""

    name: str = "replay"
    capacity: int = 100_000
    batch_size: int = 64

    def __post_init__(self) -> None:
        require(self.capacity >= 1, "buffer.capacity", "must be >= 1")
        require(self.batch_size >= 1, "buffer.batch_size", "must be >= 1")


@dataclass
class TrainerConfig:
    total_steps: int = 50_000  # environment steps (summed over parallel envs)
    log_every: int = 1_000  # env steps between loss / speed log rows
    # end the run at the first evaluation whose mean return reaches this
    # (e.g. 475, CartPole-v1's solved threshold); null trains for total_steps
    stop_at_eval_return: float | None = None

    def __post_init__(self) -> None:
        require(self.total_steps >= 1, "trainer.total_steps", "must be >= 1")
        require(self.log_every >= 1, "trainer.log_every", "must be >= 1")
        require(
            self.stop_at_eval_return is None or not math.isnan(self.stop_at_eval_return),
            "trainer.stop_at_eval_return",
            "must be a number or null",
        )


@dataclass
class EvalConfig:
    every: int = 5_000  # env steps between evaluations (and one at the end)
    episodes: int = 10  # greedy episodes per evaluation
    seed: int | None = None  # episode k is reset with seed + k; null means run seed + 100

    def __post_init__(self) -> None:
        require(self.every >= 1, "eval.every", "must be >= 1")
        require(self.episodes >= 1, "eval.episodes", "must be >= 1")
        require(self.seed is None or self.seed >= 0, "eval.seed", f"must be >= 0, got {self.seed}")


@dataclass
class CheckpointConfig:
    every: int = 10_000  # env steps between checkpoints (and one at the end)
    keep_last: int = 2  # periodic checkpoints kept; best.pt is kept besides

    def __post_init__(self) -> None:
        require(self.every >= 1, "checkpoint.every", "must be >= 1")
        require(self.keep_last >= 1, "checkpoint.keep_last", "must be >= 1")


@dataclass
class RunConfig:
    """The root of a run: one option from each group plus run-wide settings."""

    algo: Any = MISSING
    env: Any = MISSING
    network: Any = MISSING
    buffer: Any = MISSING
    seed: int = 0
    device: str = "auto"  # auto (CUDA when present, else CPU), cpu, cuda, cuda:N
    threads: int = 1  # torch intra-op threads; small networks run fastest on one
    resume: str | None = None  # a run directory to continue
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def __post_init__(self) -> None:
        require(self.threads >= 1, "threads", "must be >= 1")
        require(
            re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None,
            "device",
            f"must be auto, cpu, cuda or cuda:N, got {self.device!r}",
        )
        require(0 <= self.seed < 2**32, "seed", f"must be in [0, 2**32), got {self.seed}")


# Schema of each group option, keyed by the option's `name` field. Every env option
# shares EnvConfig, so env names are free labels.
OPTION_SCHEMAS: dict[str, dict[str, type]] = {
    "algo": {"dqn": DQNConfig},
    "network": {"mlp": MLPConfig},
    "buffer": {"replay": ReplayConfig},
}


def schema_for(group: str, option_name: str) -> type:
    """The dataclass that validates option `option_name` of `group`."""
    if group == "env":
        return EnvConfig
    known = OPTION_SCHEMAS[group]
    require(
        option_name in known,
        f"{group}.name",
        f"unknown {group} {option_name!r} (known: {', '.join(sorted(known))})",
    )
    return known[option_name]
