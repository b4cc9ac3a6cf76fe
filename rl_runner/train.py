"""`rl-run`: check the command line, then train, resume or sweep; one-line errors.

rl-run algo=dqn env=cartpole seed=3 trainer.total_steps=20000
rl-run resume=outputs/2026-11-23/12-00-00_dqn_cartpole_seed0 trainer.total_steps=100000
rl-run -m seed=0,1,2 algo.lr=1e-3,3e-4

`cli()` runs the pre-flight (preflight.py: every check before the first write), then
hands the command line to `@hydra.main` (a run or a sweep's jobs) or, for a resume,
trains from the saved config without Hydra's composition. Heavy modules (torch,
gymnasium) load only once a run is about to be built, so `--help` and refusals stay
quick.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rl_runner.config.compose import one_line
from rl_runner.config.settings import validate
from rl_runner.config.store import register_schemas
from rl_runner.errors import (
    EXIT_SWEEP_FAILED,
    CheckpointError,
    ConfigError,
    Diverged,
    RunInterrupted,
    RunnerError,
    StorageError,
)
from rl_runner.manifest import record_session, remember_command_line
from rl_runner.preflight import (
    AUTO,
    RAY_TOKEN_HINT,
    Launch,
    ResumePlan,
    auto_resume_plan,
    prepare_launch,
)
from rl_runner.progress import FILE_ONLY
from rl_runner.rundir import (
    CHECKPOINT_DIR,
    HYDRA_DIR,
    LOG_FILE,
    METRICS_FILE,
    RESUME_HISTORY,
    SAVED_CONFIG,
    SUMMARY_FILE,
    SWEEP_STOPPING,
    RunLock,
    atomic_file,
    checkpoint_step,
    discard_outputs,
    has_training_output,
    holds_run,
    mark_running_jobs_interrupted,
    periodic_checkpoints,
    read_jsonl,
    read_summary,
    read_sweep_index,
    release_stray_claims,
    resume_command,
    update_sweep_index,
    write_json_atomic,
)
from rl_runner.stopping import (
    ignore_stop_signals,
    install_startup_handlers,
    install_sweep_driver_handlers,
    job_process,
    pending_signal,
)
from rl_runner.tracking import end_sweep

if TYPE_CHECKING:
    from rl_runner.trainer import Trainer

log = logging.getLogger("rl_runner")

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's default

register_schemas()


# -- the Hydra task -----------------------------------------------------------------
@hydra.main(config_path="pkg://rl_runner.configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """One run, or one job of a sweep. Returns the final evaluation return (the
    objective for sweepers)."""
    hydra_config = HydraConfig.get()
    run_dir = Path(hydra_config.runtime.output_dir)
    _send_file_only_records_to_files()
    if hydra_config.mode == RunMode.MULTIRUN:
        return _sweep_job(cfg, run_dir)
    try:
        return _fresh_run(cfg, run_dir)
    except OSError as error:  # writing Hydra's files, say, on a full disk
        exit_for(storage_error(error))
    except RunnerError as error:  # exit here: raised through Hydra, it adds its own report
        exit_for(error)


def _fresh_run(cfg: DictConfig, run_dir: Path) -> float | None:
    from rl_runner.build import build_trainer

    if cfg.get("resume") == AUTO:  # the run is saved as what it is: a run of its own
        cfg = cfg.copy()
        OmegaConf.update(cfg, "resume", None)
    settings = validate(cfg)
    # Every check has passed: saving the config first makes the directory resumable
    # from here on (a kill while building restarts it from this config).
    _save_hydra_files(cfg, run_dir)
    record_session(run_dir, settings, step=0, sweep_dir=_job_sweep_dir())
    trainer = build_trainer(settings, run_dir, checkpoint=None)
    log.info("run directory: %s", run_dir)
    return _train(trainer, run_dir, settings.run.sweep.objective.value)


def _sweep_job(cfg: DictConfig, run_dir: Path) -> float | None:
    """A job fails on its own: its error goes to its summary.json and train.log, and
    the sweep goes on (`cli` reports the failed jobs at the end).

    The job's outcome goes to the sweep's index (sweep.jsonl, under its lock) whichever
    process runs it (joblib's, Ray's, SLURM's): the driver reads it there."""
    sweep_dir = Path(HydraConfig.get().sweep.dir).absolute()
    overrides = list(HydraConfig.get().overrides.task)
    if (sweep_dir / SWEEP_STOPPING).exists():  # dispatched while the driver stops
        log.info("not started: the sweep is stopping")
        return None
    if sweep_dir not in run_dir.absolute().parents:  # checked up front; kept as a guard
        _index_refusal(sweep_dir, overrides, f"{run_dir} is outside the sweep directory")
        return None
    lock = RunLock(run_dir).acquire()
    continuing = cfg.get("resume") == AUTO and (run_dir / SAVED_CONFIG).is_file()
    if holds_run(run_dir) and not continuing:  # a subdir that names one dir for two jobs
        lock.release()
        # Not in that dir's own row or summary.json: they belong to the job that ran there.
        _index_refusal(sweep_dir, overrides, f"hydra.sweep.subdir gives {run_dir} to two jobs")
        return None
    job = str(run_dir.absolute().relative_to(sweep_dir))
    running: dict[str, Any] = {"overrides": overrides, "status": "running"}
    if threading.current_thread() is threading.main_thread():
        install_startup_handlers()  # before the row tells the driver where to signal
        running.update(job_process())
    update_sweep_index(sweep_dir, job, running)
    refusal: str | None = None
    unsummarised = "failed"  # the row of a job that ends without a summary.json
    try:
        if continuing:  # this job's own earlier run: resume, restart or leave it
            try:
                plan = auto_resume_plan(run_dir.absolute(), cfg)
            except ConfigError as refused:  # the run there stays as it is
                refusal = one_line(refused)
                log.error("job refused: %s: %s", run_dir, refusal)
                return math.nan
            return _resume(plan)
        return _fresh_run(cfg, run_dir)
    except RunInterrupted as stop:
        exit_for(stop)  # Ctrl-C stops the whole sweep (SystemExit passes through Hydra)
    except KeyboardInterrupt:  # stopped while it was being set up
        unsummarised = "interrupted"
        raise
    except Exception as error:
        if isinstance(error, RunnerError):
            log.error("job failed: %s", one_line(error))
        else:  # a bug: keep the traceback for the report
            log.error("job failed:\n%s", traceback.format_exc())
        _record_job_failure(run_dir, error)
        return math.nan  # a sweeper (Optuna) records a failed trial and goes on
    finally:
        lock.release()
        _index_job(sweep_dir, job, overrides, run_dir, cfg, refusal, unsummarised)


def _index_refusal(sweep_dir: Path, overrides: list[str], reason: str) -> None:
    """A job refused without a directory of its own: its row is keyed by its number."""
    log.error("job refused: %s", reason)
    job = f"job {HydraConfig.get().job.num}"
    update_sweep_index(
        sweep_dir, job, {"overrides": overrides, "status": "refused", "error": reason}
    )


def _index_job(
    sweep_dir: Path,
    job: str,
    overrides: list[str],
    run_dir: Path,
    cfg: DictConfig,
    refusal: str | None,
    unsummarised: str,
) -> None:
    """The job's row in the sweep's index, from its summary.json (or its refusal: the
    run there keeps its own summary; or, without a summary, the `unsummarised` status)."""
    if refusal is not None:
        update_sweep_index(
            sweep_dir, job, {"overrides": overrides, "status": "refused", "error": refusal}
        )
        return
    summary = read_summary(run_dir / SUMMARY_FILE) or {"status": unsummarised}
    chosen = OmegaConf.select(cfg, "sweep.objective", default="final")
    kind = str(getattr(chosen, "value", chosen))  # the schema's enum, or its text
    row = {
        "overrides": overrides,
        "status": summary.get("status"),
        "objective": objective(summary, kind),
        "final_eval_return_mean": summary.get("final_eval_return_mean"),
        "best_eval_return_mean": summary.get("best_eval_return_mean"),
        "env_steps": summary.get("env_steps"),
        "wall_seconds": summary.get("wall_seconds"),
    }
    if "error" in summary:
        row["error"] = summary["error"]
    update_sweep_index(sweep_dir, job, row)


def _record_job_failure(run_dir: Path, error: Exception) -> None:
    path = run_dir / SUMMARY_FILE
    summary = read_summary(path) or {}
    status = "diverged" if isinstance(error, Diverged) else "failed"
    summary.update(status=status, completed=False, error=one_line(error))
    write_json_atomic(path, summary)


def save_yaml(config: Any, path: Path) -> None:
    """Atomically: a full disk never leaves a torn saved config."""
    with atomic_file(path) as temporary:
        OmegaConf.save(config, temporary)


def _save_hydra_files(cfg: DictConfig, run_dir: Path) -> None:
    """What Hydra writes to .hydra/, written once the run is known to be good."""
    hydra_config = HydraConfig.get()
    hydra_dir = run_dir / HYDRA_DIR
    hydra_dir.mkdir(exist_ok=True)
    save_yaml(OmegaConf.create({"hydra": hydra_config}), hydra_dir / "hydra.yaml")
    save_yaml(hydra_config.overrides.task, hydra_dir / "overrides.yaml")
    # Resolved: `seed=${oc.env:SEED}` must mean on resume what it meant here.
    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    save_yaml(resolved, hydra_dir / "config.yaml")  # last: its presence makes a run resumable


def _train(
    trainer: Trainer,
    run_dir: Path,
    objective_kind: str,
    on_logs_ready: Callable[[], None] | None = None,
) -> float | None:
    """Run the trainer; returns the objective (`sweep.objective`) for sweepers."""
    summary = trainer.run(on_logs_ready)
    log.info(
        "done%s: %d env steps in %.1f s; eval return final %.2f, best %.2f (step %d); %s",
        " (the policy converged: algo.stop_delta)" if summary["converged"] else "",
        summary["env_steps"],
        summary["wall_seconds"],
        summary["final_eval_return_mean"],
        summary["best_eval_return_mean"],
        summary["best_eval_step"],
        run_dir,
    )
    return objective(summary, objective_kind)


def objective(summary: dict[str, Any], kind: str) -> float | None:
    """The run's objective for sweepers: its final or best evaluation return."""
    value = summary.get(f"{kind}_eval_return_mean")
    return None if value is None else float(value)


# -- resume (the saved config, no composition) ------------------------------------------
def _resume(plan: ResumePlan) -> float | None:
    from rl_runner.build import build_trainer
    from rl_runner.checkpoint import check_run_identity, load_checkpoint

    run_dir = plan.run_dir
    *older, newest = [None, *periodic_checkpoints(run_dir / CHECKPOINT_DIR)]
    if newest is None:
        log.warning(
            "%s stopped before its first checkpoint (%s): starting it again from its saved config",
            run_dir,
            _unsaved_steps(run_dir),
        )
        discard_outputs(run_dir)
        trainer = build_trainer(plan.settings, run_dir, checkpoint=None)
    else:
        try:
            checkpoint = load_checkpoint(newest)
        except RunnerError as error:
            previous = older[-1]
            if previous is None:
                raise
            # Never fall back silently: say which one the user could move aside.
            raise type(error)(
                f"{error}; the previous one is {previous.name} (move the broken file away "
                "to resume from it)"
            ) from error
        check_run_identity(run_dir, newest, checkpoint)
        saved_step = checkpoint.get("loop", {}).get("env_steps")
        if saved_step != checkpoint_step(newest):
            raise CheckpointError(
                f"checkpoint {newest} holds step {saved_step}, not the step its name says"
            )
        trainer = build_trainer(plan.settings, run_dir, checkpoint)
        kind = plan.settings.run.sweep.objective.value
        if trainer.done and not trainer.evaluation_pending:
            trainer.close()
            _report_nothing_to_do(trainer, plan)
            return trainer.best_eval if kind == "best" else trainer.last_eval
        log.info("resuming %s from %s", run_dir, newest.name)
    step = trainer.env_steps
    return _train(
        trainer,
        run_dir,
        plan.settings.run.sweep.objective.value,
        on_logs_ready=lambda: _record_resume(plan, step),
    )


def _unsaved_steps(run_dir: Path) -> str:
    """What a start again from step 0 loses, as the run's own log says (the logs run
    ahead of the checkpoints)."""
    try:
        logged = read_jsonl(run_dir / METRICS_FILE)
    except ValueError:  # a damaged log: it goes with the rest
        return "its log could not be read"
    steps = int(logged[-1]["step"]) if logged else 0
    return f"the {steps} env steps it logged are lost" if steps else "no env step was logged"


def _report_nothing_to_do(trainer: Trainer, plan: ResumePlan) -> None:
    """Printed, not logged: a finished run's files stay as they are."""
    total = plan.settings.run.trainer.total_steps
    if trainer.reached_eval_target:
        reason = (
            f"reached trainer.stop_at_eval_return at step {trainer.env_steps}; raise it "
            "(or set it to null) to go on"
        )
    elif trainer.agent.converged:
        reason = f"stopped at step {trainer.env_steps}: its policy converged (algo's stop rule)"
    else:
        reason = (
            f"already has {trainer.env_steps} of {total} steps; "
            "pass a larger trainer.total_steps to extend it"
        )
    print(f"rl-run: {plan.run_dir} {reason}", file=sys.stderr)


def _job_sweep_dir() -> Path | None:
    """The sweep directory where this is a sweep job (a resume outside Hydra is not)."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir)


def _record_resume(plan: ResumePlan, step: int) -> None:
    """The saved config is the one the run now trains with; resumes.yaml says from
    which step each change applies."""
    save_yaml(plan.config, plan.run_dir / SAVED_CONFIG)
    record_session(plan.run_dir, plan.settings, step, sweep_dir=_job_sweep_dir())
    if plan.changes:
        log.info("changed on resume at step %d: %s", step, " ".join(plan.changes))
        history_path = plan.run_dir / RESUME_HISTORY
        history = OmegaConf.load(history_path) if history_path.is_file() else OmegaConf.create([])
        history.append({"step": step, "overrides": plan.changes})
        save_yaml(history, history_path)


# -- running the launch -----------------------------------------------------------------
def _send_file_only_records_to_files() -> None:
    """Records logged with `extra=FILE_ONLY` skip console handlers."""
    for handler in logging.getLogger().handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.addFilter(lambda record: not getattr(record, "file_only", False))


def _configure_logging(run_dir: Path) -> None:
    """Hydra's default job logging, for a resume (which bypasses Hydra's start-up)."""
    formatter = logging.Formatter(LOG_FORMAT)
    console = logging.StreamHandler(sys.stdout)
    log_file = logging.FileHandler(run_dir / LOG_FILE)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in (console, log_file):
        handler.setFormatter(formatter)
        root.addHandler(handler)
    _send_file_only_records_to_files()


def _run_hydra(hydra_arguments: list[str]) -> None:
    sys.argv = [sys.argv[0], *hydra_arguments]
    main()


def _finish_sweep(sweep_dir: Path) -> None:
    """Exit 1 where any job failed, diverged or was refused, as its row in the sweep's
    index says (each job wrote its own, in whatever process it ran)."""
    rows = read_sweep_index(sweep_dir)
    failures = [
        f"{sweep_dir / job if not job.startswith('job ') else job}: "
        f"{row.get('error', row['status'])}"
        for job, row in sorted(rows.items())
        if row.get("status") in ("failed", "diverged", "refused")
    ]
    jobs = len(rows)
    end_sweep(sweep_dir, "failed" if failures else "completed")
    if failures:
        for failure in failures:
            print(f"rl-run: failed job {failure}", file=sys.stderr)
        _exit(f"rl-run: {len(failures)} of {jobs} sweep jobs failed", EXIT_SWEEP_FAILED)


def run_launch(launch: Launch) -> None:
    if launch.resume is not None:
        _configure_logging(launch.resume.run_dir)
        _resume(launch.resume)
    elif launch.introspection:
        try:
            _run_hydra(launch.hydra_arguments or [])
        except ValueError as error:  # Hydra's answer to a malformed flag
            raise ConfigError(one_line(error)) from error
    elif launch.hydra_arguments is not None:
        _run_hydra(launch.hydra_arguments)


# -- the console script -----------------------------------------------------------------
def _exit(message: str, status: int) -> NoReturn:
    ignore_stop_signals()
    # one write: a sweep's parallel jobs print theirs at the same moment
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    sys.exit(status)


def storage_error(error: OSError) -> StorageError:
    where = error.filename or "a file of the run"
    return StorageError(f"cannot write {where}: {error.strerror or error}")


def exit_for(error: RunnerError) -> NoReturn:
    """One line on stderr and the error's exit status."""
    if isinstance(error, RunInterrupted | Diverged):
        _exit(f"rl-run: {one_line(error)}", error.exit_code)
    _exit(f"rl-run: error: {one_line(error)}", error.exit_code)


def _interrupted_message(launch: Launch | None) -> str:
    """What an interruption outside the training loop left (the claim is released,
    and a start without training output undone, right after)."""
    if launch is not None and launch.sweep_dir is not None and _any_job_trained(launch.sweep_dir):
        # A launcher's driver (Ray's) stopped while its jobs ran in other processes.
        mark_running_jobs_interrupted(launch.sweep_dir)
        return (
            "rl-run: the sweep was interrupted; its jobs' runs and checkpoints are kept; "
            "continue it with the same command and "
            f"hydra.sweep.dir={shlex.quote(str(launch.sweep_dir))} resume=auto"
        )
    run_dir = None
    if launch is not None and launch.resume is not None:
        run_dir = launch.resume.run_dir
    elif launch is not None and launch.claim is not None and launch.sweep_dir is None:
        run_dir = launch.claim.path if has_training_output(launch.claim.path) else None
    if run_dir is None:
        return "rl-run: interrupted before training started; nothing was kept"
    if periodic_checkpoints(run_dir / CHECKPOINT_DIR):
        kept = "the newest checkpoint is intact"
    else:
        kept = "no checkpoint yet, so it starts again from its saved config"
    return f"rl-run: interrupted at once; {kept}; continue with: {resume_command(run_dir)}"


def _any_job_trained(sweep_dir: Path) -> bool:
    """Whether a job of the sweep got as far as training output (a job stopped while it
    was set up leaves nothing the sweep keeps)."""
    return sweep_dir.is_dir() and any(
        has_training_output(job) for job in sweep_dir.iterdir() if job.is_dir()
    )


def _connection_hint(error: ConnectionError) -> str:
    """What to do when a Ray cluster turned the driver away for want of its token (Ray
    2.5x clusters started with `ray start` ask for one by default)."""
    cause = error.__cause__  # Ray wraps the refusal in a RuntimeError's message
    if cause is None or "InvalidAuthToken" not in str(cause):
        return ""
    return f" ({RAY_TOKEN_HINT})"


def _log_thread_failure(args: threading.ExceptHookArgs) -> None:
    log.error(
        "background thread %s failed: %s",
        getattr(args.thread, "name", "?"),
        args.exc_value,
        extra=FILE_ONLY,
    )


def _print_version() -> None:
    print(f"rl-run {version('rl-runner')} (hydra-core {version('hydra-core')})")


def cli() -> None:
    """Entry point of `rl-run`: pre-flight checks, then Hydra, with one-line errors."""
    arguments = sys.argv[1:]
    remember_command_line(arguments)
    if "--version" in arguments:
        _print_version()
        return
    show_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    # Make Hydra re-raise instead of printing multi-line reports; we print one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    install_startup_handlers()
    # Library warnings go to the run's log (console and train.log), and a background
    # thread's failure (TensorBoard's writer on a full disk) to train.log: stderr holds
    # only rl-run's own one-line reports. The failure itself reaches the run as an error.
    logging.captureWarnings(True)
    # configs/hydra/launcher/ray.yaml changes two of the Ray plugin's defaults under its
    # name, which Hydra reports as a deprecated schema match on every job; it works.
    warnings.filterwarnings(
        "ignore", message=r"\s*'hydra/launcher/ray' is validated against ConfigStore schema"
    )
    threading.excepthook = _log_thread_failure
    # A closed or broken stdout (`rl-run ... | head -1`) must not end a run.
    logging.raiseExceptions = False
    launch: Launch | None = None
    failed = True
    try:
        launch = prepare_launch(arguments)
        if launch.sweep_dir is not None:
            (launch.sweep_dir / SWEEP_STOPPING).unlink(missing_ok=True)  # a killed driver's
            install_sweep_driver_handlers(launch.sweep_dir)
        run_launch(launch)
        failed = False
        if launch.sweep_dir is not None:
            _finish_sweep(launch.sweep_dir)
    except KeyboardInterrupt:  # a stop signal at start-up, or a second Ctrl-C in training
        _exit(_interrupted_message(launch), 128 + (pending_signal() or signal.SIGINT))
    except RunnerError as error:
        if show_traceback:
            raise
        exit_for(error)
    except (HydraException, OmegaConfBaseException) as error:
        if show_traceback:
            raise
        _exit(f"rl-run: error: {one_line(error)}", 2)
    except ValueError as error:  # a sweeper's own end (Optuna with no completed trial)
        if show_traceback or launch is None or launch.sweep_dir is None:
            raise
        _exit(f"rl-run: the sweep stopped: {one_line(error)}", EXIT_SWEEP_FAILED)
    except ConnectionError as error:  # a launcher's cluster (Ray, say) cannot be reached
        if show_traceback:
            raise
        _exit(f"rl-run: error: cannot connect: {one_line(error)}{_connection_hint(error)}", 2)
    except OSError as error:  # a full disk or a read-only file system outside training
        if show_traceback:
            raise
        exit_for(storage_error(error))
    finally:
        if launch is not None:
            if failed and launch.sweep_dir is not None:  # a sweep's driver stopped early
                end_sweep(launch.sweep_dir, "interrupted")
            launch.release(failed)
        release_stray_claims()


if __name__ == "__main__":
    cli()
