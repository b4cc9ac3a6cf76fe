"""`rl-run`: compose the config with Hydra, check it all, then train, resume or sweep.

rl-run algo=dqn env=cartpole seed=3 trainer.total_steps=20000
rl-run resume=outputs/2026-11-23/12-00-00_dqn_cartpole_seed0 trainer.total_steps=100000
rl-run -m seed=0,1,2 algo.lr=1e-3,3e-4

Everything is checked before anything is written: `cli()` composes the config,
validates it, tries the environment and claims (creates and locks) the run
directory, and only then hands the command line to `@hydra.main`, which creates
directories and log files before the task runs. A resume never goes through Hydra's
composition: it is the saved config plus the command line's changes.
Heavy modules (torch, gymnasium) load only once a run is about to be built, so
`--help` and refusals stay quick.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rl_runner.config.compose import (
    as_int_override,
    compose_config,
    hydra_quote,
    is_integral_float,
    parse_command_line,
    parse_overrides,
    sweep_jobs,
)
from rl_runner.config.resume import apply_resume_overrides, load_saved_config
from rl_runner.config.settings import Settings, is_int_field, validate
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
from rl_runner.progress import FILE_ONLY
from rl_runner.rundir import (
    CHECKPOINT_DIR,
    EVALUATIONS_FILE,
    HYDRA_DIR,
    LOG_FILE,
    METRICS_FILE,
    RESUME_HISTORY,
    SAVED_CONFIG,
    SUMMARY_FILE,
    ClaimedDir,
    RunLock,
    check_writable,
    checkpoint_step,
    claim_run_dir,
    discard_outputs,
    holds_run,
    periodic_checkpoints,
    read_jsonl,
    resume_command,
    write_json_atomic,
)
from rl_runner.stopping import install_startup_handlers, pending_signal

if TYPE_CHECKING:
    from rl_runner.trainer import Trainer

log = logging.getLogger("rl_runner")

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's default
RUN_DIR_KEYS = ("hydra.run.dir", "hydra.output_subdir")
SWEEP_DIR_KEYS = ("hydra.sweep.dir", "hydra.output_subdir")
# rl-run writes .hydra/ itself, once every check has passed (Hydra would write it first).
NO_HYDRA_OUTPUT = "hydra.output_subdir=null"

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

    settings = validate(cfg)
    # Every check has passed: saving the config first makes the directory resumable
    # from here on (a kill while building restarts it from this config).
    _save_hydra_files(cfg, run_dir)
    trainer = build_trainer(settings, run_dir, checkpoint=None)
    log.info("run directory: %s", run_dir)
    return _train(trainer, run_dir)


def _sweep_job(cfg: DictConfig, run_dir: Path) -> float | None:
    """A job fails on its own: its error goes to its summary.json and train.log, and
    the sweep goes on (`cli` reports the failed jobs at the end)."""
    sweep_dir = Path(HydraConfig.get().sweep.dir).absolute()
    if sweep_dir not in run_dir.absolute().parents:  # checked up front; kept as a guard
        _UNRECORDED_FAILURES.append(f"{run_dir}: outside the sweep directory {sweep_dir}")
        return None
    lock = RunLock(run_dir).acquire()
    if holds_run(run_dir):  # a hydra.sweep.subdir that names one dir for several jobs
        lock.release()
        # Not recorded in that dir's summary.json: it belongs to the job that ran there.
        _UNRECORDED_FAILURES.append(f"{run_dir}: hydra.sweep.subdir gives two jobs this dir")
        log.error("job failed: %s", _UNRECORDED_FAILURES[-1])
        return None
    try:
        return _fresh_run(cfg, run_dir)
    except RunInterrupted as stop:
        exit_for(stop)  # Ctrl-C stops the whole sweep (SystemExit passes through Hydra)
    except Exception as error:
        if isinstance(error, RunnerError):
            log.error("job failed: %s", one_line(error))
        else:  # a bug: keep the traceback for the report
            log.error("job failed:\n%s", traceback.format_exc())
        _record_job_failure(run_dir, error)
        return None
    finally:
        lock.release()


# Jobs refused where their own summary.json cannot say so (this process's jobs).
_UNRECORDED_FAILURES: list[str] = []


def _record_job_failure(run_dir: Path, error: Exception) -> None:
    path = run_dir / SUMMARY_FILE
    summary = _read_summary(path) or {}
    status = "diverged" if isinstance(error, Diverged) else "failed"
    summary.update(status=status, completed=False, error=one_line(error))
    write_json_atomic(path, summary)


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_yaml(config: Any, path: Path) -> None:
    """Through a temporary file: a full disk never leaves a torn saved config."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        OmegaConf.save(config, temporary)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {error.strerror or error}") from error


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
    trainer: Trainer, run_dir: Path, on_logs_ready: Callable[[], None] | None = None
) -> float | None:
    summary = trainer.run(on_logs_ready)
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


# -- resume (the saved config, no composition) ------------------------------------------
@dataclass
class ResumePlan:
    run_dir: Path
    config: DictConfig
    settings: Settings
    changes: list[str]


def _resume(plan: ResumePlan) -> float | None:
    from rl_runner.build import build_trainer
    from rl_runner.checkpoint import load_checkpoint

    run_dir = plan.run_dir
    *older, newest = [None, *periodic_checkpoints(run_dir / CHECKPOINT_DIR)]
    if newest is None:
        log.warning(
            "%s stopped before its first checkpoint; nothing was lost: "
            "starting it again from its saved config",
            run_dir,
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
        saved_step = checkpoint.get("loop", {}).get("env_steps")
        if saved_step != checkpoint_step(newest):
            raise CheckpointError(
                f"checkpoint {newest} holds step {saved_step}, not the step its name says"
            )
        trainer = build_trainer(plan.settings, run_dir, checkpoint)
        if trainer.done:
            _report_nothing_to_do(trainer, plan)
            return trainer.last_eval
        log.info("resuming %s from %s", run_dir, newest.name)
    step = trainer.env_steps
    return _train(trainer, run_dir, on_logs_ready=lambda: _record_resume(plan, step))


def _report_nothing_to_do(trainer: Trainer, plan: ResumePlan) -> None:
    """Printed, not logged: a finished run's files stay as they are."""
    total = plan.settings.run.trainer.total_steps
    if trainer.reached_eval_target:
        reason = (
            f"reached trainer.stop_at_eval_return at step {trainer.env_steps}; raise it "
            "(or set it to null) to go on"
        )
    else:
        reason = (
            f"already has {trainer.env_steps} of {total} steps; "
            "pass a larger trainer.total_steps to extend it"
        )
    print(f"rl-run: {plan.run_dir} {reason}", file=sys.stderr)


def _record_resume(plan: ResumePlan, step: int) -> None:
    """The saved config is the one the run now trains with; resumes.yaml says from
    which step each change applies."""
    save_yaml(plan.config, plan.run_dir / SAVED_CONFIG)
    if plan.changes:
        log.info("changed on resume at step %d: %s", step, " ".join(plan.changes))
        history_path = plan.run_dir / RESUME_HISTORY
        history = OmegaConf.load(history_path) if history_path.is_file() else OmegaConf.create([])
        history.append({"step": step, "overrides": plan.changes})
        save_yaml(history, history_path)


# -- pre-flight: every check before the first write ---------------------------------------
@dataclass
class Launch:
    """What `cli` runs once the pre-flight has passed."""

    hydra_arguments: list[str] | None = None  # for @hydra.main; None: nothing for Hydra
    claim: ClaimedDir | None = None  # a fresh run's or a sweep's directory, locked
    resume: ResumePlan | None = None
    resume_lock: RunLock | None = None
    sweep_dir: Path | None = None
    introspection: bool = False  # --help, --cfg, --info, --shell-completion

    def release(self, failed: bool) -> None:
        if self.claim is not None:
            self.claim.release(abandon=failed)
        if self.resume_lock is not None:
            self.resume_lock.release()


def _override_of(overrides: list[Any], key: str) -> Any:
    matches = [o for o in overrides if o.key_or_group == key and not o.is_delete()]
    return matches[-1] if matches else None


@contextmanager
def _quiet_warnings() -> Iterator[None]:
    """Library warnings during the checks would interleave with a one-line error;
    the run itself shows them again when it builds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _check_runnable(cfg: DictConfig, context: str = "") -> Settings:
    from rl_runner.build import check_buildable

    try:
        settings = validate(cfg)
        with _quiet_warnings():
            check_buildable(settings)
    except ConfigError as error:
        if context:
            raise ConfigError(f"{context}: {error}") from error
        raise
    return settings


def _integral_floats_as_ints(overrides: list[str]) -> list[str]:
    """`trainer.total_steps=1e6` -> `trainer.total_steps=1000000` where the schema
    field is an int (Hydra would refuse the float)."""
    parsed = parse_overrides(overrides)
    if not any(is_integral_float(o) for o in parsed):
        return overrides
    others = [
        text
        for text, o in zip(overrides, parsed, strict=True)
        if not (is_integral_float(o) or o.is_sweep_override())
    ]
    try:
        settings = validate(_task_config(compose_config(others)))
    except (RunnerError, HydraException, OmegaConfBaseException):
        return overrides  # the real composition reports what is wrong
    return [
        as_int_override(o)
        if is_integral_float(o) and is_int_field(settings, o.key_or_group)
        else text
        for text, o in zip(overrides, parsed, strict=True)
    ]


def _task_config(composed: DictConfig) -> DictConfig:
    task = composed.copy()
    with_hydra = OmegaConf.to_container(task, resolve=False)
    assert isinstance(with_hydra, dict)
    with_hydra.pop("hydra", None)
    return OmegaConf.create(with_hydra)


def _flags(arguments: list[str], overrides: list[str]) -> list[str]:
    """The command line without its overrides (Hydra's own flags)."""
    remaining = list(overrides)
    flags = []
    for argument in arguments:
        if argument in remaining:
            remaining.remove(argument)
        else:
            flags.append(argument)
    return flags


def _without(overrides: list[str], keys: tuple[str, ...]) -> list[str]:
    parsed = parse_overrides(overrides)
    return [text for text, o in zip(overrides, parsed, strict=True) if o.key_or_group not in keys]


def prepare_fresh_run(flags: list[str], overrides: list[str]) -> Launch:
    composed = compose_config(overrides)
    _check_runnable(_task_config(composed))
    explicit = _override_of(parse_overrides(overrides), "hydra.run.dir")
    run_dir = Path(str(composed.hydra.run.dir)).expanduser()
    claim = claim_run_dir(run_dir, unique=explicit is None, option="hydra.run.dir")
    hydra_arguments = [
        *flags,
        *_without(overrides, RUN_DIR_KEYS),
        f"hydra.run.dir={hydra_quote(str(claim.path))}",
        NO_HYDRA_OUTPUT,
    ]
    return Launch(hydra_arguments=hydra_arguments, claim=claim)


JOB_UNIQUE_KEYS = ("${hydra.job.num}", "${hydra.job.id}", "${hydra.job.override_dirname}")


def check_sweep_subdir(composed: DictConfig, jobs: list[list[str]]) -> None:
    """Each job needs its own new directory inside the sweep directory."""
    sweep = OmegaConf.to_container(composed.hydra.sweep, resolve=False)
    assert isinstance(sweep, dict)
    subdir = str(sweep.get("subdir"))
    unique = any(key in subdir for key in JOB_UNIQUE_KEYS)
    if not unique or subdir.startswith(("/", "~")) or ".." in Path(subdir).parts:
        raise ConfigError(
            f"hydra.sweep.subdir: {subdir!r} must give each job its own directory inside the "
            "sweep directory, e.g. ${hydra.job.num} or ${hydra.job.override_dirname}"
        )
    if "override_dirname" in subdir:  # the values become path parts
        for job in jobs:
            if any(".." in Path(text).parts for text in job):
                raise ConfigError(
                    f"hydra.sweep.subdir: the job {' '.join(job)} would be written outside "
                    "the sweep directory"
                )


def prepare_sweep(flags: list[str], overrides: list[str]) -> Launch:
    parsed = parse_overrides(overrides)
    fixed = [text for text, o in zip(overrides, parsed, strict=True) if not o.is_sweep_override()]
    composed = compose_config(fixed)
    jobs = []
    if str(composed.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        # A typo in one value refuses the sweep before any job runs; a job that fails
        # while running (an env that cannot be made, divergence) fails on its own.
        jobs = sweep_jobs(parsed)
        for job in jobs:
            try:
                validate(_task_config(compose_config(job)))
            except (RunnerError, HydraException, OmegaConfBaseException) as error:
                raise ConfigError(f"sweep job {' '.join(job)}: {one_line(error)}") from error
    check_sweep_subdir(composed, jobs)
    explicit = _override_of(parsed, "hydra.sweep.dir")
    sweep_dir = Path(str(composed.hydra.sweep.dir)).expanduser()
    claim = claim_run_dir(sweep_dir, unique=explicit is None, option="hydra.sweep.dir", sweep=True)
    hydra_arguments = [
        *flags,
        *_without(overrides, SWEEP_DIR_KEYS),
        f"hydra.sweep.dir={hydra_quote(str(claim.path))}",
        NO_HYDRA_OUTPUT,
    ]
    return Launch(hydra_arguments=hydra_arguments, claim=claim, sweep_dir=claim.path)


def prepare_resume(resume_value: str, overrides: list[str], show_config: bool) -> Launch:
    # Absolute: the resume command printed later must work from any directory.
    run_dir = Path(resume_value).expanduser().absolute()
    if not run_dir.is_dir():
        raise ConfigError(f"resume: {run_dir} is not a directory")
    if not (run_dir / SAVED_CONFIG).is_file():
        raise ConfigError(f"resume: {run_dir} is not a run directory (no {SAVED_CONFIG})")
    saved, saved_settings = load_saved_config(run_dir)
    merged, changes = apply_resume_overrides(saved, saved_settings, overrides)
    if show_config:
        validate(merged)
        print(OmegaConf.to_yaml(merged), end="")
        return Launch()
    lock = RunLock(run_dir).acquire()
    try:
        settings = _check_runnable(merged)
        check_writable(run_dir)
        if (run_dir / CHECKPOINT_DIR).is_dir():
            check_writable(run_dir / CHECKPOINT_DIR)
        check_resumable(run_dir)
    except BaseException:
        lock.release()
        raise
    plan = ResumePlan(run_dir, merged, settings, changes)
    return Launch(resume=plan, resume_lock=lock)


def _literal_resume_paths(arguments: list[str]) -> list[str]:
    """`resume=<path>` takes the rest of the argument as a path, verbatim (spaces,
    non-ASCII, quotes), so that the printed `rl-run resume=<shell-quoted path>` works.
    A value already in Hydra quotes is left to Hydra."""
    literal = []
    for argument in arguments:
        match = re.fullmatch(r"(\+{0,2}resume)=(.*)", argument, flags=re.DOTALL)
        value = match.group(2) if match else ""
        hydra_quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
        if match and value and value != "null" and not hydra_quoted:
            argument = f"{match.group(1)}={hydra_quote(value)}"
        literal.append(argument)
    return literal


def check_resumable(run_dir: Path) -> None:
    """What a resume reads besides the checkpoint: its logs (rows past the checkpoint
    are dropped) and, if the run got past its first checkpoint, a checkpoint."""
    for name in (METRICS_FILE, EVALUATIONS_FILE):
        try:
            read_jsonl(run_dir / name)
        except ValueError as error:
            raise ConfigError(f"resume: {error}; repair or remove that line") from error
    summary = _read_summary(run_dir / SUMMARY_FILE) or {}
    # These statuses are written at a checkpoint or after one.
    checkpointed = summary.get("status") in ("running", "completed", "interrupted")
    if checkpointed and not periodic_checkpoints(run_dir / CHECKPOINT_DIR):
        raise ConfigError(
            f"resume: {run_dir} was checkpointed at step {summary.get('env_steps')} "
            f"(summary.json) but its {CHECKPOINT_DIR}/step_*.pt files are gone; restore them"
        )


def prepare_launch(arguments: list[str]) -> Launch:
    """Check the command line completely; claim and lock the directory it writes to."""
    arguments = _literal_resume_paths(arguments)
    args = parse_command_line(arguments)
    overrides: list[str] = args.overrides
    parsed = parse_overrides(overrides)
    if args.experimental_rerun is not None:
        raise ConfigError("--experimental-rerun: not supported; continue a run with resume=DIR")
    if _override_of(parsed, "hydra.mode") is not None:
        raise ConfigError("hydra.mode: start a sweep with -m (--multirun)")
    resume = _override_of(parsed, "resume")
    if resume is not None and resume.value() is not None:
        if args.multirun:
            raise ConfigError("resume: continue runs one at a time (without -m/--multirun)")
        if resume.is_sweep_override():
            raise ConfigError("resume: give one run directory")
        if args.cfg not in (None, "job") or args.help or args.info:
            raise ConfigError("resume: only --cfg job can be combined with resume")
        return prepare_resume(str(resume.value()), overrides, show_config=args.cfg == "job")
    flags = _flags(arguments, overrides)
    overrides = _integral_floats_as_ints(overrides)
    if args.cfg == "job":  # the config a run would use, so it is checked like one
        validate(_task_config(compose_config(overrides)))
    if args.help or args.hydra_help or args.info or args.cfg or args.shell_completion:
        # Hydra's own introspection writes nothing
        return Launch(hydra_arguments=[*flags, *overrides], introspection=True)
    if args.multirun:
        return prepare_sweep(flags, overrides)
    return prepare_fresh_run(flags, overrides)


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


def _sweep_failures(sweep_dir: Path) -> list[str]:
    failures = list(_UNRECORDED_FAILURES)
    for summary_path in sorted(sweep_dir.rglob(SUMMARY_FILE)):
        summary = _read_summary(summary_path) or {}
        if summary.get("status") in ("failed", "diverged"):
            failures.append(f"{summary_path.parent}: {summary.get('error', summary['status'])}")
    return failures


def _finish_sweep(sweep_dir: Path) -> None:
    failures = _sweep_failures(sweep_dir)
    jobs = sum(1 for _ in sweep_dir.rglob(str(SAVED_CONFIG))) + len(_UNRECORDED_FAILURES)
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
def one_line(error: BaseException) -> str:
    """A Hydra / OmegaConf / runner error as a single line."""
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        text = f"cannot find config {error.missing_cfg_file!r}"
        options = [name for name in error.options or [] if not name.startswith("schema")]
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


def _exit(message: str, status: int) -> NoReturn:
    print(message, file=sys.stderr)
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
    run_dir = None
    if launch is not None and launch.resume is not None:
        run_dir = launch.resume.run_dir
    elif launch is not None and launch.claim is not None and launch.sweep_dir is None:
        run_dir = launch.claim.path if holds_run(launch.claim.path) else None
    if run_dir is None:
        return "rl-run: interrupted before training started; nothing was kept"
    return (
        "rl-run: interrupted at once; the newest checkpoint is intact; "
        f"continue with: {resume_command(run_dir)}"
    )


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
    threading.excepthook = _log_thread_failure
    # A closed or broken stdout (`rl-run ... | head -1`) must not end a run.
    logging.raiseExceptions = False
    launch: Launch | None = None
    failed = True
    try:
        launch = prepare_launch(arguments)
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
    except OSError as error:  # a full disk or a read-only file system outside training
        if show_traceback:
            raise
        exit_for(storage_error(error))
    finally:
        if launch is not None:
            launch.release(failed)


if __name__ == "__main__":
    cli()
