"""`rl-run`: compose the config with Hydra, validate it, build the run, train, resume.

rl-run algo=dqn env=cartpole seed=3 trainer.total_steps=20000
rl-run resume=outputs/2026-11-23/12-00-00_dqn_cartpole_seed0 trainer.total_steps=100000
rl-run -m seed=0,1,2 algo.lr=1e-3,3e-4
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rl_runner.build import GROUPS, build_trainer, validate
from rl_runner.checkpoint import CHECKPOINT_DIR, load_checkpoint, periodic_checkpoints
from rl_runner.config.store import register_schemas
from rl_runner.errors import CheckpointError, ConfigError, RunnerError
from rl_runner.logger import METRICS_FILE
from rl_runner.trainer import SUMMARY_FILE, RunInterrupted, Trainer

log = logging.getLogger("rl_runner")

SAVED_CONFIG = Path(".hydra") / "config.yaml"
# What Hydra writes into a fresh run directory before our code runs.
HYDRA_BOOKKEEPING = {".hydra", "train.log"}

register_schemas()


# -- the Hydra task -----------------------------------------------------------------
@hydra.main(config_path="pkg://rl_runner.configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """One run. Returns the final evaluation return (the objective for sweepers)."""
    # Exiting here, rather than raising through Hydra, keeps the report to one line.
    try:
        return _run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except RunInterrupted as stop:
        _exit(f"rl-run: {stop}", 130)
    except RunnerError as error:
        _exit(f"rl-run: error: {one_line(error)}", 2)


def _exit(message: str, status: int) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(status)


def _run(cfg: DictConfig, run_dir: Path) -> float | None:
    if cfg.resume:
        return _resume(cfg, run_dir)
    try:
        # Again here: a default directory name can collide with a run started the same second.
        check_fresh_run_dir(run_dir)
        trainer = build_trainer(validate(cfg), run_dir, checkpoint=None)
    except RunnerError:
        _remove_if_only_bookkeeping(run_dir)
        raise
    log.info("run directory: %s", run_dir)
    return _train(trainer, run_dir)


def _resume(cfg: DictConfig, run_dir: Path) -> float | None:
    saved = OmegaConf.load(run_dir / SAVED_CONFIG)
    if not isinstance(saved, DictConfig):
        raise ConfigError(f"resume: {run_dir / SAVED_CONFIG} is not a config mapping")
    merged = _apply_resume_overrides(saved, cfg, HydraConfig.get().overrides.task)
    settings = validate(merged)
    *older, checkpoint_path = periodic_checkpoints(run_dir / CHECKPOINT_DIR)
    try:
        checkpoint = load_checkpoint(checkpoint_path)
    except CheckpointError as error:
        if older:  # never fall back silently: say which one the user could move aside
            raise CheckpointError(
                f"{error}; the previous one is {older[-1].name} (move the broken file away "
                "to resume from it)"
            ) from error
        raise
    trainer = build_trainer(settings, run_dir, checkpoint)
    if trainer.done:
        # Printed, not logged: a finished run's files stay as they are.
        total = settings.run.trainer.total_steps
        reason = (
            f"reached trainer.stop_at_eval_return at step {trainer.env_steps}"
            if trainer.reached_eval_target
            else f"already has {trainer.env_steps} of {total} steps"
        )
        print(
            f"rl-run: {run_dir} {reason}; "
            "pass a larger trainer.total_steps (or stop_at_eval_return) to extend it",
            file=sys.stderr,
        )
        return trainer.last_eval
    # Everything validated and restored: only now touch the run directory.
    OmegaConf.save(merged, run_dir / SAVED_CONFIG)
    log.info("resuming %s from %s", run_dir, checkpoint_path.name)
    return _train(trainer, run_dir)


def _train(trainer: Trainer, run_dir: Path) -> float | None:
    summary = trainer.run()
    log.info(
        "done: %d env steps in %.1f s; eval return final %.2f, best %.2f (step %d); %s",
        summary["env_steps"],
        summary["wall_seconds"],
        summary["final_eval_return_mean"],
        summary["best_eval_return_mean"],
        summary["best_eval_step"],
        run_dir,
    )
    return summary["final_eval_return_mean"]


def _apply_resume_overrides(
    saved: DictConfig, composed: DictConfig, overrides: list[str]
) -> DictConfig:
    """The saved config with the command line's key=value overrides applied.

    Hydra has already parsed and type-checked each value in `composed`, so the value
    is read from there. Switching a group option would change what the checkpoint
    means, so it is refused.
    """
    merged = saved.copy()
    OmegaConf.update(merged, "resume", composed.resume, force_add=True)
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key == "resume":
            continue
        if key.split("@")[0] in GROUPS:
            raise ConfigError(
                f"{key}: a resumed run keeps its {key} option; override its keys instead"
            )
        if key == "seed":  # the checkpoint's RNG states carry on; a new seed would mean nothing
            raise ConfigError("seed: a resumed run keeps its seed")
        OmegaConf.update(merged, key, OmegaConf.select(composed, key), force_add=True)
    return merged


def _remove_if_only_bookkeeping(run_dir: Path) -> None:
    """Undo a run directory Hydra created for a run that failed validation."""
    if not run_dir.is_dir() or not {p.name for p in run_dir.iterdir()} <= HYDRA_BOOKKEEPING:
        return
    logging.shutdown()  # release Hydra's handle on train.log
    shutil.rmtree(run_dir)
    # Also the date folders Hydra made for it, when they are now empty.
    cwd = Path.cwd().resolve()
    for parent in run_dir.resolve().parents:
        if parent == cwd or cwd not in parent.parents:
            break
        try:
            parent.rmdir()
        except OSError:  # not empty: other runs live there
            break


# -- the console script -----------------------------------------------------------------
def _argument_value(arguments: list[str], key: str) -> str | None:
    prefix = f"{key}="
    values = [arg[len(prefix) :] for arg in arguments if arg.startswith(prefix)]
    return values[-1] if values else None


def check_resume_dir(path: Path) -> None:
    if not path.is_dir():
        raise ConfigError(f"resume: {path} is not a directory")
    if not (path / SAVED_CONFIG).is_file():
        raise ConfigError(f"resume: {path} is not a run directory (no {SAVED_CONFIG})")
    if not periodic_checkpoints(path / CHECKPOINT_DIR):
        raise ConfigError(f"resume: {path} has no checkpoint to resume from")


def check_fresh_run_dir(path: Path) -> None:
    """Refuse to start a new run on top of an existing one."""
    markers = (SUMMARY_FILE, CHECKPOINT_DIR, METRICS_FILE)
    if any((path / marker).exists() for marker in markers):
        raise ConfigError(
            f"hydra.run.dir: {path} already holds a run; continue it with resume={path} "
            "or choose another directory"
        )


def prepare_arguments(arguments: list[str]) -> list[str]:
    """Check the directories named on the command line before Hydra creates any.

    `resume=DIR` runs inside DIR and keeps its saved config: Hydra is pointed at DIR
    and told not to overwrite DIR/.hydra.
    """
    resume = _argument_value(arguments, "resume")
    multirun = "-m" in arguments or "--multirun" in arguments
    if resume and multirun:
        raise ConfigError("resume: continue runs one at a time (without -m/--multirun)")
    if resume:
        resume_dir = Path(resume).expanduser()
        check_resume_dir(resume_dir)
        return [*arguments, f"hydra.run.dir={resume_dir}", "hydra.output_subdir=null"]
    run_dir = _argument_value(arguments, "hydra.run.dir")
    if run_dir and not multirun:
        check_fresh_run_dir(Path(run_dir).expanduser())
    return arguments


def one_line(error: BaseException) -> str:
    """A Hydra / OmegaConf / runner error as a single line."""
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        text = f"cannot find config {error.missing_cfg_file!r}"
        options = [name for name in error.options or [] if not name.endswith("_schema")]
        if options:
            text += f" (available: {', '.join(sorted(options))})"
        return text
    lines = str(error).strip().splitlines() or [type(error).__name__]
    text = lines[0]
    cause = error.__cause__
    if isinstance(cause, OmegaConfBaseException) and str(cause).strip():
        text = f"{text.rstrip('.')}: {str(cause).strip().splitlines()[0]}"
    # Hydra's "+key=value" hint helps for free-form dicts (env.kwargs), not typed groups.
    hints = [line.strip() for line in lines[1:] if line.startswith("To append")]
    return "; ".join([text, *hints]) if "not in struct" in text else text


def cli() -> None:
    """Entry point of `rl-run`: Hydra's CLI, with one-line errors and exit status 2."""
    show_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    # Make Hydra re-raise instead of printing multi-line reports; we print one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        sys.argv = [sys.argv[0], *prepare_arguments(sys.argv[1:])]
        main()
    except KeyboardInterrupt:  # a second Ctrl-C: stop now; checkpoints are written atomically
        _exit("rl-run: interrupted; the newest checkpoint is intact", 130)
    except (RunnerError, HydraException, OmegaConfBaseException) as error:
        if show_traceback:
            raise
        _exit(f"rl-run: error: {one_line(error)}", 2)


if __name__ == "__main__":
    cli()
