"""Hydra's side of `rl-run`'s pre-flight: parsing the command line and composing configs.

`rl-run` composes and checks a run completely before it hands the command line to
`@hydra.main`, because Hydra creates the run directory and writes into it before the
task function runs: a refusal found only there would already have touched the disk.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, NoReturn

from hydra import compose, initialize_config_module
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, IntegerNode
from omegaconf.errors import OmegaConfBaseException

from rl_runner.config.settings import Settings, validate
from rl_runner.config.store import register_schemas
from rl_runner.errors import ConfigError

CONFIG_MODULE = "rl_runner.configs"
CONFIG_NAME = "config"
# Hydra's report of a preset's key that the composed group's schema lacks
_PRESET_KEY_ERROR = re.compile(
    r"In 'experiment/(\w+)': ConfigKeyError .*\n.*\n\s*full_key: ((\w+)\.[\w.]+)"
)
_FLOAT_LITERAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def parse_command_line(arguments: list[str]) -> argparse.Namespace:
    """Hydra's own flags (-m, --cfg, --help, ...) and the overrides, as Hydra reads them;
    a malformed command line is one ConfigError line, not argparse's usage text."""
    parser = get_args_parser()

    def refuse(message: str) -> NoReturn:
        hint = " (flags such as -m go before the overrides)" if "unrecognized" in message else ""
        raise ConfigError(f"{message}{hint}")

    parser.error = refuse  # type: ignore[method-assign]
    return parser.parse_args(arguments)


def parse_overrides(overrides: list[str]) -> list[Override]:
    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed.extend(parser.parse_overrides([text]))
        except HydraException as error:
            raise ConfigError(
                f"cannot parse {text!r}; put a value with spaces or special characters in "
                "quotes (key='value'), or see Hydra's override grammar"
            ) from error
    return parsed


def hydra_quote(text: str) -> str:
    """`text` as a single-quoted Hydra override value that parses back to `text` exactly
    (spaces, non-ASCII, quotes, '=' and ',' included). Hydra only treats backslashes
    as escapes where they precede a quote or end the string."""
    escaped = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), text)
    return f"'{escaped}'"


def compose_config(overrides: list[str]) -> DictConfig:
    """The config `@hydra.main` would compose for these overrides, `hydra` node included."""
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        try:
            return compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)
        except AssertionError as error:  # OmegaConf, setting a key inside a null section
            raise ConfigError(_inside_null_section(overrides)) from error
        except ValueError as error:  # Hydra's, for a config group given null (algo=null)
            if "Config group override" not in str(error):
                raise
            raise ConfigError(_null_group(overrides)) from error


def _inside_null_section(overrides: list[str]) -> str:
    """Which override set a key inside a section this config leaves null (env.atari
    for an env other than env=atari)."""
    nested = [text.split("=")[0].lstrip("+~") for text in overrides if "atari." in text]
    key = nested[0] if nested else "a setting"
    return (
        f"{key}: its section is null in this config (env.atari.* is for env=atari); "
        "leave the setting out, or choose the option that has it"
    )


def _null_group(overrides: list[str]) -> str:
    groups = [  # a group's key has no dots (algo, hydra/launcher); a setting's has
        override.key_or_group
        for override in parse_overrides(overrides)
        if override.value() is None
        and not override.is_delete()
        and "." not in override.key_or_group
    ]
    key = groups[0] if groups else "a config group"
    return f"{key}=null: name one of {key}'s options (rl-run --help lists them)"


def compose_settings(overrides: list[str]) -> Settings:
    """A run's validated settings from command-line overrides, without Hydra's own
    node (for tests and benchmarks that build a trainer in-process)."""
    register_schemas()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return validate(compose(CONFIG_NAME, overrides=overrides))


def sweep_jobs(overrides: list[Override]) -> list[list[str]]:
    """The override list of every job of a basic-sweeper multirun, in launch order."""
    (jobs,) = BasicSweeper.split_arguments(overrides, max_batch_size=None)
    return jobs


def _integral_literal(value: Any, text: str) -> bool:
    return isinstance(value, float) and value.is_integer() and bool(_FLOAT_LITERAL.match(text))


def is_integral_float(override: Override) -> bool:
    """`trainer.total_steps=1e6` (or a sweep `=1e5,2e5`): float literals with integral
    values (papers write step counts so); they may target an int field."""
    if override.is_delete():
        return False
    if override.is_sweep_override():
        sweep = override.value()
        texts = list(override.sweep_string_iterator()) if override.is_discrete_sweep() else []
        values = getattr(sweep, "list", None)
        return (
            bool(texts)
            and values is not None
            and all(
                _integral_literal(value, text) for value, text in zip(values, texts, strict=True)
            )
        )
    return _integral_literal(override.value(), override.get_value_element_as_str())


def integral_value(override: Override) -> int:
    value = override.value()
    assert isinstance(value, float)  # callers check is_integral_float first
    return int(value)


def is_int_node(config: DictConfig, key: str) -> bool:
    """Whether the composed (schema-typed) config holds an int field at `key`."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False
        node = node._get_node(part)
    return isinstance(node, IntegerNode)


def as_int_override(override: Override) -> str:
    if override.is_sweep_override():
        values = ",".join(str(int(float(text))) for text in override.sweep_string_iterator())
        return f"{override.get_key_element()}={values}"
    return f"{override.get_key_element()}={integral_value(override)}"


# Hydra's plugins bring their own config options; absent, the option is unknown to Hydra.
PLUGIN_EXTRAS = {
    "hydra/launcher/joblib": "sweep",
    "hydra/sweeper/optuna": "sweep",
    "hydra/launcher/submitit_slurm": "slurm",
    "hydra/launcher/submitit_local": "slurm",
}


def one_line(error: BaseException) -> str:
    """A Hydra / OmegaConf / runner error as a single line."""
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        text = f"cannot find config {error.missing_cfg_file!r}"
        options = [name for name in error.options or [] if not name.startswith("schema")]
        if options:
            text += f" (available: {', '.join(sorted(options))})"
        extra = PLUGIN_EXTRAS.get(error.missing_cfg_file)
        if extra is not None:
            text += f"; it is a Hydra plugin's: pip install 'rl-runner[{extra}]'"
        return text
    lines = str(error).strip().splitlines() or [type(error).__name__]
    text = lines[0]
    if text.endswith(":") and len(lines) > 1:  # "... raised while composing config:" + why
        text = f"{text} {lines[1].strip()}"
    cause = error.__cause__
    if isinstance(cause, OmegaConfBaseException) and str(cause).strip():
        text = f"{text.rstrip('.')}: {str(cause).strip().splitlines()[0]}"
    preset = _PRESET_KEY_ERROR.match(str(error))
    if preset is not None:  # `+experiment=X algo=Y`: the command line replaced X's algo
        name, key, group = preset.groups()
        return (
            f"+experiment={name} sets {key}, which the {group}= given does not have: "
            f"the preset chooses its own {group}; leave {group}= out"
        )
    # Hydra's "+key=value" hint helps for free-form dicts (env.kwargs), not typed groups.
    hints = [line.strip() for line in lines[1:] if line.startswith("To append")]
    return "; ".join([text, *hints]) if "not in struct" in text else text
