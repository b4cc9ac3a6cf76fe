"""Creating Gymnasium environments from plain settings."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from functools import partial
from typing import Any

import gymnasium as gym

from rl_runner.config.schema import ENTRY_POINT, EnvConfig
from rl_runner.errors import ConfigError

EnvFactory = Callable[[], gym.Env]
log = logging.getLogger("rl_runner")


def _log_mujoco_warning(message: str) -> None:
    log.debug("MuJoCo: %s", message)


def _route_mujoco_warnings(env_id: str) -> None:
    """MuJoCo prints its warnings (Gymnasium's HalfCheetah model uses a deprecated
    attribute, say) at every env it makes and appends them to MUJOCO_LOG.TXT in the
    user's working directory; they are about Gymnasium's model files, so they go to the
    debug log instead."""
    try:
        entry_point = str(gym.spec(env_id).entry_point)
    except Exception:  # an unknown or unloadable id: gym.make below reports it
        return
    if "mujoco" in entry_point:
        try:
            import mujoco
        except RuntimeError as error:  # MuJoCo reads MUJOCO_GL as it loads
            raise ConfigError(f"env.id={env_id}: MuJoCo cannot load: {error}") from None
        mujoco.set_mju_user_warning(_log_mujoco_warning)


def render_headless() -> None:
    """Rendering without a display: pygame (classic control) draws off-screen with no
    sound device, MuJoCo through EGL, unless the user chose otherwise. Set before the
    first env that renders is made."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("MUJOCO_GL", "egl")


def _check_entry_point(entry_point: str) -> None:
    """Refuse an entry point Gymnasium could not make an env from, naming why (Gymnasium
    itself would report a missing module as a missing optional dependency)."""
    module_name, _, attribute = entry_point.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if not f"{module_name}.".startswith(f"{err.name}."):  # it imports a missing package
            raise ConfigError(
                f"env.entry_point: {module_name} imports a package that is not installed ({err})"
            ) from err
        raise ConfigError(
            f"env.entry_point: no module {module_name!r} on PYTHONPATH "
            "(PYTHONPATH=<its directory> rl-run ...)"
        ) from err
    except Exception as err:  # the user's module failed as it was imported
        raise ConfigError(
            f"env.entry_point: importing {module_name} failed ({_detail(err)})"
        ) from err
    target = getattr(module, attribute, None)
    if target is None:
        raise ConfigError(f"env.entry_point: module {module_name} has no {attribute!r}")
    if not callable(target) or (isinstance(target, type) and not issubclass(target, gym.Env)):
        kind = "class" if isinstance(target, type) else type(target).__name__
        raise ConfigError(
            f"env.entry_point: {entry_point} is a {kind}, not a gymnasium.Env subclass or "
            "a function that returns an env"
        )


def register_entry_point(env_id: str, entry_point: str, max_episode_steps: int | None) -> None:
    """Register `entry_point` under `env_id`, in this process (each process that makes
    the env registers it: a fresh Python, such as rl-render's, knows nothing of the
    run's). An earlier registration of the id, by a sweep's previous job, is replaced
    without Gymnasium's warning about overriding it."""
    _check_entry_point(entry_point)
    gym.registry.pop(env_id, None)
    gym.register(id=env_id, entry_point=entry_point, max_episode_steps=max_episode_steps)


def _detail(err: Exception) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"


def _entry_point_hint(env_id: str) -> str:
    """`env.id=mymodule:MyEnv` (no namespace, no version): a class or function where a
    registered id belongs."""
    if ENTRY_POINT.fullmatch(env_id) is None:
        return ""
    return (
        f"; if {env_id.partition(':')[2]} is the env's class or a function that makes it, "
        f"give env.entry_point={env_id} instead of env.id"
    )


def make_env(
    env_id: str,
    kwargs: dict[str, Any],
    max_episode_steps: int | None,
    entry_point: str | None = None,
) -> gym.Env:
    """One environment; the passive checker is off because it costs time every step.
    With an `entry_point`, `env_id` is the id it is registered under."""
    key, name = ("env.entry_point", entry_point) if entry_point else ("env.id", env_id)
    if entry_point is not None:
        register_entry_point(env_id, entry_point, max_episode_steps)
    if env_id.startswith("ALE/"):
        from rl_runner.envs.atari import register_ale

        register_ale()
    _route_mujoco_warnings(env_id)
    try:
        return gym.make(
            env_id, max_episode_steps=max_episode_steps, disable_env_checker=True, **kwargs
        )
    except gym.error.Error as err:
        reason = f"{str(err).rstrip('.')}{_entry_point_hint(env_id)}"
        raise ConfigError(f"{key}: cannot make {name!r}: {reason}") from err
    except ModuleNotFoundError as err:
        missing = err.name or getattr(err.__cause__, "name", None)  # Gymnasium re-raises it
        if missing is not None and env_id.startswith(f"{missing}:"):  # `module:id`'s module
            raise ConfigError(
                f"{key}: no module {missing!r} on PYTHONPATH for {name!r} "
                "(PYTHONPATH=<its directory> rl-run ...)"
            ) from err
        raise ConfigError(f"{key}: {name!r} needs a package that is not installed ({err})") from err
    except ImportError as err:  # an entry point whose optional dependency is missing
        raise ConfigError(f"{key}: {name!r} needs a package that is not installed ({err})") from err
    except Exception as err:  # the env's own constructor: any type, wrong kwargs or a bug
        if kwargs:
            raise ConfigError(
                f"env.kwargs: {name!r} rejected {dict(kwargs)}: {_detail(err)}"
            ) from err
        raise ConfigError(f"{key}: {name!r} could not be made: {_detail(err)}") from err


def env_factory(
    env_id: str,
    kwargs: dict[str, Any],
    max_episode_steps: int | None,
    entry_point: str | None = None,
) -> EnvFactory:
    """A zero-argument callable that makes a fresh copy of the environment (in a worker
    process too: the entry point travels with it)."""
    return partial(make_env, env_id, dict(kwargs), max_episode_steps, entry_point)


def configured_env_factory(
    config: EnvConfig, training: bool = False, render_mode: str | None = None
) -> EnvFactory:
    """The env `config` describes, as a training env (`training`: an Atari game's
    episodes end at a life lost, and its rewards are clipped) or as one that plays whole
    episodes for their score (evaluation, videos, rl-render, rl-export)."""
    kwargs = (
        dict(config.kwargs)
        if render_mode is None
        else {**config.kwargs, "render_mode": render_mode}
    )
    if config.atari is not None:
        from rl_runner.envs.atari import make_atari

        return partial(
            make_atari, config.id, config.atari, kwargs, config.max_episode_steps, training
        )
    return partial(make_env, config.id, kwargs, config.max_episode_steps, config.entry_point)
