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
    DDPGConfig,
    DQNConfig,
    QLearningConfig,
    ReinforceConfig,
    SACConfig,
    SARSAConfig,
    TabularPGConfig,
    TD3Config,
)
from rl_runner.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from rl_runner.agents.base import Agent
    from rl_runner.config.settings import Settings
    from rl_runner.envs.batch import EnvBatch


@dataclass(frozen=True)
class Algorithm:
    schema: type
    agent_module: str  # defines build(settings, envs, device) -> Agent
    actions: Literal["discrete", "box"]  # the action space it can act in
    # the groups besides algo and env it reads (a tabular agent needs no network)
    groups: tuple[str, ...]
    learning_rates: tuple[str, ...]  # its learning-rate keys, named in divergence advice
    # "vector": what its network reads (checked with the network group); "discrete": a
    # table index, so a Discrete observation space
    observations: Literal["vector", "discrete"] = "vector"
    image_input: bool = False  # its network may be network=cnn, over image observations

    def builder(self) -> Callable[[Settings, EnvBatch, torch.device], Agent]:
        return importlib.import_module(self.agent_module).build  # type: ignore[no-any-return]


_ACTOR_CRITIC_RATES = ("algo.actor_lr", "algo.critic_lr")

ALGORITHMS: dict[str, Algorithm] = {
    "dqn": Algorithm(
        DQNConfig,
        "rl_runner.agents.dqn",
        "discrete",
        ("network", "buffer"),
        ("algo.lr",),
        image_input=True,
    ),
    "ddpg": Algorithm(
        DDPGConfig, "rl_runner.agents.ddpg", "box", ("network", "buffer"), _ACTOR_CRITIC_RATES
    ),
    "td3": Algorithm(
        TD3Config, "rl_runner.agents.td3", "box", ("network", "buffer"), _ACTOR_CRITIC_RATES
    ),
    "sac": Algorithm(
        SACConfig, "rl_runner.agents.sac", "box", ("network", "buffer"), _ACTOR_CRITIC_RATES
    ),
    "reinforce": Algorithm(
        ReinforceConfig, "rl_runner.agents.reinforce", "discrete", ("network",), ("algo.lr",)
    ),
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


def algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise ConfigError(
            f"algo.name: unknown algorithm {name!r} (known: {', '.join(sorted(ALGORITHMS))})"
        )
    return ALGORITHMS[name]
