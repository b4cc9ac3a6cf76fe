"""Whether an algorithm can act in an environment, checked before anything is built."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rl_runner.config.schema import CNNConfig
from rl_runner.config.settings import Settings
from rl_runner.errors import ConfigError
from rl_runner.registry import acting_in, algorithm


def flat_observation_size(settings: Settings, space: gym.Space) -> int:
    """The input width of an MLP agent, refusing observations an MLP cannot read."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        images = isinstance(space, gym.spaces.Box) and len(space.shape) in (3, 4)
        raise ConfigError(
            f"network={settings.network.name} needs a flat Box observation space; "
            f"env.id={settings.env.id} has {space}"
            + (f" ({_image_hint(settings)})" if images else "")
        )
    return int(space.shape[0])


def _image_hint(settings: Settings) -> str:
    if raw_atari_screens(settings):
        return "an Atari game's raw screen: env=atari preprocesses it for network=nature_cnn"
    return "images: network=cnn"


def raw_atari_screens(settings: Settings) -> bool:
    """An ALE game made without env=atari's preprocessing: (210, 160, 3) screens."""
    return settings.env.atari is None and (
        settings.env.id.startswith("ALE/") or "NoFrameskip" in settings.env.id
    )


def image_shape(settings: Settings, space: gym.Space) -> tuple[int, ...]:
    """The observation shape a convolutional network reads: (C, H, W) images, or
    (2, C, H, W) frame pairs, large enough for its convolutions."""
    network = settings.network
    assert isinstance(network, CNNConfig)
    shape = space.shape if isinstance(space, gym.spaces.Box) else None
    if raw_atari_screens(settings):
        raise ConfigError(
            f"network={network.name}: env.id={settings.env.id} gives the raw screen, "
            f"{space.shape} with its channels last; env=atari env.id={settings.env.id} "
            "gives the preprocessed 84x84 frame stacks a CNN reads"
        )
    if shape is None or len(shape) not in (3, 4) or (len(shape) == 4 and shape[0] != 2):
        raise ConfigError(
            f"network={network.name} needs image observations, (channels, height, width) or "
            f"frame pairs (2, channels, height, width); env.id={settings.env.id} has {space}"
        )
    if space.dtype != np.uint8:
        raise ConfigError(
            f"network={network.name} reads uint8 pixels (0-255, scaled to [0, 1] inside the "
            f"network); env.id={settings.env.id} gives {space.dtype} images: wrap the env to "
            "give uint8 pixels"
        )
    if _channels_last(shape):
        raise ConfigError(
            f"network={network.name} reads images channels first, (channels, height, width); "
            f"env.id={settings.env.id}'s {shape} look channels last: transpose them to "
            f"{(shape[2], shape[0], shape[1])} in a wrapper"
        )
    if min(network.output_size(size) for size in shape[-2:]) < 1:
        raise ConfigError(
            f"network.channels / kernel sizes / strides: convolutions of {network.described()} "
            f"(kernel/stride) leave nothing of env.id={settings.env.id}'s "
            f"{shape[-2]}x{shape[-1]} images"
        )
    return tuple(int(size) for size in shape)


def _channels_last(shape: tuple[int, ...]) -> bool:
    """(height, width, channels) with 1, 3 or 4 channels (grey, RGB, RGBA), which a
    network reading channels first would take for `height` channels of width x channels
    images."""
    return len(shape) == 3 and shape[2] in (1, 3, 4) and min(shape[:2]) > 4


def network_input_shape(settings: Settings, space: gym.Space) -> tuple[int, ...]:
    """What the run's network reads: images for network=cnn, else a flat vector."""
    if isinstance(settings.network, CNNConfig):
        return image_shape(settings, space)
    return (flat_observation_size(settings, space),)


def frame_stacks(settings: Settings) -> bool:
    """Whether a convolutional network's images are env=atari's frame stacks, whose
    frames a replay memory stores once each (buffers/replay.py's FrameStackReplay)."""
    return settings.env.atari is not None and isinstance(settings.network, CNNConfig)


def observation_mismatch(space: gym.Space, obs: Any) -> str | None:
    """How an observation disagrees with its declared space (shape, or a Discrete
    state that is not one integer), or None. Bounds are not checked: envs whose values
    stray past a declared bound train fine."""
    if isinstance(space, gym.spaces.Discrete):
        value = np.asarray(obs)
        if value.ndim != 0 or value.dtype.kind not in "iu":
            return f"{value.dtype} of shape {value.shape}, not one integer of {space}"
        return None
    shape = np.shape(obs)
    if space.shape is not None and shape != space.shape:
        return f"of shape {shape}, not the observation space's {space.shape}"
    return None


def check_spaces(settings: Settings, observation_space: gym.Space, action_space: gym.Space) -> None:
    """Can the algorithm act in this env at all: one line naming the mismatch if not."""
    name, env_id = settings.algo.name, settings.env.id
    entry = algorithm(name)
    if entry.actions == "discrete" and not isinstance(action_space, gym.spaces.Discrete):
        hint = f" (continuous actions: algo={', '.join(acting_in('box'))})"
        raise ConfigError(
            f"algo={name} needs a discrete action space; env.id={env_id} has {action_space}"
            + (hint if isinstance(action_space, gym.spaces.Box) else "")
        )
    if entry.actions == "box":
        check_continuous_actions(name, env_id, action_space)
    if entry.actions == "discrete_or_box" and not isinstance(action_space, gym.spaces.Discrete):
        check_continuous_actions(name, env_id, action_space, "a discrete or continuous (Box)")
    if entry.observations == "discrete" and not isinstance(observation_space, gym.spaces.Discrete):
        hint = (
            " (discretise it: env=cartpole_discrete, or env.id=rl_runner/Discretised-v0 "
            "with env.kwargs.env_id, bins, low and high)"
            if isinstance(observation_space, gym.spaces.Box)
            else ""
        )
        raise ConfigError(
            f"algo={name} keeps a table indexed by state and needs a discrete observation "
            f"space; env.id={env_id} has {observation_space}{hint}"
        )
    if "network" not in entry.groups:
        return
    network = settings.network
    if isinstance(network, CNNConfig) and network.batch_norm and not entry.batch_norm:
        raise ConfigError(
            f"network.batch_norm: algo={name} acts and learns with its networks in one "
            "mode, which BatchNorm's running statistics do not follow (algo=dqn does); "
            "set network.batch_norm=false"
        )
    network_input_shape(settings, observation_space)


def check_continuous_actions(
    name: str, env_id: str, space: gym.Space, needs: str = "a continuous (Box)"
) -> None:
    if not isinstance(space, gym.spaces.Box):
        hint = (
            f" (discrete actions: algo={', '.join(acting_in('discrete'))})"
            if isinstance(space, gym.spaces.Discrete)
            else ""
        )
        raise ConfigError(
            f"algo={name} needs {needs} action space; env.id={env_id} has {space}" + hint
        )
    if len(space.shape) != 1:
        raise ConfigError(
            f"algo={name} needs a flat Box action space; env.id={env_id} has shape {space.shape}"
        )
    if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        raise ConfigError(
            f"algo={name} scales its [-1, 1] actions to the env's bounds, which must be finite; "
            f"env.id={env_id} has low={space.low.tolist()} high={space.high.tolist()}"
        )
