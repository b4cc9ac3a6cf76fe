"""Environments that exist to be refused, or to be learnt in seconds:
`rl-run env=gym env.id=fake_envs:<id>` (the tests put this directory on PYTHONPATH;
Gymnasium imports the module named before the colon, which registers them)."""

from __future__ import annotations

import random
from typing import Any

import gymnasium as gym
import numpy as np


class _Walk(gym.Env):
    """A point on a line pushed by the action; reward -|position|."""

    observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
    action_space: gym.Space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.position = float(self.np_random.uniform(-1, 1))
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.position = float(
            np.clip(self.position + float(np.asarray(action).ravel()[0]), -10, 10)
        )
        return self._obs(), -abs(self.position), False, False, {}

    def _obs(self) -> np.ndarray:
        return np.array([self.position, 0.0], dtype=np.float32)


class UnboundedActions(_Walk):
    action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)


class UncapturableState(_Walk):
    """Keeps its recent positions in a set, which a checkpoint cannot capture."""

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        self.recent: set[float] = set()
        return super().reset(seed=seed, options=options)


class _Counter:
    """A callable that keeps state: not a plain function, so it must be refused."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


class StatefulCallable(_Walk):
    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        self.tick = _Counter()
        return super().reset(seed=seed, options=options)


class LateUncapturableState(_Walk):
    """Makes its set only after 30 steps: found at the first checkpoint past that."""

    steps = 0

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.steps += 1
        if self.steps > 30:
            self.recent: set[float] = set()
        return super().step(action)


class PythonRandomNoise(_Walk):
    """Noise from Python's `random.Random`, as many users' envs have: its state is not
    one the snapshot knows, so only checkpoint.exact=false trains it."""

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self.noise = random.Random(seed)
        return super().reset(seed=seed, options=options)

    def _obs(self) -> np.ndarray:
        return np.array([self.position, self.noise.uniform(-0.1, 0.1)], dtype=np.float32)


class CountedMakes(_Walk):
    """Writes a line to `log` each time it is made."""

    def __init__(self, log: str) -> None:
        with open(log, "a") as file:
            file.write("made\n")


class MultiDiscreteActions(_Walk):
    """Actions no registered algorithm acts in."""

    action_space = gym.spaces.MultiDiscrete([3, 3])

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return super().step(np.asarray(action, dtype=np.float32)[:1] - 1.0)


class MisdeclaredObservations(_Walk):
    """Declares observations of shape (2,) and returns (3,)."""

    def _obs(self) -> np.ndarray:
        return np.array([self.position, 0.0, 1.0], dtype=np.float32)


class NoisySpace(_Walk):
    """Observations with noise sampled from a space of its own (a Dict of two Boxes, each
    subspace with its own generator), seeded with the env."""

    def __init__(self) -> None:
        box = gym.spaces.Box(-0.1, 0.1, (1,), np.float32)
        self.noise = gym.spaces.Dict({"position": box, "velocity": box})

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self.noise.seed(seed)
        return super().reset(seed=seed, options=options)

    def _obs(self) -> np.ndarray:
        noise = self.noise.sample()
        return super()._obs() + np.concatenate([noise["position"], noise["velocity"]])


class InnerEnvAttribute(_Walk):
    """Keeps an inner env in an attribute (not a wrapper's `env`)."""

    def __init__(self) -> None:
        self.simulator = gym.make("CartPole-v1", disable_env_checker=True)


class NonFiniteOutput(_Walk):
    """From step `after` on, `value` (nan, inf) as the reward or in the observation."""

    def __init__(self, where: str = "reward", value: float = np.nan, after: int = 30) -> None:
        self.where, self.value, self.after, self.steps = where, float(value), after, 0

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = super().step(action)
        self.steps += 1
        if self.steps > self.after:
            if self.where == "reward":
                reward = self.value
            else:
                obs[1] = self.value
        return obs, reward, terminated, truncated, info


class NonFiniteRewardChain(gym.Env):
    """Five states in a row for the tabular agents, each action a move left or right;
    the reward is NaN from step `after` on."""

    observation_space = gym.spaces.Discrete(5)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, after: int = 30) -> None:
        self.after, self.steps, self.state = after, 0, 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.state = 0
        return self.state, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        self.steps += 1
        self.state = int(np.clip(self.state + (1 if action else -1), 0, 4))
        reward = np.nan if self.steps > self.after else float(self.state == 4)
        return self.state, reward, self.state == 4, False, {}


gym.register(
    "MisdeclaredObservations-v0", entry_point=MisdeclaredObservations, max_episode_steps=20
)


class Endless(NonFiniteRewardChain):
    """The chain without its goal: no episode ever ends (registered without a limit)."""

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        self.state = int(np.clip(self.state + (1 if action else -1), 0, 4))
        return self.state, float(self.state == 4), False, False, {}


gym.register("Endless-v0", entry_point=Endless)
gym.register("NoisySpace-v0", entry_point=NoisySpace, max_episode_steps=20)
gym.register("InnerEnvAttribute-v0", entry_point=InnerEnvAttribute, max_episode_steps=20)
gym.register("NonFiniteOutput-v0", entry_point=NonFiniteOutput, max_episode_steps=20)
gym.register("NonFiniteRewardChain-v0", entry_point=NonFiniteRewardChain, max_episode_steps=20)
gym.register("MultiDiscreteActions-v0", entry_point=MultiDiscreteActions, max_episode_steps=20)
gym.register("UnboundedActions-v0", entry_point=UnboundedActions, max_episode_steps=20)
gym.register("StatefulCallable-v0", entry_point=StatefulCallable, max_episode_steps=20)
gym.register("LateUncapturableState-v0", entry_point=LateUncapturableState, max_episode_steps=20)
gym.register("PythonRandomNoise-v0", entry_point=PythonRandomNoise, max_episode_steps=20)
gym.register("CountedMakes-v0", entry_point=CountedMakes, max_episode_steps=20)
gym.register("UncapturableState-v0", entry_point=UncapturableState, max_episode_steps=20)


class Unrendered(_Walk):
    """Draws nothing: `render()` is Gymnasium's default."""


gym.register("Unrendered-v0", entry_point=Unrendered, max_episode_steps=20)


class BlankRender(_Walk):
    """Takes render_mode but draws nothing."""

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode

    def render(self) -> None:
        return None


gym.register("BlankRender-v0", entry_point=BlankRender, max_episode_steps=20)


class DotImage(gym.Env):
    """A contextual bandit seen in pixels: a bright 2x2 dot at a random place on a dark
    (1, 12, 12) uint8 image. Continuous: the action in [-1, 1]^2 should name the dot's
    place (reward minus the L1 distance: about -1.3 at random, 0 when exact). Discrete:
    the action should name the half the dot is in (reward 1, else 0; 0.5 at random).
    Every episode is one step, so what is learnt is to read the image."""

    observation_space = gym.spaces.Box(0, 255, (1, 12, 12), np.uint8)
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, discrete: bool = False, render_mode: str | None = None) -> None:
        self.discrete = discrete
        self.render_mode = render_mode
        self.action_space = (
            gym.spaces.Discrete(2) if discrete else gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        )
        self.corner = np.zeros(2, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.corner = self.np_random.integers(0, 11, size=2)
        return self._image(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.discrete:
            reward = float(int(action) == int(self.corner[1] >= 5))
        else:
            place = self.corner / 10.0 * 2.0 - 1.0
            reward = -float(np.abs(np.asarray(action, dtype=np.float64) - place).sum())
        return self._image(), reward, True, False, {}

    def _image(self) -> np.ndarray:
        image = np.zeros((1, 12, 12), dtype=np.uint8)
        row, column = self.corner
        image[0, row : row + 2, column : column + 2] = 255
        return image

    def render(self) -> np.ndarray:
        return np.repeat(self._image()[0][:, :, None], 3, axis=2)


gym.register("DotImage-v0", entry_point=DotImage, max_episode_steps=1)
gym.register(
    "DotImageDiscrete-v0", entry_point=DotImage, kwargs={"discrete": True}, max_episode_steps=1
)


class FloatDotImage(DotImage):
    """DotImage's pixels as float32 in [0, 1]: a CNN, which scales uint8 pixels itself,
    refuses them."""

    observation_space = gym.spaces.Box(0.0, 1.0, (1, 12, 12), np.float32)

    def _image(self) -> np.ndarray:
        return super()._image().astype(np.float32) / 255.0


class ChannelsLastDotImage(DotImage):
    """DotImage as a (12, 12, 3) RGB image, channels last: a CNN reads channels first."""

    observation_space = gym.spaces.Box(0, 255, (12, 12, 3), np.uint8)

    def _image(self) -> np.ndarray:
        return np.repeat(super()._image()[0][:, :, None], 3, axis=2)

    def render(self) -> np.ndarray:
        return self._image()


for name, image_env in [
    ("FloatDotImage", FloatDotImage),
    ("ChannelsLastDotImage", ChannelsLastDotImage),
]:
    gym.register(
        f"{name}-v0", entry_point=image_env, kwargs={"discrete": True}, max_episode_steps=1
    )
