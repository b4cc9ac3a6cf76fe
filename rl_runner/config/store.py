"""Registers the schemas in Hydra's ConfigStore.

Each YAML option names its schema in its defaults list (`- dqn_schema`), so Hydra
rejects an unknown key or a wrongly typed value while composing, before any run
directory exists.
"""

from hydra.core.config_store import ConfigStore

from rl_runner.config.schema import OPTION_SCHEMAS, EnvConfig, RunConfig


def register_schemas() -> None:
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    store.store(group="env", name="env_schema", node=EnvConfig)
    for group, options in OPTION_SCHEMAS.items():
        for option_name, schema in options.items():
            store.store(group=group, name=f"{option_name}_schema", node=schema)
