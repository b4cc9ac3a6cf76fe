"""The Arcade Learning Environment with the preprocessing of the DQN papers (env=atari).

The wrapper chain, innermost first:

1. ALE's own env (`ale_py`), one emulator frame per step;
2. Gymnasium's `StickyAction`: on each frame, with `repeat_action_probability`, the
   previous frame's action instead of the agent's (Machado et al. 2018). ALE can do
   this itself, but its state cloning leaves out the previous action, so a resumed
   emulator would repeat a different one: here it is wrapper state, in checkpoints;
3. Gymnasium's `AtariPreprocessing`: up to `noop_max` no-op actions at the start of a
   game, each action repeated on `frame_skip` frames with the last two frames
   max-pooled, the screen turned grayscale and resized to `screen_size` squared;
4. `TimeLimit` at `env.max_episode_steps` agent steps, where one is set;
5. `AtariGame` (below): FIRE at the start of each life in games that need it, and for
   training envs only, a life lost ends the learning episode and rewards are clipped
   to their sign; the game's own score and end travel in `info`;
6. Gymnasium's `FrameStackObservation`: the last `frame_stack` frames, (k, 84, 84) uint8.

Evaluation envs play whole games with raw rewards, so their returns are the scores
the papers report.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, StickyAction, TimeLimit

from rl_runner.config.schema import AtariConfig
from rl_runner.errors import ConfigError

# info keys of an AtariGame step: the unclipped reward, and whether the game (not just
# a life) ended; the trainer reports episodes by them (envs/batch.py)
SCORE_KEY, GAME_OVER_KEY = "score", "game_over"
INSTALL_HINT = "pip install 'rl-runner[atari]' (ale-py and OpenCV)"


def register_ale() -> None:
    """ALE's ids (`ALE/Breakout-v5`, `BreakoutNoFrameskip-v4`) registered with Gymnasium,
    in this process; each process that makes an Atari env calls it."""
    try:
        import ale_py
    except ImportError:
        raise ConfigError(f"env=atari needs ale-py: {INSTALL_HINT}") from None
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on stderr
    gym.register_envs(ale_py)


def _check_is_atari(env_id: str) -> None:
    try:
        entry_point = str(gym.spec(env_id).entry_point)
    except gym.error.Error:  # an unknown id: making it says so, with Gymnasium's hints
        return
    if not entry_point.startswith("ale_py"):
        raise ConfigError(
            f"env.id: {env_id} is not an Atari game; env=atari takes ALE ids "
            "(ALE/Breakout-v5, BreakoutNoFrameskip-v4), env=gym any other"
        )


class AtariGame(gym.Wrapper):
    """Lives, FIRE and rewards as the DQN papers train on them.

    A life lost is followed at once, in the same step, by the FIRE that starts the next
    life (in games that have FIRE; `fire`). `end_on_life_loss`: that life lost also
    ends the learning episode (terminated), and the reset that follows continues the
    same game from where it is rather than starting a new one. `clip_rewards`: the
    reward learnt from is its sign. Every step's info holds the game's own reward
    (`score`) and whether the game itself ended (`game_over`).
    """

    def __init__(
        self, env: gym.Env, end_on_life_loss: bool, clip_rewards: bool, fire: bool
    ) -> None:
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
        self.fire_action = meanings.index("FIRE") if fire and "FIRE" in meanings else None
        self.end_on_life_loss = end_on_life_loss
        self.clip_rewards = clip_rewards
        self.lives = 0
        # the last episode ended at a life lost, not with the game: where the game stands
        self.mid_game: tuple[Any, dict[str, Any]] | None = None

    def _lives(self) -> int:
        return int(self.env.unwrapped.ale.lives())  # type: ignore[attr-defined]

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        continued, self.mid_game = self.mid_game, None
        if continued is not None and kwargs.get("seed") is None:
            return continued
        obs, info = self.env.reset(**kwargs)
        if self.fire_action is not None:
            obs, _, _, _, info = self.env.step(self.fire_action)
        self.lives = self._lives()
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        score = float(reward)
        lives = self._lives()
        life_lost, self.lives = lives < self.lives, lives
        if life_lost and not (terminated or truncated) and self.fire_action is not None:
            obs, fire_reward, terminated, truncated, info = self.env.step(self.fire_action)
            score += float(fire_reward)
            self.lives = self._lives()
        game_over = terminated or truncated
        info = {**info, SCORE_KEY: score, GAME_OVER_KEY: game_over}
        if life_lost and not game_over and self.end_on_life_loss:
            terminated, self.mid_game = True, (obs, info)
        learned = float(np.sign(score)) if self.clip_rewards else score
        return obs, learned, terminated, truncated, info


def make_atari(
    env_id: str,
    atari: AtariConfig,
    kwargs: dict[str, Any],
    max_episode_steps: int | None,
    training: bool,
) -> gym.Env:
    """An ALE game preprocessed as `atari` says; `training` envs end episodes at a life
    lost and clip rewards (where `atari` asks), others play whole games for their score."""
    from rl_runner.envs.factory import make_env

    register_ale()
    _check_is_atari(env_id)
    emulator = {
        **kwargs,
        "frameskip": 1,  # AtariPreprocessing skips and max-pools the frames itself
        "repeat_action_probability": 0.0,  # StickyAction's
        "full_action_space": atari.full_action_space,
    }
    env = make_env(env_id, emulator, None)
    if atari.repeat_action_probability > 0:
        env = StickyAction(env, atari.repeat_action_probability)
    try:
        env = AtariPreprocessing(
            env,
            noop_max=atari.noop_max,
            frame_skip=atari.frame_skip,
            screen_size=atari.screen_size,
            terminal_on_life_loss=False,  # AtariGame's, for training envs only
            grayscale_obs=True,
        )
    except gym.error.DependencyNotInstalled:
        raise ConfigError(f"env=atari needs OpenCV: {INSTALL_HINT}") from None
    if max_episode_steps is not None:
        env = TimeLimit(env, max_episode_steps)
    env = AtariGame(
        env,
        end_on_life_loss=training and atari.terminal_on_life_loss,
        clip_rewards=training and atari.clip_rewards,
        fire=atari.fire_on_reset,
    )
    return FrameStackObservation(env, atari.frame_stack, padding_type="reset")
