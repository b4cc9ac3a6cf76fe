"""What a resumed run may change, and the saved config with those changes applied.

A checkpoint holds environments, networks and a replay memory of a fixed shape, and
random generators that carry on from the run's seed. A key that shapes any of them
is refused on resume; the schedule, evaluation, checkpointing, hardware and the
algorithm's hyperparameters may change, and apply from the resumed step on
(`.hydra/resumes.yaml` records each change with its step). A value equal to the
saved one is always accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rl_runner.config.compose import (
    as_int_override,
    integral_value,
    is_integral_float,
    parse_overrides,
)
from rl_runner.config.settings import GROUPS, Settings, is_int_field, validate
from rl_runner.errors import ConfigError
from rl_runner.registry import algorithm
from rl_runner.rundir import SAVED_CONFIG

CHANGEABLE_PREFIXES = ("trainer.", "eval.", "checkpoint.", "algo.", "sweep.", "tracking.")
# the vectorisation mode: the same envs' states restore in this process or in workers
CHANGEABLE_KEYS = ("device", "threads", "env.vectorization_mode")
FIXED_KEYS = {
    "algo.optimizer": "the checkpoint holds that optimiser's state",
    "algo.amsgrad": "the checkpoint holds the optimiser's state without or with its extra moments",
    "algo.alpha": "a learnt temperature and a fixed one keep different state in the checkpoint",
    "algo.name": "a resumed run keeps its algorithm",
    "algo.baseline": "the checkpoint holds the learnt baseline, or none",
    "algo.q_init_high": "it only sets the initial values of a table the checkpoint holds",
    "algo.theta_init": "it only sets the initial values of a table the checkpoint holds",
}
TRACKING_GROUP = "tracking"  # a group of its own: changeable on resume, by its keys
FIXED_REASONS = {
    "env": "it shapes the training environments the checkpoint restores",
    "network": "it shapes the networks the checkpoint holds",
    "buffer": "it shapes the replay memory the checkpoint holds",
    "seed": "the checkpoint's random generators carry on from the saved seed",
}
# Keys added after runs were first saved, whose defaults are what those runs did: their
# absence from an older saved config is no reason to refuse its resume.
KEYS_ADDED_LATER = {
    "sweep",
    "sweep.objective",
    "algo.target_update_unit",
    "algo.epsilon.factor",
    "algo.epsilon.unit",
    "env.vectorization_mode",
    "env.entry_point",
    "eval.max_episode_steps",
}
_ABSENT = object()


def load_saved_config(run_dir: Path, context: str = "resume: ") -> tuple[DictConfig, Settings]:
    """A run directory's saved config, read and validated, with one-line errors
    (prefixed by `context`)."""
    path = run_dir / SAVED_CONFIG
    try:
        saved = OmegaConf.load(path)
    except (yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError) as error:
        reason = " ".join(str(error).split())[:200]
        raise ConfigError(f"{context}{path} is not valid YAML ({reason})") from error
    except OSError as error:
        raise ConfigError(f"{context}cannot read {path} ({error.strerror})") from error
    if not isinstance(saved, DictConfig):
        raise ConfigError(f"{context}{path} is not a config mapping")
    try:
        settings = validate(saved)
    except ConfigError as error:
        raise ConfigError(f"{context}the saved config {path} is invalid: {error}") from error
    missing = sorted(
        _key_paths(_schema_tree(settings)) - _key_paths(_plain(saved)) - KEYS_ADDED_LATER
    )
    if missing:  # a default would silently stand in for what the run used
        raise ConfigError(f"{context}the saved config {path} lacks {', '.join(missing[:5])}")
    return saved, settings


def _schema_tree(settings: Settings) -> dict[str, Any]:
    """Every key the schemas define for this run, as plain data."""
    run = OmegaConf.to_container(OmegaConf.structured(settings.run), enum_to_str=True)
    assert isinstance(run, dict)
    tree = {str(key): value for key, value in run.items()}
    for group in GROUPS:
        if getattr(settings, group) is not None:  # groups the algorithm reads
            tree[group] = OmegaConf.to_container(
                OmegaConf.structured(getattr(settings, group)), enum_to_str=True
            )
    return tree


def _key_paths(node: Any, prefix: str = "") -> set[str]:
    """`{"a": {"b": 1}}` -> {"a", "a.b"}."""
    if not isinstance(node, dict):
        return set()
    paths = set()
    for key, value in node.items():
        path = f"{prefix}{key}"
        paths |= {path, *_key_paths(value, f"{path}.")}
    return paths


def _fixed_keys(algo_name: str) -> dict[str, str]:
    """Keys no resume may change, with the reason: everyone's and the algorithm's own."""
    return {**FIXED_KEYS, **dict(algorithm(algo_name).fixed_on_resume)}


def _is_changeable(key: str, algo_name: str) -> bool:
    return key not in _fixed_keys(algo_name) and (
        key in CHANGEABLE_KEYS or key.startswith(CHANGEABLE_PREFIXES)
    )


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _check_key(override: Override, saved: DictConfig) -> str:
    key = override.key_or_group
    top = key.split(".")[0]
    if override.is_sweep_override():
        raise ConfigError(f"{key}: a resumed run takes single values, not a sweep")
    if override.is_delete():
        raise ConfigError(f"{key}: keys cannot be deleted from a resumed run")
    if top == "hydra" or top.startswith("hydra/"):
        raise ConfigError(f"{key}: a resumed run keeps its directory and Hydra settings")
    if key in GROUPS and override.package is None and saved[key].get("name") == override.value():
        return key  # the option the run already has
    if key == TRACKING_GROUP and override.package is None:
        if saved[key].get("backend") == override.value():
            return key  # the tracker the run already has
        raise ConfigError(
            f"{key}: a resumed run changes its tracker by keys, not the {key}= option: "
            f"{key}.backend={override.value()} (and {key}.mode=..., {key}.project=...)"
        )
    if key in GROUPS or override.package is not None:
        raise ConfigError(f"{key}: a resumed run keeps its {key} option; override its keys instead")
    if top not in saved:
        raise ConfigError(f"{key}: not a key of the saved config (a resumed run keeps its presets)")
    return key


def apply_resume_overrides(
    saved: DictConfig, saved_settings: Settings, overrides: list[str]
) -> tuple[DictConfig, list[str]]:
    """The saved config with the command line's `key=value` overrides applied, and the
    overrides that changed something."""
    merged = saved.copy()
    changes = []
    for override in parse_overrides(overrides):
        if override.key_or_group == "resume":
            continue
        key = _check_key(override, saved)
        if key in (*GROUPS, TRACKING_GROUP):
            continue  # the same option as saved (anything else was refused)
        value = override.value()
        text = f"{key}={override.get_value_element_as_str()}"
        if is_integral_float(override) and is_int_field(saved_settings, key):
            text = as_int_override(override)
            value = integral_value(override)
        if _plain(OmegaConf.select(saved, key, default=_ABSENT)) == value:
            continue  # unchanged: nothing to refuse
        if not _is_changeable(key, saved_settings.algo.name):
            reason = _fixed_keys(saved_settings.algo.name).get(key) or FIXED_REASONS.get(
                key.split(".")[0], "the checkpoint depends on it"
            )
            raise ConfigError(
                f"{key}: cannot change when resuming ({reason}); start a new run instead"
            )
        OmegaConf.update(merged, key, value, force_add=True)
        changes.append(text)
    try:  # saved resolved, like the original: `${oc.env:...}` must not change meaning later
        resolved = OmegaConf.create(OmegaConf.to_container(merged, resolve=True))
    except OmegaConfBaseException as error:
        message = str(error).strip().splitlines()[0]
        raise ConfigError(f"resume: cannot resolve an interpolation ({message})") from error
    assert isinstance(resolved, DictConfig)
    return resolved, changes
