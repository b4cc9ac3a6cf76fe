"""Capture and restore an environment's dynamic state, for exact resume.

Gymnasium has no state API, so this walks the wrapper chain and records, on every
layer, each attribute by what it holds:

- plain data (numbers, strings, None, numpy arrays and scalars, and tuples, lists and
  dicts of these, of exactly those types): copied;
- numpy generators, including those of every space the layer holds (the action and
  observation spaces, and any other a custom env samples noise from, with the
  subspaces of Dict and Tuple spaces): their state;
- deques of these (a frame stack), with their length limit, and enum members (ALE's
  action set), by their class, which the running env has already imported;
- MuJoCo's `MjData` (the physics): MuJoCo's own full integration state (time, qpos,
  qvel, act, warm-start, controls, applied forces, ...), through `mj_getState`, and
  the quantities the last step derived from it (body positions, contact forces, ...);
- the Arcade Learning Environment's emulator (`ALEInterface`): ALE's own state cloning
  with its random generator (sticky actions) included;
- things that never change while an env runs (its spec, a MuJoCo model, a renderer,
  spaces' definitions, functions and methods, Gymnasium's records of constructor
  arguments): nothing.

Anything else (an inner env held in an attribute other than a wrapper's `env`
included: its state would need a chain of its own) is state this module cannot
capture, and a resume that skipped it would silently differ from the run it continues:
`env_state` refuses it, naming the env and the attribute. Only where the user asked for
it (`checkpoint.exact=false`) does it skip that state instead, and the snapshot lists
what it skipped, so that a resume can say it is not the exact continuation.
"""

from __future__ import annotations

import enum
import functools
import inspect
import sys
import types
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rl_runner.errors import ConfigError

_PLAIN_TYPES = (bool, int, float, str, bytes, type(None))
# (module, class name) of the objects that hold no state a step changes; matched by
# name so that classic-control runs never import MuJoCo.
_STATIC_TYPES = {
    ("gymnasium.envs.registration", "EnvSpec"),
    ("mujoco._structs", "MjModel"),
    ("gymnasium.envs.mujoco.mujoco_rendering", "MujocoRenderer"),
    # classic control's pygame screen and clock: every render() redraws the whole screen
    ("pygame.surface", "Surface"),
    ("pygame.time", "Clock"),
}
_MJDATA = ("mujoco._structs", "MjData")
_ALE = ("ale_py._ale_py", "ALEInterface")
_FUNCTION_TYPES = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    functools.partial,
)
# Written once when an env or wrapper is made (EzPickle's and Wrapper's own records of
# the constructor's arguments), and free to hold objects.
_CONSTRUCTION_RECORDS = {"_ezpickle_args", "_ezpickle_kwargs", "_saved_kwargs"}


class UnsupportedEnvState(ConfigError):
    """An env attribute whose state the snapshot cannot capture."""


def _layers(env: gym.Env) -> list[Any]:
    layers = [env]
    while hasattr(layers[-1], "env"):
        layers.append(layers[-1].env)
    return layers


def _type_key(value: Any) -> tuple[str, str]:
    return type(value).__module__, type(value).__name__


def _data(value: Any) -> tuple[str, Any] | None:
    """(kind, stored) for plain data: numbers, strings, None, numpy arrays and scalars,
    and tuples, lists and str-keyed dicts of these (numpy scalars keep their type)."""
    if type(value) in _PLAIN_TYPES:
        return ("plain", value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "SU":  # FrozenLake's map
        return ("text_array", (value.dtype.str, value.tolist()))
    if isinstance(value, np.ndarray) and value.dtype != object:
        return ("array", torch.from_numpy(value.copy()))
    if isinstance(value, np.generic) and value.dtype.kind in "SU":  # Blackjack's cards
        return ("text_scalar", (value.dtype.str, value.item()))
    if isinstance(value, np.generic) and not isinstance(value, np.object_):
        return ("scalar", torch.from_numpy(np.asarray(value).copy()))
    if isinstance(value, enum.Enum):
        return ("enum", (type(value).__module__, type(value).__qualname__, value.name))
    # exact types: a subclass (a named tuple, an OrderedDict) would come back as its base
    if type(value) in (tuple, list, deque):
        items = [_data(item) for item in value]
        if all(item is not None for item in items):
            if isinstance(value, deque):
                return ("deque", (value.maxlen, items))
            return (type(value).__name__, items)
    if type(value) is dict and all(type(key) in _PLAIN_TYPES for key in value):
        entries = {key: _data(item) for key, item in value.items()}
        if all(entry is not None for entry in entries.values()):
            return ("dict", entries)
    return None


def _restore_data(kind: str, stored: Any) -> Any:
    if kind == "array":
        return stored.numpy().copy()
    if kind == "text_array":
        dtype, items = stored
        return np.array(items, dtype=dtype)
    if kind == "scalar":
        return stored.numpy()[()]
    if kind == "text_scalar":
        dtype, item = stored
        return np.array(item, dtype=dtype)[()]
    if kind in ("tuple", "list"):
        items = [_restore_data(*item) for item in stored]
        return tuple(items) if kind == "tuple" else items
    if kind == "deque":
        maxlen, items = stored
        return deque([_restore_data(*item) for item in items], maxlen=maxlen)
    if kind == "enum":
        return _enum_member(*stored)
    if kind == "dict":
        return {key: _restore_data(*entry) for key, entry in stored.items()}
    return stored


def _enum_member(module: str, qualname: str, name: str) -> enum.Enum:
    """A member of an enum class that the env's own modules define (so imported by
    making the env): nothing a checkpoint names is imported."""
    owner: Any = sys.modules.get(module)
    for part in qualname.split("."):
        owner = getattr(owner, part, None)
    if not (isinstance(owner, type) and issubclass(owner, enum.Enum)):
        raise ValueError(f"env snapshot: {module}.{qualname} is not an enum the env has loaded")
    return owner[name]


def _is_static(name: str, value: Any) -> bool:
    """Objects that never change while an env runs. Callables only where they are plain
    functions (an object with `__call__` may keep state), containers only where they are
    Gymnasium's records of constructor arguments."""
    return (
        _type_key(value) in _STATIC_TYPES
        or isinstance(value, (gym.Space, types.ModuleType, type, *_FUNCTION_TYPES))
        or name in _CONSTRUCTION_RECORDS
    )


def _capture_value(layer: Any, name: str, value: Any) -> tuple[str, Any] | None:
    """(kind, stored) for state, None for what never changes; raises
    `UnsupportedEnvState` for the rest."""
    data = _data(value)
    if data is not None:
        return data
    if isinstance(value, np.random.Generator):
        return ("generator", value.bit_generator.state)
    if _type_key(value) == _MJDATA:
        return ("mujoco", _mujoco_state(layer.model, value))
    if _type_key(value) == _ALE:
        return ("ale", value.cloneState(include_rng=True).serialize())  # bytes
    if _is_static(name, value):
        return None
    raise UnsupportedEnvState(
        f"env.id={_env_id(layer)}: cannot checkpoint {_described(layer, name, value)}; "
        "exact resume would lose it, so this env cannot be trained with checkpoints "
        "(checkpoint.exact=false trains it, and its resumes are not exact)"
    )


def _described(layer: Any, name: str, value: Any) -> str:
    return f"{type(layer).__name__}.{name} ({type(value).__module__}.{type(value).__name__})"


def _env_id(layer: Any) -> str:
    spec = getattr(layer, "spec", None)
    return spec.id if spec is not None else type(layer).__name__


def _mujoco_state(model: Any, data: Any) -> dict[str, Any]:
    """MuJoCo's integration state, and every array MjData holds besides: an env reads
    quantities that the last step computed (Ant's torso position before a step is the
    one of the previous forward pass), which the integration state alone cannot
    recreate."""
    import mujoco

    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state, spec)
    arrays = {
        name: torch.from_numpy(np.array(value))
        for name in dir(data)
        if not name.startswith("_") and isinstance(value := getattr(data, name), np.ndarray)
    }
    return {"integration": torch.from_numpy(state), "arrays": arrays}


def _restore_mujoco(model: Any, data: Any, stored: dict[str, Any]) -> None:
    import mujoco

    mujoco.mj_setState(
        model, data, stored["integration"].numpy(), mujoco.mjtState.mjSTATE_INTEGRATION
    )
    for name, array in stored["arrays"].items():
        target = getattr(data, name)
        # Arrays sized by the step's contacts (efc_*) differ in shape; the next step
        # recomputes them before anything reads them.
        if target.shape == tuple(array.shape):
            target[...] = array.numpy()


def _restore_value(layer: Any, kind: str, stored: Any, current: Any) -> Any:
    if kind == "generator":
        if not isinstance(current, np.random.Generator):  # a fresh env has not made one yet
            current = np.random.Generator(getattr(np.random, stored["bit_generator"])())
        current.bit_generator.state = stored
        return current
    if kind == "mujoco":
        _restore_mujoco(layer.model, current, stored)
        return current
    if kind == "ale":
        from ale_py import ALEState

        current.restoreState(ALEState(stored))
        return current
    return _restore_data(kind, stored)


def _subspaces(space: gym.Space, path: str) -> list[tuple[str, gym.Space]]:
    """(path, space) for the space and, in Dict and Tuple spaces, every subspace."""
    found = [(path, space)]
    children = getattr(space, "spaces", None)
    items = children.items() if isinstance(children, dict) else enumerate(children or ())
    for key, child in items:
        if isinstance(child, gym.Space):
            found += _subspaces(child, f"{path}.{key}")
    return found


def _held_spaces(layer: Any) -> dict[str, gym.Space]:
    """The spaces a layer holds, by attribute name."""
    held = dict(vars(layer))
    for name in ("action_space", "observation_space"):  # a custom env's class attributes
        static = inspect.getattr_static(layer, name, None)  # (a wrapper's are properties)
        if name not in held and isinstance(static, gym.Space):
            held[name] = static
    return {name: value for name, value in held.items() if isinstance(value, gym.Space)}


def _space_generators(layer: Any) -> dict[str, Any]:
    """The generators of every space the layer holds, those that exist: a space nobody
    has sampled or seeded (one a wrapper has replaced) has none yet, and asking for
    `np_random` would create one from fresh OS entropy, different in every process."""
    return {
        path: space._np_random.bit_generator.state
        for name, value in _held_spaces(layer).items()
        for path, space in _subspaces(value, name)
        if space._np_random is not None
    }


def seed_space_generators(env: gym.Env, seed: int) -> None:
    """Seed, with `seed`, every space of an inner layer that already holds a generator:
    a wrapper may have made one from OS entropy (Gymnasium's FrameStackObservation
    does, for the space it stacks), which would differ between a run and the run its
    resume continues. The env's own two spaces are the caller's to seed."""
    seeded = {id(env.action_space), id(env.observation_space)}
    for layer in _layers(env):
        for space in _held_spaces(layer).values():
            made = any(part._np_random is not None for _, part in _subspaces(space, ""))
            if made and id(space) not in seeded:
                space.seed(seed)
                seeded.add(id(space))


def _space_at(layer: Any, path: str) -> gym.Space:
    name, *keys = path.split(".")
    space = getattr(layer, name)
    for key in keys:
        children = space.spaces  # type: ignore[attr-defined]
        space = children[key] if isinstance(children, dict) else children[int(key)]
    return space


def env_state(env: gym.Env, exact: bool = True) -> list[dict[str, Any]]:
    """One dict per wrapper layer, outermost first. Not `exact`: what cannot be
    captured is skipped, and listed under the layer's "skipped"."""
    state = []
    for layer in _layers(env):
        captured, skipped = {}, []
        for name, value in vars(layer).items():
            if name == "env":
                continue  # the next layer, walked on its own
            try:
                entry = _capture_value(layer, name, value)
            except UnsupportedEnvState:
                if exact:
                    raise
                skipped.append(_described(layer, name, value))
                continue
            if entry is not None:
                captured[name] = entry
        layer_state = {"attributes": captured, "spaces": _space_generators(layer)}
        state.append({**layer_state, "skipped": skipped} if skipped else layer_state)
    return state


def skipped_state(snapshots: list[list[dict[str, Any]]]) -> list[str]:
    """What the snapshots of a batch of envs left out (`checkpoint.exact=false`), each
    attribute once."""
    return sorted({name for env in snapshots for layer in env for name in layer.get("skipped", [])})


def restore_env_state(env: gym.Env, state: list[dict[str, Any]]) -> None:
    layers = _layers(env)
    if len(layers) != len(state):
        raise ValueError(f"env has {len(layers)} wrapper layers, the snapshot {len(state)}")
    for layer, layer_state in zip(layers, state, strict=True):
        for name, (kind, stored) in layer_state["attributes"].items():
            value = _restore_value(layer, kind, stored, getattr(layer, name, None))
            setattr(layer, name, value)
        for path, generator_state in layer_state["spaces"].items():
            _space_at(layer, path).np_random.bit_generator.state = generator_state
