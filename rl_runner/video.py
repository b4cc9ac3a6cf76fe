"""Videos of evaluation episodes (`eval.video.every=K`): the first episode of every K-th
evaluation, and of the final one, drawn by the env's own renderer (headless, as
rl-render draws), as an animated GIF in `videos/` and as a TensorBoard video (GIFs are
what TensorBoard's image dashboard plays, as `add_video` writes them).

Frames are shrunk to `eval.video.size` pixels on their longer side, and an episode
longer than `eval.video.max_frames` steps keeps every n-th frame: a 1,000-step MuJoCo
episode at full size would hold 700 MB of frames.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rl_runner.errors import ConfigError

if TYPE_CHECKING:
    from rl_runner.config.schema import EnvConfig, VideoConfig
    from rl_runner.envs.factory import EnvFactory

RENDER_MODE = "rgb_array"
GL_HINT = (
    "MuJoCo renders headless with MUJOCO_GL=egl (Debian package libegl1) or "
    "MUJOCO_GL=osmesa (libosmesa6)"
)


@dataclass(frozen=True)
class VideoRecording:
    """What an evaluator records with: the rendering env's factory and the settings."""

    factory: EnvFactory
    config: VideoConfig


def recording(env: EnvConfig, config: VideoConfig) -> VideoRecording | None:
    """The recording a run's `eval.video` asks for, or None (eval.video.every=0)."""
    from rl_runner.envs.factory import configured_env_factory, render_headless

    if config.every == 0:
        return None
    render_headless()
    return VideoRecording(configured_env_factory(env, render_mode=RENDER_MODE), config)


def records(evaluation_step: int, eval_every: int, video_every: int, final: bool) -> bool:
    """Whether the evaluation at this step is filmed: the last one, and every
    `video_every`-th (counted by step, so a resumed run films the same ones)."""
    if video_every == 0:
        return False
    return final or (evaluation_step // eval_every) % video_every == 0


def check_renders(env: EnvConfig, config: VideoConfig) -> None:
    """Before the run: the env draws an RGB frame headless (a MuJoCo machine without
    OpenGL is told here, in one line, rather than at the first filmed evaluation)."""
    video = recording(env, config)
    if video is None:
        return
    try:
        made = video.factory()
    except ConfigError:  # its constructor takes no render_mode (the message says so)
        raise ConfigError(
            f"eval.video.every: env.id={env.id} cannot be made with render_mode='rgb_array', "
            "so it draws no frames to film"
        ) from None
    except Exception as error:  # noqa: BLE001 - whatever stops the renderer, said in one line
        raise ConfigError(_cannot_render(env, error)) from None
    try:
        made.reset(seed=0)
        shrunk(made.render(), config.size)
    except Exception as error:  # noqa: BLE001
        raise ConfigError(_cannot_render(env, error)) from None
    finally:
        made.close()


def _cannot_render(env: EnvConfig, error: Exception) -> str:
    return f"eval.video.every: env.id={env.id} cannot render its frames ({render_failure(error)})"


def render_failure(error: Exception) -> str:
    """A renderer's error in one line, with how to render MuJoCo headless where OpenGL
    is what failed."""
    detail = f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"
    opengl = "GL" in detail or "mujoco" in type(error).__module__
    return f"{detail}; {GL_HINT}" if opengl else detail


class FrameRecorder:
    """The frames of one episode (the first observation's, then one a step), each
    shrunk, every `stride`-th kept."""

    def __init__(self, step_cap: int, max_frames: int, size: int) -> None:
        self.stride = max(1, math.ceil((step_cap + 1) / max_frames))
        self.size = size
        self.frames: list[np.ndarray] = []
        self._seen = 0

    def add(self, frame: object) -> None:
        if self._seen % self.stride == 0:
            self.frames.append(shrunk(frame, self.size))
        self._seen += 1


def shrunk(frame: object, size: int) -> np.ndarray:
    from PIL import Image

    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise TypeError(f"the env's render() returned {type(frame).__name__}, not an RGB image")
    image = Image.fromarray(np.ascontiguousarray(frame[..., :3]).astype(np.uint8))
    scale = size / max(image.size)
    if scale < 1:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.BILINEAR,
        )
    return np.asarray(image)


def gif_bytes(frames: list[np.ndarray], fps: float) -> bytes:
    """An animated GIF, looping, each frame shown 1/fps seconds."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),  # whole ms: PIL truncates to the GIF's 10 ms units
        loop=0,
        optimize=False,
    )
    return buffer.getvalue()
