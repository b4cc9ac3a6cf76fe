"""What the tools that read a run's policy share (rl-render, rl-export): choosing and
loading a checkpoint, refusing one from another kind of run, and the agent restored
from it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_runner.errors import ConfigError
from rl_runner.rundir import BEST_CHECKPOINT, CHECKPOINT_DIR, inside_run, periodic_checkpoints

if TYPE_CHECKING:
    import gymnasium as gym

    from rl_runner.agents.base import Agent
    from rl_runner.config.settings import Settings


def choose_checkpoint(run_dir: Path, choice: str) -> Path:
    """`best` (best.pt, else the newest), `latest`, or a checkpoint file's path."""
    directory = run_dir / CHECKPOINT_DIR
    newest = periodic_checkpoints(directory)
    if choice == "best" and (directory / BEST_CHECKPOINT).is_file():
        return directory / BEST_CHECKPOINT
    if choice in ("best", "latest"):
        if not newest:
            raise ConfigError(f"{run_dir} has no checkpoint yet")
        return newest[-1]
    path = Path(choice)
    if not path.is_file() and (directory / choice).is_file():
        path = directory / choice  # a name inside the run's checkpoints/
    if not path.is_file():
        raise ConfigError(f"--checkpoint: {choice} is not best, latest or a checkpoint file")
    return path


def load_chosen(run_dir: Path, choice: str) -> tuple[Path, dict[str, Any]]:
    """The chosen checkpoint and its content. A run still training may delete the newest
    file between the choice and the read (it keeps checkpoint.keep_last): choose again."""
    from rl_runner.checkpoint import load_checkpoint
    from rl_runner.errors import CheckpointError

    for last_try in (False, True):
        path = choose_checkpoint(run_dir, choice)
        try:
            return path, load_checkpoint(path)
        except CheckpointError as error:
            if last_try or path.exists() or choice not in ("best", "latest"):
                newest = periodic_checkpoints(run_dir / CHECKPOINT_DIR)
                other = path.name == BEST_CHECKPOINT and newest
                hint = f"; --checkpoint latest takes {newest[-1].name}" if other else ""
                raise ConfigError(f"{error}{hint}") from error
    raise AssertionError("unreachable")


def check_owner(run_dir: Path, settings: Settings, checkpoint: Path) -> None:
    """A checkpoint from another run must come from the same algorithm and env."""
    from rl_runner.config.resume import load_saved_config

    owner = inside_run(checkpoint)
    if owner is None or owner == run_dir.resolve():
        return
    _, theirs = load_saved_config(owner, context="--checkpoint: ")
    mine = (settings.algo.name, settings.env.id, settings.env.kwargs)
    if (theirs.algo.name, theirs.env.id, theirs.env.kwargs) != mine:
        raise ConfigError(
            f"--checkpoint: {checkpoint} belongs to {owner} (algo={theirs.algo.name}, "
            f"env {theirs.env.id} {dict(theirs.env.kwargs)}), not to a run like this one "
            f"(algo={settings.algo.name}, env {settings.env.id} {dict(settings.env.kwargs)})"
        )


def restored_agent(
    settings: Settings, state: dict[str, Any], checkpoint: Path, env: gym.Env
) -> Agent:
    """The run's agent on the CPU, acting in `env`, with the checkpoint's networks and
    statistics (its replay memory or rollout left out: acting needs neither, and a
    rollout's shape is the training envs')."""
    import torch

    from rl_runner.checkpoint import without_replay
    from rl_runner.envs.batch import EnvBatch
    from rl_runner.registry import algorithm

    envs = EnvBatch(lambda: env, 1, settings.eval_seed)
    agent = algorithm(settings.algo.name).builder()(settings, envs, torch.device("cpu"))
    try:
        agent.load_state_dict(without_replay(state)["agent"])
    except KeyError as error:
        raise ConfigError(
            f"{checkpoint} lacks the agent part {error}: another algorithm wrote it"
        ) from error
    except (ValueError, RuntimeError) as error:
        detail = " ".join(str(error).split())[:200]
        raise ConfigError(f"{checkpoint} does not fit the run's config ({detail})") from error
    return agent
