"""The one place that turns a composed config into objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rl_runner.agents.base import Agent
from rl_runner.agents.dqn import DQN
from rl_runner.buffers.replay import ReplayBuffer
from rl_runner.checkpoint import CHECKPOINT_DIR, Checkpointer
from rl_runner.config.schema import (
    DQNConfig,
    EnvConfig,
    MLPConfig,
    ReplayConfig,
    RunConfig,
    schema_for,
)
from rl_runner.envs.batch import EnvBatch
from rl_runner.envs.factory import env_factory
from rl_runner.errors import ConfigError
from rl_runner.evaluator import Evaluator
from rl_runner.networks.mlp import mlp
from rl_runner.seeding import seed_global_rngs
from rl_runner.trainer import Schedule, Trainer

GROUPS = ("algo", "env", "network", "buffer")


@dataclass(frozen=True)
class Settings:
    """A run's config as validated, typed objects."""

    run: RunConfig
    algo: Any
    env: EnvConfig
    network: Any
    buffer: Any

    @property
    def eval_seed(self) -> int:
        return self.run.seed + 100 if self.run.eval.seed is None else self.run.eval.seed


def _to_schema(schema: type, node: Any, prefix: str) -> Any:
    """Validate `node` against dataclass `schema` and return the dataclass instance."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), node))
    except OmegaConfBaseException as err:
        key = f"{prefix}{err.full_key}" if err.full_key else prefix.rstrip(".")
        message = str(getattr(err, "msg", err)).strip().splitlines()[0]
        raise ConfigError(f"{key}: {message}") from err


def validate(cfg: DictConfig) -> Settings:
    """Every section checked against its schema (also for configs read back from a run)."""
    groups = {}
    for group in GROUPS:
        node = cfg.get(group)
        if not isinstance(node, DictConfig) or "name" not in node:
            raise ConfigError(f"{group}: missing config group (choose an option: {group}=...)")
        groups[group] = _to_schema(schema_for(group, node.name), node, f"{group}.")
    run = _to_schema(RunConfig, cfg, "")
    return Settings(run=run, **groups)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available")
    return device


def configure_torch(threads: int) -> None:
    torch.set_num_threads(threads)
    # Subnormal floats (Adam moments of dead units decay into them) slow CPU math
    # several-fold; flushing them to zero changes nothing a learning curve can see.
    torch.set_flush_denormal(True)


# -- agents ---------------------------------------------------------------------
def _flat_observation_size(space: gym.Space, settings: Settings) -> int:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(
            f"network={settings.network.name} needs a flat Box observation space; "
            f"env.id={settings.env.id} has {space}"
        )
    return int(space.shape[0])


def build_dqn(settings: Settings, envs: EnvBatch, device: torch.device) -> DQN:
    algo: DQNConfig = settings.algo
    network: MLPConfig = settings.network
    buffer: ReplayConfig = settings.buffer
    action_space = envs.action_space
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"algo=dqn needs a discrete action space; env.id={settings.env.id} has {action_space}"
        )
    obs_size = _flat_observation_size(envs.observation_space, settings)
    num_actions = int(action_space.n)
    q_network = mlp(obs_size, network.hidden_sizes, num_actions, network.activation.value)
    replay = ReplayBuffer(
        capacity=buffer.capacity,
        obs_shape=(obs_size,),
        obs_dtype=np.float32,
        action_shape=(),
        action_dtype=np.int64,
        seed=settings.run.seed,
        device=device,
    )
    return DQN(
        algo,
        q_network,
        replay,
        batch_size=buffer.batch_size,
        num_actions=num_actions,
        seed=settings.run.seed,
        device=device,
    )


AGENT_BUILDERS: dict[str, Callable[[Settings, EnvBatch, torch.device], Agent]] = {
    "dqn": build_dqn,
}


# -- the run --------------------------------------------------------------------
def build_trainer(settings: Settings, run_dir: Path, checkpoint: dict[str, Any] | None) -> Trainer:
    """Objects for a run; `checkpoint` (already loaded) restores a resumed one.

    Nothing is written to `run_dir` until every object is built and restored, so a
    bad config or an incompatible checkpoint leaves an existing run untouched.
    """
    run = settings.run
    configure_torch(run.threads)
    device = resolve_device(run.device)
    seed_global_rngs(run.seed)
    make_env = env_factory(settings.env.id, settings.env.kwargs, settings.env.max_episode_steps)
    envs = EnvBatch(make_env, settings.env.num_envs, run.seed)
    agent = AGENT_BUILDERS[settings.algo.name](settings, envs, device)
    evaluator = Evaluator(make_env, run.eval.episodes, settings.eval_seed)
    schedule = Schedule(
        total_steps=run.trainer.total_steps,
        log_every=run.trainer.log_every,
        stop_at_eval_return=run.trainer.stop_at_eval_return,
        eval_every=run.eval.every,
        checkpoint_every=run.checkpoint.every,
    )
    checkpointer = Checkpointer(run_dir / CHECKPOINT_DIR, run.checkpoint.keep_last)
    trainer = Trainer(
        agent, envs, evaluator, checkpointer, schedule, run_dir, _config_markdown(settings)
    )
    if checkpoint is not None:
        try:
            trainer.load_state_dict(checkpoint)
        except (KeyError, ValueError, RuntimeError) as err:
            detail = " ".join(str(err).split())  # torch's messages span lines
            if len(detail) > 240:
                detail = detail[:240] + "..."
            raise ConfigError(
                f"resume: the checkpoint does not fit this config ({detail})"
            ) from err
    return trainer


def _config_markdown(settings: Settings) -> str:
    tree = {"run": settings.run, **{group: getattr(settings, group) for group in GROUPS}}
    yaml = OmegaConf.to_yaml(OmegaConf.structured(tree))
    # TensorBoard renders text as markdown; indenting keeps the YAML verbatim.
    return "\n".join("    " + line for line in yaml.splitlines())
