"""Experiment trackers: `tracking=mlflow` or `tracking=wandb` sends a run to a tracker
beside its own files (base.py: what they share; mlflow_run.py, wandb_run.py: each)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_runner.errors import ConfigError
from rl_runner.tracking.base import NoTracker, Tracker

if TYPE_CHECKING:
    from rl_runner.config.schema import TrackingConfig

__all__ = [
    "NoTracker",
    "Tracker",
    "check_tracking",
    "end_sweep",
    "make_tracker",
    "use_wandb_server",
]

INSTALL_HINTS = {
    "mlflow": "tracking=mlflow needs MLflow: pip install 'rl-runner[mlflow]'",
    "wandb": "tracking=wandb needs W&B: pip install 'rl-runner[wandb]'",
}
WANDB_LOGIN_HINT = (
    "tracking=wandb (tracking.mode=online) found no W&B login: run `wandb login`, set "
    "WANDB_API_KEY, or use tracking.mode=offline"
)


def check_tracking(config: TrackingConfig) -> None:
    """Before anything is written: the tracker's package is installed (and W&B online
    has a login: asked for here, where a terminal can answer, not mid-run)."""
    if config.backend == "none":
        return
    try:
        __import__(config.backend)
    except ImportError as error:
        raise ConfigError(f"{INSTALL_HINTS[config.backend]} ({error})") from None
    if config.backend == "wandb":
        _check_wandb(config)


def _check_wandb(config: TrackingConfig) -> None:
    import wandb

    if config.uri is not None and not config.uri.startswith(("http://", "https://")):
        raise ConfigError(
            f"tracking.uri: a W&B server is an http(s):// address, got {config.uri!r}"
        )
    if config.mode == "offline":
        return
    use_wandb_server(config.uri)
    terminal = sys.stdin.isatty()
    if not terminal:  # no one to ask: nor its notes on where the key came from
        os.environ.setdefault("WANDB_SILENT", "true")
    try:  # W&B asks for the key where a terminal can answer
        logged_in = wandb.login(verify=False, prompt=terminal)
    except (wandb.errors.UsageError, wandb.errors.AuthenticationError):
        raise ConfigError(WANDB_LOGIN_HINT) from None
    if not logged_in:
        raise ConfigError(WANDB_LOGIN_HINT)


def use_wandb_server(uri: str | None) -> None:
    """`tracking.uri` for this process only: W&B's own `host=` would write it into the
    user's W&B settings, where every later W&B call would go to it."""
    if uri is not None:
        os.environ["WANDB_BASE_URL"] = uri


def make_tracker(config: TrackingConfig, run_dir: Path, params: dict[str, Any]) -> Tracker:
    if config.backend == "mlflow":
        from rl_runner.tracking.mlflow_run import MlflowTracker

        return MlflowTracker(config, run_dir, params)
    if config.backend == "wandb":
        from rl_runner.tracking.wandb_run import WandbTracker

        return WandbTracker(config, run_dir, params)
    return NoTracker()


def end_sweep(sweep_dir: Path, status: str) -> None:
    """The sweep's own tracker run (MLflow's parent of its jobs' runs) ended with
    `status`; W&B's group of a sweep has no run of its own."""
    from rl_runner.tracking.mlflow_run import close_sweep_parent

    close_sweep_parent(sweep_dir, status)
