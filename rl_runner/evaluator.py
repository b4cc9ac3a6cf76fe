"""Fixed-seed evaluation of the greedy policy on separate environments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from rl_runner.envs.batch import action_masks
from rl_runner.envs.factory import EnvFactory
from rl_runner.video import FrameRecorder, VideoRecording

# (observations, legal-action masks or None) -> actions
Policy = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]
# where neither eval.max_episode_steps nor the env bounds an evaluation episode
UNLIMITED_ENV_EVAL_STEPS = 10_000


def env_time_limit(env: gym.Env) -> int | None:
    return env.spec.max_episode_steps if env.spec is not None else None


def episode_step_cap(env: gym.Env, configured: int | None) -> int:
    """Where a greedy episode ends at the latest: eval.max_episode_steps, else the env's
    time limit, else UNLIMITED_ENV_EVAL_STEPS (a greedy policy can loop forever)."""
    return configured or env_time_limit(env) or UNLIMITED_ENV_EVAL_STEPS


@dataclass(frozen=True)
class EvalResult:
    returns: np.ndarray
    lengths: np.ndarray
    video: FrameRecorder | None = None  # episode 0's frames, where this evaluation filmed it

    @property
    def return_mean(self) -> float:
        return float(self.returns.mean())

    def metrics(self) -> dict[str, float]:
        return {
            "eval/return_mean": self.return_mean,
            "eval/return_std": float(self.returns.std()),
            "eval/return_min": float(self.returns.min()),
            "eval/return_max": float(self.returns.max()),
            "eval/length_mean": float(self.lengths.mean()),
        }


class Evaluator:
    """Runs `episodes` episodes at once, one env each, episode k reset with seed + k.

    The seeds are the same at every call, so evaluations compare across time and
    across runs. Running the episodes side by side batches the policy's forward pass.
    An episode ends at `max_episode_steps` at the latest (by default the env's time
    limit or, for an env without one, UNLIMITED_ENV_EVAL_STEPS).
    """

    def __init__(
        self,
        factory: EnvFactory,
        episodes: int,
        seed: int,
        max_episode_steps: int | None = None,
        video: VideoRecording | None = None,
    ) -> None:
        self.envs = [factory() for _ in range(episodes)]
        self.seed = seed
        self.env_limit = env_time_limit(self.envs[0])
        self.max_episode_steps = episode_step_cap(self.envs[0], max_episode_steps)
        self.video = video
        self._video_env: gym.Env | None = None  # made at the first recording

    def run(
        self, policy: Policy, stop: Callable[[], bool] = lambda: False, record: bool = False
    ) -> EvalResult | None:
        """The episodes' returns and lengths; None where `stop()` turned true first. With
        `record`, episode 0 plays on a rendering copy of its env (the same seed, so the
        same episode) and its frames come back too."""
        envs, recorder = self._envs(record)
        count = len(envs)
        first = [env.reset(seed=self.seed + k) for k, env in enumerate(envs)]
        if recorder is not None:
            recorder.add(envs[0].render())
        obs = np.stack([np.asarray(obs) for obs, _ in first])
        masks = action_masks([info for _, info in first])
        returns = np.zeros(count)
        lengths = np.zeros(count, dtype=np.int64)
        running = np.ones(count, dtype=bool)
        while running.any():
            if stop():
                return None
            active = np.flatnonzero(running)
            actions = policy(obs[active], None if masks is None else masks[active])
            for env_index, action in zip(active, actions, strict=True):
                next_obs, reward, terminated, truncated, info = envs[env_index].step(action)
                if env_index == 0 and recorder is not None:
                    recorder.add(envs[0].render())
                obs[env_index] = next_obs
                if masks is not None:
                    masks[env_index] = info["action_mask"]
                returns[env_index] += reward
                lengths[env_index] += 1
                cut = lengths[env_index] >= self.max_episode_steps
                running[env_index] = not (terminated or truncated or cut)
        return EvalResult(returns=returns, lengths=lengths, video=recorder)

    def _envs(self, record: bool) -> tuple[list[gym.Env], FrameRecorder | None]:
        if not record or self.video is None:
            return self.envs, None
        if self._video_env is None:
            self._video_env = self.video.factory()
        config = self.video.config
        recorder = FrameRecorder(self.max_episode_steps, config.max_frames, config.size)
        return [self._video_env, *self.envs[1:]], recorder

    def close(self) -> None:
        for env in [*self.envs, self._video_env]:
            if env is not None:
                env.close()
