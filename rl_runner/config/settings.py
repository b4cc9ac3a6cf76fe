"""A composed config checked against the schemas, as typed objects.

Used for fresh runs, for configs read back from a run directory, and for every job
of a sweep, before anything is built or written.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rl_runner.config.schema import (
    BUFFER_SCHEMAS,
    NETWORK_SCHEMAS,
    EnvConfig,
    RunConfig,
    require,
)
from rl_runner.errors import ConfigError
from rl_runner.registry import algorithm

GROUPS = ("algo", "env", "network", "buffer")
SEED_LIMIT = 2**32  # numpy's and Gymnasium's seeds are unsigned 32-bit
DEFAULT_EVAL_SEED_OFFSET = 100


@dataclass(frozen=True)
class Settings:
    """A run's config as validated, typed objects."""

    run: RunConfig
    algo: Any
    env: EnvConfig
    network: Any  # None for an algorithm that declares no network group
    buffer: Any  # None for an algorithm that declares no buffer group

    @property
    def eval_seed(self) -> int:
        if self.run.eval.seed is None:
            return self.run.seed + DEFAULT_EVAL_SEED_OFFSET
        return self.run.eval.seed


def _to_schema(schema: type, node: Any, prefix: str) -> Any:
    """Validate `node` against dataclass `schema` and return the dataclass instance.

    The node is turned into plain data first: merging a node Hydra already typed would
    let keys added with `+`/`++` through unchecked.
    """
    try:
        plain = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), plain))
    except OmegaConfBaseException as err:
        key = f"{prefix}{err.full_key}" if err.full_key else prefix.rstrip(".")
        message = str(getattr(err, "msg", err)).strip().splitlines()[0]
        if "not in" in message:
            source = schema.__module__.replace(".", "/") + ".py"
            message = f"unknown key ({schema.__name__} has no such field; see {source})"
        raise ConfigError(f"{key}: {message}") from None


def flat_config(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as `{"algo.lr": 0.001, ...}`; lists become their JSON text."""
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(flat_config(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): json.dumps(node) if isinstance(node, list) else node}


def schema_for(group: str, option_name: str) -> type:
    """The dataclass that validates option `option_name` of `group`."""
    if group == "env":
        return EnvConfig
    if group == "algo":
        return algorithm(option_name).schema
    known = NETWORK_SCHEMAS if group == "network" else BUFFER_SCHEMAS
    require(
        option_name in known,
        f"{group}.name",
        f"unknown {group} {option_name!r} (known: {', '.join(sorted(known))})",
    )
    return known[option_name]


def groups_of(algo_name: str) -> tuple[str, ...]:
    """The groups a run of `algo_name` reads: algo, env and those it declares."""
    return ("algo", "env", *algorithm(algo_name).groups)


def check_groups_read(algo_name: str, keys: list[str]) -> None:
    """Refuse a command-line setting in a group the algorithm does not read (a tabular
    agent's `network.hidden_sizes`): it would be saved with the run and do nothing."""
    read = groups_of(algo_name)
    for key in keys:
        group = key.lstrip("+~").split(".")[0]
        if group in GROUPS and group not in read:
            raise ConfigError(
                f"{key}: algo={algo_name} has no {group} (it reads {', '.join(read)}); "
                "leave this setting out"
            )


def validate(cfg: DictConfig) -> Settings:
    """Every section checked against its schema, then the settings checked together.
    Groups the algorithm does not declare are left out (None)."""
    algo_node = cfg.get("algo")
    algo_name = algo_node.get("name") if isinstance(algo_node, DictConfig) else None
    used = groups_of(str(algo_name)) if algo_name else GROUPS
    groups: dict[str, Any] = dict.fromkeys(GROUPS)
    for group in used:
        node = cfg.get(group)
        if not isinstance(node, DictConfig) or "name" not in node:
            raise ConfigError(f"{group}: missing config group (choose an option: {group}=...)")
        groups[group] = _to_schema(schema_for(group, node.name), node, f"{group}.")
    run = _to_schema(RunConfig, cfg, "")
    settings = Settings(run=run, **groups)
    check_combinations(settings)
    return settings


def check_combinations(settings: Settings) -> None:
    """Settings that are valid one by one but make learning impossible together."""
    run, buffer = settings.run, settings.buffer
    batch_size, capacity = getattr(buffer, "batch_size", None), getattr(buffer, "capacity", None)
    if batch_size is not None and capacity is not None:
        require(
            batch_size <= capacity,
            "buffer.batch_size",
            f"{batch_size} is larger than buffer.capacity {capacity}: no batch could be sampled",
        )
    own_check = algorithm(settings.algo.name).check
    if own_check is not None:
        own_check(settings)
    total = run.trainer.total_steps
    never = f"is not below trainer.total_steps {total}: the run would end before its first update"
    for key, value in (
        ("algo.learning_starts", getattr(settings.algo, "learning_starts", None)),
        ("algo.train_freq", getattr(settings.algo, "train_freq", None)),
        ("buffer.batch_size", batch_size),
    ):
        if value is not None:
            require(
                value < total or (key == "algo.train_freq" and value == total),
                key,
                f"{value} {never}",
            )
    require(
        settings.env.num_envs <= total,
        "env.num_envs",
        f"{settings.env.num_envs} envs take more than trainer.total_steps {total} in one step",
    )
    require(
        run.seed + settings.env.num_envs <= SEED_LIMIT,
        "seed",
        f"training env k is seeded with seed + k, which must stay below 2**32 ({SEED_LIMIT})",
    )
    eval_option = "eval.seed" if run.eval.seed is not None else "seed"
    require(
        settings.eval_seed + run.eval.episodes <= SEED_LIMIT,
        eval_option,
        "evaluation episode k is seeded with "
        + ("eval.seed" if run.eval.seed is not None else f"seed + {DEFAULT_EVAL_SEED_OFFSET}")
        + f" + k, which must stay below 2**32 ({SEED_LIMIT})",
    )


def is_int_field(settings: Settings, key: str) -> bool:
    """Whether the schema types `key` (e.g. `trainer.total_steps`) as an int."""
    first, *rest = key.split(".")
    node: Any = getattr(settings, first) if first in GROUPS else settings.run
    path = rest if first in GROUPS else [first, *rest]
    hint: Any = None
    for name in path:
        if not dataclasses.is_dataclass(node) or not hasattr(node, name):
            return False
        hint = typing.get_type_hints(type(node))[name]
        node = getattr(node, name)
    return hint is int or hint == (int | None)
