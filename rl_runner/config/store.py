"""Registers the schemas in Hydra's ConfigStore.

Each YAML option extends its schema through its defaults list
(`- /schema/algo/dqn@_here_`), so Hydra rejects a wrongly typed value while composing.
The schemas live in their own `schema/<group>` groups, so they are never offered as
options of `algo`, `env`, ... themselves.
"""

import re

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from rl_runner.config.schema import (
    BUFFER_SCHEMAS,
    NETWORK_SCHEMAS,
    EnvConfig,
    RunConfig,
    entry_point_id,
)
from rl_runner.registry import ALGORITHMS


def path_label(text: str, keep: str = "") -> str:
    """`ALE/Pong-v5` -> `ALE-Pong-v5`: usable as part of a directory name. `keep`: other
    characters left as they are."""
    return re.sub(rf"[^\w.{re.escape(keep)}-]+", "-", text).strip("-") or "env"


def env_label(name: str, env_id: str) -> str:
    """The env part of a run directory name: the option's name, or for the options
    that take any id (`env=gym`, `env=atari`) the environment id."""
    return path_label(env_id if name in ("gym", "atari") else name)


def gym_env_id(entry_point: str | None, default: str) -> str:
    """`env=gym`'s id (configs/env/gym.yaml): the one its entry point is registered
    under where it has one, else `default`."""
    return default if entry_point is None else entry_point_id(entry_point)


# The default hydra.sweep.subdir (configs/config.yaml): job number, then swept values.
JOB_SUBDIR = "${job_dirname:${hydra.job.num},${hydra.job.override_dirname}}"
MAX_JOB_DIRNAME = 200  # bytes of UTF-8: file systems allow 255 per name


def job_dirname(number: int, swept: str) -> str:
    """A sweep job's directory name: its number, then its swept values (Hydra's
    `override_dirname`, sorted, which the pre-flight limits to the swept keys) with the
    seed last: `3_algo.lr=0.0003,seed=1`. The number keeps names unique (a long name is
    cut to MAX_JOB_DIRNAME bytes) and in job order, and lets a continued sweep find each
    job's directory."""
    items = swept.split(",") if swept else []
    seeds = [item for item in items if item.startswith("seed=")]
    values = ",".join([item for item in items if not item.startswith("seed=")] + seeds)
    name = f"{number}_{values}" if values else str(number)
    cut = path_label(name, keep="=,[]+").encode()[:MAX_JOB_DIRNAME]
    return cut.decode(errors="ignore")  # a character cut in two is left out


def register_schemas() -> None:
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    store.store(group="schema/env", name="env", node=EnvConfig)
    options = {
        "algo": {name: entry.schema for name, entry in ALGORITHMS.items()},
        "network": NETWORK_SCHEMAS,
        "buffer": BUFFER_SCHEMAS,
    }
    for group, schemas in options.items():
        for option_name, schema in schemas.items():
            store.store(group=f"schema/{group}", name=option_name, node=schema)
    OmegaConf.register_new_resolver("env_label", env_label, replace=True)
    OmegaConf.register_new_resolver("gym_env_id", gym_env_id, replace=True)
    OmegaConf.register_new_resolver("job_dirname", job_dirname, replace=True)
