"""Training environments stepped in lock-step, with explicit same-step autoreset.

The env protocol every adapter follows (this in-process batch, the subprocess workers
of `workers.py`): `single_observation_space`, `single_action_space`, `num_envs`,
`reset()`, `step(actions) -> BatchStep`, `state_dict()` / `load_state_dict()` (a list
of per-env snapshots, the same in every adapter, so a run may change its
vectorisation mode on resume) and `close()`. An adapter made with `exact=False`
(`checkpoint.exact=false`) snapshots what it can and lists the rest in the snapshot
(`snapshot.skipped_state`), as one that cannot snapshot its envs at all would.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np

from rl_runner.envs.atari import GAME_OVER_KEY, SCORE_KEY
from rl_runner.envs.factory import EnvFactory
from rl_runner.envs.snapshot import (
    env_state,
    restore_env_state,
    seed_space_generators,
    skipped_state,
)


class BatchStep(NamedTuple):
    """One step of every env. `next_obs` continues the episodes (reset where one ended);
    `final_obs` is what each action led to, the right successor for a stored transition.
    The masks are the legal actions at those observations (`info["action_mask"]`), or
    None for an env that does not report them. `scores` and `game_over` are what the
    logs report where it differs from what is learnt from (an Atari game's raw reward,
    and its end, where a life lost ends the learning episode): None where it does not."""

    next_obs: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray
    next_masks: np.ndarray | None = None
    final_masks: np.ndarray | None = None
    scores: np.ndarray | None = None
    game_over: np.ndarray | None = None

    @property
    def reported_rewards(self) -> np.ndarray:
        return self.rewards if self.scores is None else self.scores

    @property
    def reported_ends(self) -> np.ndarray:
        """Where the episodes the logs count end."""
        return self.terminated | self.truncated if self.game_over is None else self.game_over


def non_finite_output(step: BatchStep) -> str | None:
    """What a step returned that is NaN or infinite ("a reward of nan in env 0"), or
    None. Integer observations (pixels, discrete states) cannot be."""
    arrays = {"a reward": step.rewards, "an observation": step.final_obs}
    for kind, values in arrays.items():
        # every step: one check; the culprit is looked for only when it fails
        if values.dtype.kind != "f" or np.isfinite(values).all():
            continue
        env = int(np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))[0])
        bad = values[env][~np.isfinite(values[env])].flat[0]
        return f"{kind} of {bad} in env {env}"
    return None


def action_masks(infos: list[dict[str, Any]]) -> np.ndarray | None:
    """The envs' legal actions (Gymnasium's `info["action_mask"]`), stacked, or None."""
    if "action_mask" not in infos[0]:
        return None
    return np.stack([np.asarray(info["action_mask"], dtype=bool) for info in infos])


def reported_outcomes(infos: list[dict[str, Any]]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(scores, game over) from the envs' step infos, where the env reports them
    (`envs/atari.py`), else (None, None)."""
    if SCORE_KEY not in infos[0]:
        return None, None
    scores = np.array([info[SCORE_KEY] for info in infos], dtype=np.float32)
    return scores, np.array([info[GAME_OVER_KEY] for info in infos], dtype=bool)


def seeded_reset(env: gym.Env, seed: int) -> tuple[Any, dict[str, Any]]:
    """An env's first reset: it and its spaces' generators seeded with `seed`."""
    env.action_space.seed(seed)
    env.observation_space.seed(seed)
    seed_space_generators(env, seed)  # those of inner layers too
    return env.reset(seed=seed)


class EnvStep(NamedTuple):
    """One env's step with same-step autoreset: what the action led to, and the
    observation the episode continues from (a reset one where it ended)."""

    final_obs: Any
    reward: float
    terminated: bool
    truncated: bool
    final_info: dict[str, Any]
    next_obs: Any
    next_info: dict[str, Any]


def autoreset_step(env: gym.Env, action: Any) -> EnvStep:
    obs, reward, terminated, truncated, info = env.step(action)
    next_obs, next_info = obs, info
    if terminated or truncated:
        next_obs, next_info = env.reset()
    return EnvStep(obs, float(reward), bool(terminated), bool(truncated), info, next_obs, next_info)


def batch_step(steps: list[EnvStep]) -> BatchStep:
    """Every env's step stacked into arrays."""
    scores, game_over = reported_outcomes([step.final_info for step in steps])
    return BatchStep(
        next_obs=np.stack([np.asarray(step.next_obs) for step in steps]),
        rewards=np.array([step.reward for step in steps], dtype=np.float32),
        terminated=np.array([step.terminated for step in steps], dtype=bool),
        truncated=np.array([step.truncated for step in steps], dtype=bool),
        final_obs=np.stack([np.asarray(step.final_obs) for step in steps]),
        next_masks=action_masks([step.next_info for step in steps]),
        final_masks=action_masks([step.final_info for step in steps]),
        scores=scores,
        game_over=game_over,
    )


class VectorEnv(Protocol):
    """What the trainer, the agents and the checkpoint need of the training envs."""

    single_observation_space: gym.Space
    single_action_space: gym.Space

    @property
    def num_envs(self) -> int: ...

    def reset(self) -> tuple[np.ndarray, np.ndarray | None]: ...

    def step(self, actions: np.ndarray) -> BatchStep: ...

    def state_dict(self) -> list[Any]: ...

    def load_state_dict(self, state: list[Any]) -> None: ...

    def close(self) -> None: ...


def check_snapshot_count(state: list[Any], num_envs: int) -> None:
    if len(state) != num_envs:
        raise ValueError(f"checkpoint holds {len(state)} envs, the run has {num_envs}")


class EnvBatch:
    """`num_envs` copies of one environment, stepped in this process.

    A finished episode is reset inside `step`, so callers never see a stale
    observation. Each copy is seeded once, through its first `reset`, with
    seed + index; later resets continue its own generator.
    """

    def __init__(self, factory: EnvFactory, num_envs: int, seed: int, exact: bool = True) -> None:
        self.envs = [factory() for _ in range(num_envs)]
        self.seed = seed
        self.exact = exact
        self.single_observation_space: gym.Space = self.envs[0].observation_space
        self.single_action_space: gym.Space = self.envs[0].action_space

    @property
    def num_envs(self) -> int:
        return len(self.envs)

    def reset(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The first observations and their action masks (None without masks)."""
        first = [seeded_reset(env, self.seed + index) for index, env in enumerate(self.envs)]
        return np.stack([obs for obs, _ in first]), action_masks([info for _, info in first])

    def step(self, actions: np.ndarray) -> BatchStep:
        if len(self.envs) == 1:
            return self._step_one(actions[0])
        return batch_step(
            [autoreset_step(env, action) for env, action in zip(self.envs, actions, strict=True)]
        )

    def _step_one(self, action: Any) -> BatchStep:
        """The single-env case without per-step lists (same result as the general path)."""
        env = self.envs[0]
        obs, reward, terminated, truncated, info = env.step(action)
        final_obs = np.asarray(obs)[None]
        final_masks = action_masks([info])
        scores, game_over = reported_outcomes([info])
        next_obs, next_masks = final_obs, final_masks
        if terminated or truncated:
            obs, info = env.reset()
            next_obs, next_masks = np.asarray(obs)[None], action_masks([info])
        return BatchStep(
            next_obs=next_obs,
            rewards=np.array([reward], dtype=np.float32),
            terminated=np.array([terminated]),
            truncated=np.array([truncated]),
            final_obs=final_obs,
            next_masks=next_masks,
            final_masks=final_masks,
            scores=scores,
            game_over=game_over,
        )

    def state_dict(self) -> list[Any]:
        return [env_state(env, self.exact) for env in self.envs]

    def load_state_dict(self, state: list[Any]) -> None:
        check_snapshot_count(state, len(self.envs))
        if skipped_state(state):
            self.reset()  # what the snapshot lacks takes the values a reset gives it
        for env, env_snapshot in zip(self.envs, state, strict=True):
            restore_env_state(env, env_snapshot)

    def close(self) -> None:
        for env in self.envs:
            env.close()
