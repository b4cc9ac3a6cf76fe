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


def require_positive(value: float, field_name: str) -> None:
    require(0 < value < math.inf, field_name, f"must be finite and > 0, got {value}")


def require_non_negative(value: float, field_name: str) -> None:
    require(0 <= value < math.inf, field_name, f"must be finite and >= 0, got {value}")


class Optimizer(str, Enum):
    adam = "adam"
    adamw = "adamw"
    rmsprop = "rmsprop"
    sgd = "sgd"


class Activation(str, Enum):
    relu = "relu"
    tanh = "tanh"
    elu = "elu"
    gelu = "gelu"
    silu = "silu"


# `module:attribute`, as Gymnasium's own entry points are written
ENTRY_POINT = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def entry_point_id(entry_point: str) -> str:
    """The id rl-runner registers an `env.entry_point` under: `mymodule:MyEnv` ->
    `mymodule/MyEnv`, `mypkg.envs:MyEnv` -> `mypkg-envs/MyEnv` (Gymnasium's
    namespace/name form, whose namespace has no dots; `gym.make` would read a colon as
    a module to import)."""
    module, _, name = entry_point.partition(":")
    return f"{module.replace('.', '-')}/{name}"


@dataclass
class AtariConfig:
    """The Arcade Learning Environment's standard preprocessing (env=atari;
    rl_runner/envs/atari.py): Mnih et al. 2015's, with Machado et al. 2018's sticky
    actions. Life loss and reward clipping apply to training envs only: evaluations and
    `train/episode_return` are the game's own score over whole games."""

    noop_max: int = 30  # up to this many no-op actions at the start of each game
    frame_skip: int = 4  # frames each action is repeated on; the last two are max-pooled
    screen_size: int = 84  # the grayscale observation's side, in pixels
    frame_stack: int = 4  # the observation: the last this many frames
    # the chance that the emulator repeats the previous action instead (sticky actions):
    # 0.25 is the v5 ids' own; the NoFrameskip-v4 ids' is 0
    repeat_action_probability: float = 0.25
    full_action_space: bool = False  # all 18 actions, not the game's minimal set
    fire_on_reset: bool = True  # press FIRE to start each life, in games that have it
    terminal_on_life_loss: bool = True  # training: a life lost ends the learning episode
    clip_rewards: bool = True  # training: learning sees each reward's sign

    def __post_init__(self) -> None:
        require(self.noop_max >= 0, "env.atari.noop_max", f"must be >= 0, got {self.noop_max}")
        require(
            self.frame_skip >= 1, "env.atari.frame_skip", f"must be >= 1, got {self.frame_skip}"
        )
        require(
            self.screen_size >= 8,
            "env.atari.screen_size",
            f"must be >= 8 pixels, got {self.screen_size}",
        )
        require(
            self.frame_stack >= 1,
            "env.atari.frame_stack",
            f"must be >= 1, got {self.frame_stack}",
        )
        require(
            0.0 <= self.repeat_action_probability < 1.0,
            "env.atari.repeat_action_probability",
            f"must be in [0, 1), got {self.repeat_action_probability}",
        )


# emulator settings env.atari gives (env.kwargs must not give them too)
ATARI_EMULATOR_KWARGS = ("frameskip", "repeat_action_probability", "full_action_space")


@dataclass
class EnvConfig:
    """A Gymnasium environment by registered id, or by the class or function that makes
    it (`entry_point`)."""

    name: str = "gym"  # short label used in run directory names
    # a registered id; with an entry_point, the id it is registered under (env=gym
    # derives it: entry_point_id), so the two never name different envs
    id: str = "CartPole-v1"
    # `module:attribute` of a gymnasium.Env subclass or a function returning an env (the
    # module on PYTHONPATH); rl-runner registers it with Gymnasium in every process that
    # makes the env (workers, rl-render): the alternative to registering it yourself
    entry_point: str | None = None
    num_envs: int = 1  # parallel training envs stepped in lock-step
    # sync: in this process; async: one worker process per env (rl_runner/envs/workers.py)
    vectorization_mode: str = "sync"
    max_episode_steps: int | None = None  # null keeps the registered time limit
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gymnasium.make
    # an ALE game's preprocessing (env=atari); null: the env as Gymnasium makes it
    atari: AtariConfig | None = None

    def __post_init__(self) -> None:
        require(self.num_envs >= 1, "env.num_envs", "must be >= 1")
        require(
            self.name != "atari" or self.atari is not None,
            "env.atari",
            "env=atari needs its preprocessing settings (env=gym makes a game without them)",
        )
        if self.atari is not None:
            self._check_atari()
        if self.entry_point is not None:
            self._check_entry_point(self.entry_point)
        require(
            self.vectorization_mode in ("sync", "async"),
            "env.vectorization_mode",
            f"must be sync or async, got {self.vectorization_mode!r}",
        )
        require(
            "render_mode" not in self.kwargs,
            "env.kwargs.render_mode",
            "training and evaluation envs do not render (a window would stop a headless run)",
        )
        require(
            self.max_episode_steps is None or self.max_episode_steps >= 1,
            "env.max_episode_steps",
            "must be >= 1 or null",
        )

    def _check_atari(self) -> None:
        require(
            self.entry_point is None,
            "env.entry_point",
            "env=atari makes ALE games by id (env.id=ALE/Breakout-v5), not by entry point",
        )
        given = [key for key in ATARI_EMULATOR_KWARGS if key in self.kwargs]
        require(
            not given,
            f"env.kwargs.{given[0] if given else ''}",
            "env=atari sets it: frame skipping is env.atari.frame_skip, sticky actions "
            "env.atari.repeat_action_probability, the action set env.atari.full_action_space",
        )

    def _check_entry_point(self, entry_point: str) -> None:
        require(
            ENTRY_POINT.fullmatch(entry_point) is not None,
            "env.entry_point",
            f"must be module:attribute (e.g. mymodule:MyEnv), got {entry_point!r}",
        )
        require(
            self.id == entry_point_id(entry_point),
            "env.entry_point",
            f"names the env instead of env.id, which is {self.id!r} here: give one of them "
            f"(with env=gym; the entry point is registered as {entry_point_id(entry_point)!r})",
        )


@dataclass
class MLPConfig:
    """Fully connected networks: the Q-network, or the actor and each critic."""

    name: str = "mlp"
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    activation: Activation = Activation.relu
    # Actor-critic only: the hidden layer whose input the action joins. 0 feeds
    # (observation, action) to the first layer; 1 is the DDPG paper's critic, where the
    # action joins the first hidden layer's output.
    critic_action_layer: int = 0

    def __post_init__(self) -> None:
        require(
            all(size > 0 for size in self.hidden_sizes),
            "network.hidden_sizes",
            f"sizes must be > 0, got {list(self.hidden_sizes)}",
        )
        require(
            self.critic_action_layer == 0 or 0 < self.critic_action_layer < len(self.hidden_sizes),
            "network.critic_action_layer",
            f"must be in [0, {max(len(self.hidden_sizes) - 1, 0)}] for "
            f"{len(self.hidden_sizes)} hidden layers, got {self.critic_action_layer}",
        )


@dataclass
class CNNConfig:
    """A convolutional network for image observations: convolutions, fully connected
    layers, then the head (seed 004's layout by default; network=nature_cnn is the
    DQN paper's)."""

    name: str = "cnn"
    channels: list[int] = field(default_factory=lambda: [16, 32, 32])  # one conv layer each
    kernel_size: int = 5  # every layer's, unless kernel_sizes gives one per layer
    stride: int = 2  # every layer's, unless strides gives one per layer
    kernel_sizes: list[int] | None = None  # per layer, as many as channels
    strides: list[int] | None = None  # per layer, as many as channels
    hidden_sizes: list[int] = field(default_factory=list)  # fully connected, before the head
    batch_norm: bool = True  # BatchNorm after each convolution
    activation: Activation = Activation.relu

    def __post_init__(self) -> None:
        require(
            len(self.channels) > 0 and all(c > 0 for c in self.channels),
            "network.channels",
            f"needs one or more sizes > 0, got {list(self.channels)}",
        )
        require(self.kernel_size >= 1, "network.kernel_size", "must be >= 1")
        require(self.stride >= 1, "network.stride", "must be >= 1")
        for key in ("kernel_sizes", "strides"):
            per_layer = getattr(self, key)
            require(
                per_layer is None or (len(per_layer) == len(self.channels) and min(per_layer) >= 1),
                f"network.{key}",
                f"needs one size >= 1 per layer of network.channels ({len(self.channels)}), "
                f"got {per_layer if per_layer is None else list(per_layer)}",
            )
        require(
            all(size > 0 for size in self.hidden_sizes),
            "network.hidden_sizes",
            f"sizes must be > 0, got {list(self.hidden_sizes)}",
        )

    def layers(self) -> list[tuple[int, int, int]]:
        """(channels, kernel size, stride) of each convolution."""
        kernels = self.kernel_sizes or [self.kernel_size] * len(self.channels)
        strides = self.strides or [self.stride] * len(self.channels)
        return list(zip(self.channels, kernels, strides, strict=True))

    def output_size(self, size: int) -> int:
        """An image side's length after the convolutions (no padding)."""
        for _, kernel, stride in self.layers():
            size = (size - kernel) // stride + 1
        return size

    def described(self) -> str:
        """The convolutions, as an error message names them: "8x8/4, 4x4/2, 3x3/1"."""
        return ", ".join(f"{kernel}x{kernel}/{stride}" for _, kernel, stride in self.layers())


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
class VideoConfig:
    """Videos of the first episode of some evaluations (rl_runner/video.py)."""

    every: int = 0  # the first episode of every `every`-th evaluation, and of the last; 0: none
    fps: int = 30  # frames per second of the GIF (browsers play faster than 50 at 10)
    size: int = 256  # frames are shrunk to this many pixels on their longer side
    # frames kept; a longer episode keeps every n-th (memory, file size), played at the
    # same speed: 501 holds a 500-step episode whole
    max_frames: int = 501

    def __post_init__(self) -> None:
        require(self.every >= 0, "eval.video.every", f"must be >= 0, got {self.every}")
        require(1 <= self.fps <= 50, "eval.video.fps", f"must be in [1, 50], got {self.fps}")
        require(
            16 <= self.size <= 2048, "eval.video.size", f"must be in [16, 2048], got {self.size}"
        )
        require(
            self.max_frames >= 2, "eval.video.max_frames", f"must be >= 2, got {self.max_frames}"
        )


@dataclass
class EvalConfig:
    every: int = 5_000  # env steps between evaluations (and one at the end)
    episodes: int = 10  # greedy episodes per evaluation
    seed: int | None = None  # episode k is reset with seed + k; null means run seed + 100
    # evaluation episodes end here at the latest; null: the env's time limit, or
    # UNLIMITED_ENV_EVAL_STEPS for an env that has none (a greedy policy can loop forever)
    max_episode_steps: int | None = None
    video: VideoConfig = field(default_factory=VideoConfig)

    def __post_init__(self) -> None:
        require(self.every >= 1, "eval.every", "must be >= 1")
        require(self.episodes >= 1, "eval.episodes", "must be >= 1")
        require(
            self.max_episode_steps is None or self.max_episode_steps >= 1,
            "eval.max_episode_steps",
            f"must be >= 1 or null, got {self.max_episode_steps}",
        )
        require(self.seed is None or self.seed >= 0, "eval.seed", f"must be >= 0, got {self.seed}")


@dataclass
class CheckpointConfig:
    every: int = 10_000  # env steps between checkpoints (and one at the end)
    keep_last: int = 2  # periodic checkpoints kept; best.pt is kept besides
    # the replay memory in the newest periodic checkpoint (older ones and best.pt never
    # hold it); false saves disk, and a resume then refills an empty memory (not exact)
    replay: bool = True
    # false trains an env whose state the snapshot cannot capture (a random.Random, a
    # plain object): its checkpoints hold what they can, and a resume says it is not exact
    exact: bool = True

    def __post_init__(self) -> None:
        require(self.every >= 1, "checkpoint.every", "must be >= 1")
        require(self.keep_last >= 1, "checkpoint.keep_last", "must be >= 1")


class Objective(str, Enum):
    final = "final"  # the last evaluation's mean return
    best = "best"  # the best evaluation's mean return


@dataclass
class SweepConfig:
    # what a run returns to Hydra's sweepers (Optuna maximises it), and what the sweep's
    # index (sweep.jsonl) lists as each job's objective
    objective: Objective = Objective.final


TRACKERS = ("none", "mlflow", "wandb")
WANDB_MODES = ("online", "offline")


@dataclass
class TrackingConfig:
    """Where the run is tracked besides its own files (rl_runner/tracking/)."""

    backend: str = "none"  # none, mlflow or wandb (tracking=mlflow / tracking=wandb set it)
    # The tracker's address. MLflow: its tracking URI (a server's http://host:5000, a
    # database; null: a SQLite store in the working directory's outputs/mlflow.db).
    # W&B: its server (null: W&B's own, or WANDB_BASE_URL).
    uri: str | None = None
    experiment: str = "rl-runner"  # MLflow: the experiment the runs go to
    project: str = "rl-runner"  # W&B: the project the runs go to
    entity: str | None = None  # W&B: the team or user (null: the login's default)
    mode: str = "online"  # W&B: online, or offline (files in the run's wandb/, `wandb sync`)

    def __post_init__(self) -> None:
        require(
            self.backend in TRACKERS,
            "tracking.backend",
            f"must be one of {', '.join(TRACKERS)}, got {self.backend!r}",
        )
        require(bool(self.experiment), "tracking.experiment", "must not be empty")
        require(
            bool(self.project)
            and len(self.project) <= 128
            and not set(self.project) & set("/\\#?%:"),
            "tracking.project",
            f"must be 1 to 128 characters without / \\ # ? % :, got {self.project!r}",
        )
        require(self.entity != "", "tracking.entity", "must not be empty (null: the login's)")
        require(
            self.mode in WANDB_MODES,
            "tracking.mode",
            f"must be one of {', '.join(WANDB_MODES)}, got {self.mode!r}",
        )


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
    sweep: SweepConfig = field(default_factory=SweepConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        require(self.threads >= 1, "threads", "must be >= 1")
        require(
            re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None,
            "device",
            f"must be auto, cpu, cuda or cuda:N, got {self.device!r}",
        )
        require(0 <= self.seed < 2**32, "seed", f"must be in [0, 2**32), got {self.seed}")


# Options of the network and buffer groups, by their `name` field. Every env option
# shares EnvConfig (env names are free labels); algorithms are in rl_runner/registry.py.
NETWORK_SCHEMAS: dict[str, type] = {
    "mlp": MLPConfig,
    "ddpg_paper": MLPConfig,
    "cnn": CNNConfig,
    "nature_cnn": CNNConfig,
}
BUFFER_SCHEMAS: dict[str, type] = {"replay": ReplayConfig}
