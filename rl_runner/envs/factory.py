"""Creating Gymnasium environments from plain settings."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial
from typing import Any

import gymnasium as gym

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
        import mujoco

        mujoco.set_mju_user_warning(_log_mujoco_warning)


def render_headless() -> None:
    """Rendering without a display: pygame (classic control) draws off-screen with no
    sound device, MuJoCo through EGL, unless the user chose otherwise. Set before the
    first env that renders is made."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("MUJOCO_GL", "egl")


def make_env(env_id: str, kwargs: dict[str, Any], max_episode_steps: int | None) -> gym.Env:
    """One environment; the passive checker is off because it costs time every step."""
    _route_mujoco_warnings(env_id)
    try:
        return gym.make(
            env_id, max_episode_steps=max_episode_steps, disable_env_checker=True, **kwargs
        )
    except gym.error.Error as err:
        raise ConfigError(f"env.id: cannot make {env_id!r}: {err}") from err
    except ImportError as err:  # an entry point whose optional dependency is missing
        raise ConfigError(
            f"env.id: {env_id!r} needs a package that is not installed ({err})"
        ) from err
    except Exception as err:  # the env's own constructor: any type, wrong kwargs or a bug
        detail = f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"
        if kwargs:
            raise ConfigError(f"env.kwargs: {env_id!r} rejected {dict(kwargs)}: {detail}") from err
        raise ConfigError(f"env.id: {env_id!r} could not be made: {detail}") from err


def env_factory(env_id: str, kwargs: dict[str, Any], max_episode_steps: int | None) -> EnvFactory:
    """A zero-argument callable that makes a fresh copy of the environment."""
    return partial(make_env, env_id, dict(kwargs), max_episode_steps)
