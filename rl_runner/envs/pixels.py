"""CartPole seen through its rendered screen, as seed 004's pixel DQN sees it.

Each step renders the screen, keeps the band the cart runs in (rows 40%-80% of the
height) and 60% of the width centred on the cart (held at the edges), and resizes it to
40 pixels high (bicubic, as the tutorial's `T.Resize(40)`): a (3, 40, 90) uint8 patch
from CartPole's 600x400 screen. The observation is the previous and the current patch,
(2, 3, 40, 90) uint8; the network takes their difference (the tutorial's
`current_screen - last_screen`), so observations are stored as bytes, not floats. At a
reset both patches are the first one (a zero difference, as in the tutorial).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rl_runner.envs.factory import render_headless

BAND = (0.4, 0.8)  # the rows of the screen the cart runs in, as fractions of its height
VIEW = 0.6  # the width of the patch, as a fraction of the screen's


class CartPolePixels(gym.Wrapper):
    def __init__(self, env: gym.Env, height: int = 40) -> None:
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError("needs an env made with render_mode='rgb_array'")
        self.height = height
        self.last_patch = self._patch_after_reset()
        self.observation_space = gym.spaces.Box(0, 255, (2, *self.last_patch.shape), dtype=np.uint8)

    def _patch_after_reset(self) -> np.ndarray:
        self.env.reset(seed=0)  # to size the patch: the spaces need it before any reset
        return self._patch()

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        _, info = self.env.reset(**kwargs)
        self.last_patch = self._patch()
        return np.stack([self.last_patch, self.last_patch]), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        _, reward, terminated, truncated, info = self.env.step(action)
        patch = self._patch()
        obs = np.stack([self.last_patch, patch])
        self.last_patch = patch
        return obs, float(reward), terminated, truncated, info

    def _patch(self) -> np.ndarray:
        from PIL import Image

        screen = np.asarray(self.env.render())
        height, width = screen.shape[:2]
        band = screen[int(height * BAND[0]) : int(height * BAND[1])]
        view = int(width * VIEW)
        cart = self._cart_column(width)
        start = int(np.clip(cart - view // 2, 0, width - view))
        patch = Image.fromarray(np.ascontiguousarray(band[:, start : start + view]))
        resized_width = round(view * self.height / band.shape[0])
        patch = patch.resize((resized_width, self.height), Image.Resampling.BICUBIC)
        return np.asarray(patch).transpose(2, 0, 1).copy()  # channels first

    def _cart_column(self, screen_width: int) -> int:
        cartpole: Any = self.env.unwrapped  # CartPoleEnv: x_threshold and state
        scale = screen_width / (cartpole.x_threshold * 2)
        return int(cartpole.state[0] * scale + screen_width / 2.0)


def make_cartpole_pixels(
    height: int = 40, render_mode: str | None = "rgb_array", **kwargs: Any
) -> gym.Env:
    """CartPole-v1 (its 500-step limit kept) observed through rendered patches. It
    renders `rgb_array` frames whatever `render_mode` asks (rl-render asks for them)."""
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"renders rgb_array frames only, not {render_mode!r}")
    render_headless()
    env = gym.make("CartPole-v1", render_mode="rgb_array", disable_env_checker=True, **kwargs)
    return CartPolePixels(env, height)
