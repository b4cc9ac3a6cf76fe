"""Capture and restore an environment's dynamic state, for exact resume.

Gymnasium has no state API, so this walks the wrapper chain and records, on every
layer, the attributes that are plain data (arrays, numbers, booleans, None) and the
state of every numpy generator, including the action and observation spaces'.
That covers the classic-control family (physics state, time-limit counters,
reset RNG). Environments whose state lives in foreign objects need a hook here.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

_PLAIN_TYPES = (bool, int, float, str, type(None))


def _layers(env: gym.Env) -> list[Any]:
    layers = [env]
    while hasattr(layers[-1], "env"):
        layers.append(layers[-1].env)
    return layers


def _capture_value(value: Any) -> tuple[str, Any] | None:
    if isinstance(value, _PLAIN_TYPES):
        return ("plain", value)
    if isinstance(value, np.ndarray) and value.dtype != object:
        return ("array", torch.from_numpy(value.copy()))
    if isinstance(value, np.random.Generator):
        return ("generator", value.bit_generator.state)
    return None


def _restore_value(kind: str, stored: Any, current: Any) -> Any:
    if kind == "array":
        return stored.numpy().copy()
    if kind == "generator":
        if not isinstance(current, np.random.Generator):  # a fresh env has not made one yet
            current = np.random.Generator(getattr(np.random, stored["bit_generator"])())
        current.bit_generator.state = stored
        return current
    return stored


def _space_generators(layer: Any) -> dict[str, Any]:
    spaces = {}
    for name in ("action_space", "observation_space"):
        space = vars(layer).get(name)
        if isinstance(space, gym.Space):
            spaces[name] = space.np_random.bit_generator.state
    return spaces


def env_state(env: gym.Env) -> list[dict[str, Any]]:
    """One dict per wrapper layer, outermost first."""
    state = []
    for layer in _layers(env):
        captured = {}
        for name, value in vars(layer).items():
            entry = _capture_value(value)
            if entry is not None:
                captured[name] = entry
        state.append({"attributes": captured, "spaces": _space_generators(layer)})
    return state


def restore_env_state(env: gym.Env, state: list[dict[str, Any]]) -> None:
    layers = _layers(env)
    if len(layers) != len(state):
        raise ValueError(f"env has {len(layers)} wrapper layers, the snapshot {len(state)}")
    for layer, layer_state in zip(layers, state, strict=True):
        for name, (kind, stored) in layer_state["attributes"].items():
            setattr(layer, name, _restore_value(kind, stored, getattr(layer, name, None)))
        for name, generator_state in layer_state["spaces"].items():
            getattr(layer, name).np_random.bit_generator.state = generator_state
