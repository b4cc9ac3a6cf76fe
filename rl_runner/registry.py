"""Every algorithm `rl-run` knows: one entry each, pairing its config schema with its agent.

Adding an algorithm is one schema in `config/algorithms.py`, one agent module with a
`build(settings, envs, device)` function, one YAML in `configs/algo/` and one entry
here; the tests parametrised over `ALGORITHMS` then cover it. The agent module is
named, not imported: composing a config, `--help` and every pre-flight check run
without loading torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rl_runner.config.algorithms import (
    A2CConfig,
    DDPGConfig,
    DQNConfig,
    PPOConfig,
    QLearningConfig,
    ReinforceConfig,
    SACConfig,
    SARSAConfig,
    TabularPGConfig,
    TD3Config,
    check_rollout,
)
from rl_runner.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from rl_runner.agents.base import Agent
    from rl_runner.config.settings import Settings
    from rl_runner.envs.batch import VectorEnv


@dataclass(frozen=True)
class Algorithm:
    schema: type
    agent_module: str  # defines build(settings, envs, device) -> Agent
    actions: Literal["discrete", "box", "discrete_or_box"]  # the action spaces it acts in
    # the groups besides algo and env it reads (a tabular agent needs no network)
    groups: tuple[str, ...]
    learning_rates: tuple[str, ...]  # its learning-rate keys, named in divergence advice
    # "vector": what its network reads (checked with the network group); "discrete": a
    # table index, so a Discrete observation space
    observations: Literal["vector", "discrete"] = "vector"
    # its agent keeps BatchNorm's statistics as they are meant to be (acting and targets
    # in eval mode, target statistics following): network.batch_norm is for it alone
    batch_norm: bool = False
    # keys of its own that a resume may not change, and why (config/resume.py)
    fixed_on_resume: tuple[tuple[str, str], ...] = ()
    on_policy: bool = False  # learns from rollouts of its current policy (PPO, A2C)
    # its own checks of the settings across groups, run with every validation
    check: Callable[[Settings], None] | None = None

    @property
    def memory(self) -> str | None:
        """What the checkpoint's replay part holds for it: a replay memory, the rollout in
        progress, or nothing (the tabular agents)."""
        if "buffer" in self.groups:
            return "replay memory"
        return "rollout in progress" if self.on_policy else None

    def builder(self) -> Callable[[Settings, VectorEnv, torch.device], Agent]:
        return importlib.import_module(self.agent_module).build  # type: ignore[no-any-return]


_ACTOR_CRITIC_RATES = ("algo.actor_lr", "algo.critic_lr")
_ON_POLICY_FIXED = (
    ("algo.shared_trunk", "it shapes the networks the checkpoint holds"),
    ("algo.n_steps", "it shapes the rollout the checkpoint holds"),
    (
        "algo.normalize_observations",
        "the policy learnt on observations normalised by the statistics the checkpoint "
        "holds, or on raw ones",
    ),
    (
        "algo.normalize_rewards",
        "the value function learnt on rewards scaled by the statistics the checkpoint "
        "holds, or on raw ones",
    ),
)


def _on_policy(schema: type, agent_module: str) -> Algorithm:
    """PPO and A2C: either action space, a network and no replay memory, a rollout."""
    return Algorithm(
        schema,
        agent_module,
        "discrete_or_box",
        ("network",),
        ("algo.lr",),
        fixed_on_resume=_ON_POLICY_FIXED,
        on_policy=True,
        check=check_rollout,
    )


def _actor_critic(schema: type, agent_module: str) -> Algorithm:
    """DDPG, TD3 and SAC: continuous actions, a replay memory, an actor and a critic."""
    return Algorithm(
        schema,
        agent_module,
        "box",
        ("network", "buffer"),
        _ACTOR_CRITIC_RATES,
    )


ALGORITHMS: dict[str, Algorithm] = {
    "dqn": Algorithm(
        DQNConfig,
        "rl_runner.agents.dqn",
        "discrete",
        ("network", "buffer"),
        ("algo.lr",),
        batch_norm=True,
    ),
    "ddpg": _actor_critic(DDPGConfig, "rl_runner.agents.ddpg"),
    "td3": _actor_critic(TD3Config, "rl_runner.agents.td3"),
    "sac": _actor_critic(SACConfig, "rl_runner.agents.sac"),
    "reinforce": Algorithm(
        ReinforceConfig,
        "rl_runner.agents.reinforce",
        "discrete",
        ("network",),
        ("algo.lr",),
    ),
    "ppo": _on_policy(PPOConfig, "rl_runner.agents.ppo"),
    "a2c": _on_policy(A2CConfig, "rl_runner.agents.a2c"),
    "q_learning": Algorithm(
        QLearningConfig, "rl_runner.agents.q_learning", "discrete", (), ("algo.lr",), "discrete"
    ),
    "sarsa": Algorithm(
        SARSAConfig, "rl_runner.agents.sarsa", "discrete", (), ("algo.lr",), "discrete"
    ),
    "tabular_pg": Algorithm(
        TabularPGConfig, "rl_runner.agents.tabular_pg", "discrete", (), ("algo.lr",), "discrete"
    ),
}


def acting_in(space: str) -> list[str]:
    """The algorithms that act in `space` ("discrete" or "box"), for refusal hints."""
    return sorted(name for name, entry in ALGORITHMS.items() if space in entry.actions)


def algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise ConfigError(
            f"algo.name: unknown algorithm {name!r} (known: {', '.join(sorted(ALGORITHMS))})"
        )
    return ALGORITHMS[name]
