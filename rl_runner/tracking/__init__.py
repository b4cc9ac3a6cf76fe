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

__all__ = ["NoTracker", "Tracker", "check_tracking", "end_sweep", "make_tracker"]

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
    if config.backend == "wandb" and config.mode == "online":
        _check_wandb_login(config.uri)


def _check_wandb_login(server: str | None) -> None:
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")  # its notes on where the key came from
    try:
        logged_in = wandb.login(host=server, verify=False, prompt=sys.stdin.isatty())
    except (wandb.errors.UsageError, wandb.errors.AuthenticationError) as error:
        raise ConfigError(f"{WANDB_LOGIN_HINT} ({error})") from None
    if not logged_in:
        raise ConfigError(WANDB_LOGIN_HINT)


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
