"""`rl-run`'s pre-flight: every check before the first write.

Hydra creates the run directory and writes into it before the task function runs, so
`cli()` checks the command line completely first: it composes the config, validates
it, tries the environment, and claims (creates and locks) the directory the run
writes to. Only then does the command line go to `@hydra.main`, with the claimed
directory and `hydra.output_subdir=null` (train.py writes .hydra/ itself).
A resume is planned here from the run's saved config, without composition.
"""

from __future__ import annotations

import json
import os
import re
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rl_runner.config.compose import (
    as_int_override,
    compose_config,
    hydra_quote,
    is_int_node,
    is_integral_float,
    one_line,
    parse_command_line,
    parse_overrides,
    sweep_jobs,
)
from rl_runner.config.resume import apply_resume_overrides, load_saved_config
from rl_runner.config.settings import (
    GROUPS,
    Settings,
    check_groups_read,
    flat_config,
    validate,
)
from rl_runner.config.store import JOB_SUBDIR, job_dirname
from rl_runner.errors import ConfigError, RunLocked, RunnerError
from rl_runner.manifest import remember_sweep_origin
from rl_runner.rundir import (
    CHECKPOINT_DIR,
    EVALUATIONS_FILE,
    METRICS_FILE,
    SAVED_CONFIG,
    SUMMARY_FILE,
    SWEEP_INDEX,
    SWEEP_STOPPING,
    ClaimedDir,
    RunLock,
    check_writable,
    claim_run_dir,
    holds_run,
    missing_config_advice,
    periodic_checkpoints,
    read_jsonl,
    read_summary,
)

if TYPE_CHECKING:  # build imports torch: the checks load it only when they need it
    from rl_runner.build import EnvProbes

RUN_DIR_KEYS = ("hydra.run.dir", "hydra.output_subdir")
SWEEP_DIR_KEYS = ("hydra.sweep.dir", "hydra.output_subdir")
# rl-run writes .hydra/ itself, once every check has passed (Hydra would write it first).
NO_HYDRA_OUTPUT = "hydra.output_subdir=null"


@dataclass
class ResumePlan:
    run_dir: Path
    config: DictConfig
    settings: Settings
    changes: list[str]


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
        if self.sweep_dir is not None:  # a stopping driver's word to its jobs ends with it
            (self.sweep_dir / SWEEP_STOPPING).unlink(missing_ok=True)
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


def _override_keys(overrides: list[str]) -> list[str]:
    return [override.key_or_group for override in parse_overrides(overrides)]


def _check_runnable(
    cfg: DictConfig,
    context: str = "",
    overrides: list[str] | None = None,
    probes: EnvProbes | None = None,
) -> Settings:
    """`probes`: the envs the sweep's earlier jobs made, made once."""
    from rl_runner.build import check_buildable

    try:
        settings = validate(cfg)
        check_groups_read(settings.algo.name, _override_keys(overrides or []))
        with _quiet_warnings():
            check_buildable(settings, probes)
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
    try:  # the schema's types only: the other settings may fit the new value alone
        composed = compose_config(others)
    except (RunnerError, HydraException, OmegaConfBaseException):
        return overrides  # the real composition reports what is wrong
    return [
        as_int_override(o)
        if is_integral_float(o) and is_int_node(composed, o.key_or_group)
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
    _check_runnable(_task_config(composed), overrides=overrides)
    explicit = _override_of(parse_overrides(overrides), "hydra.run.dir")
    run_dir = Path(str(composed.hydra.run.dir)).expanduser()
    kept = _without(overrides, RUN_DIR_KEYS)
    # Claimed last, and nothing that can fail after it: a failed start has no claim.
    claim = claim_run_dir(run_dir, unique=explicit is None, option="hydra.run.dir")
    location = f"hydra.run.dir={hydra_quote(str(claim.path))}"
    return Launch(hydra_arguments=[*flags, *kept, location, NO_HYDRA_OUTPUT], claim=claim)


OLD_JOB_SUBDIR = "${hydra.job.num}"  # job numbers alone, as sweeps were named before
JOB_UNIQUE_KEYS = ("${hydra.job.num}", "${hydra.job.id}", "${hydra.job.override_dirname}")


def check_sweep_subdir(composed: DictConfig, jobs: list[list[str]]) -> None:
    """Each job needs its own new directory inside the sweep directory."""
    subdir = _subdir(composed)
    unique = any(key in subdir for key in JOB_UNIQUE_KEYS)
    if not unique or subdir.startswith(("/", "~")) or ".." in Path(subdir).parts:
        raise ConfigError(
            f"hydra.sweep.subdir: {subdir!r} must give each job its own directory inside the "
            "sweep directory, e.g. ${hydra.job.num} or ${hydra.job.override_dirname}"
        )
    if "override_dirname" in subdir and subdir != JOB_SUBDIR:  # values become path parts
        for job in jobs:
            if any(".." in Path(text).parts for text in job):
                raise ConfigError(
                    f"hydra.sweep.subdir: the job {' '.join(job)} would be written outside "
                    "the sweep directory"
                )


def prepare_sweep(flags: list[str], overrides: list[str], adopt: bool = False) -> Launch:
    """`adopt` (resume=auto): the sweep directory may hold this sweep's earlier jobs."""
    parsed = parse_overrides(overrides)
    fixed = [text for text, o in zip(overrides, parsed, strict=True) if not o.is_sweep_override()]
    composed = _compose_sweep_base(fixed, parsed)
    naming = _swept_values_only(composed, parsed)
    jobs: list[list[str]] = []
    job_configs: list[DictConfig] = []
    job_names: list[str] = []
    if str(composed.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        # A typo in one value, or a job whose algorithm cannot act in its env, refuses the
        # sweep before any job runs; a job that fails while running (divergence) fails
        # on its own.
        jobs = sweep_jobs(parsed)
        for number, job in enumerate(jobs):
            try:
                job_config = compose_config([*job, *naming])
                job_names.append(_job_name(job_config, number))
                job_configs.append(_task_config(job_config))
                validate(job_configs[-1])
            except (RunnerError, HydraException, OmegaConfBaseException) as error:
                raise ConfigError(f"sweep job {' '.join(job)}: {one_line(error)}") from error
    else:  # a search (Optuna): its trials' values are unknown, its fixed settings are not
        _check_runnable(_task_config(composed), "sweep", fixed)
        _check_search(composed.hydra.sweeper, Path(str(composed.hydra.sweep.dir)).expanduser())
    _check_ray_address(composed.hydra.launcher)
    check_sweep_subdir(composed, jobs)
    probes: EnvProbes = {}
    for job, job_config in zip(jobs, job_configs, strict=True):  # then each job's env
        _check_runnable(job_config, f"sweep job {' '.join(job)}", job, probes)
    explicit = _override_of(parsed, "hydra.sweep.dir")
    sweep_dir = Path(str(composed.hydra.sweep.dir)).expanduser()
    if adopt:
        _check_continued_sweep(sweep_dir, composed, parsed, jobs, job_configs, job_names)
    kept = [*_without(overrides, SWEEP_DIR_KEYS), *naming]
    claim = claim_run_dir(
        sweep_dir, unique=explicit is None, option="hydra.sweep.dir", sweep=True, adopt=adopt
    )
    remember_sweep_origin(claim.path)
    # Absolute: a launcher's workers (Ray's) may run in another working directory.
    location = f"hydra.sweep.dir={hydra_quote(str(claim.path.absolute()))}"
    arguments = [*flags, *kept, location, NO_HYDRA_OUTPUT]
    return Launch(hydra_arguments=arguments, claim=claim, sweep_dir=claim.path)


def _check_search(sweeper: DictConfig, sweep_dir: Path) -> None:
    """The Optuna sweeper's own settings, which it would otherwise report with a
    traceback once the sweep directory exists."""
    if "n_trials" in sweeper and int(sweeper.n_trials) < 1:
        raise ConfigError(f"hydra.sweeper.n_trials: {sweeper.n_trials} is below 1")
    storage = sweeper.get("storage")  # the presets' storage lies in the sweep directory
    if storage is not None:
        _check_study_storage(str(storage), sweep_dir)


def _check_study_storage(url: str, sweep_dir: Path) -> None:
    from sqlalchemy.engine import make_url  # only a search with storage needs it
    from sqlalchemy.exc import ArgumentError

    setting = "hydra.sweeper.storage"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"{setting}: {url!r} is not a database URL (e.g. sqlite:///path/optuna.db)"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        try:
            parsed.get_dialect().dbapi()
        except ImportError as error:
            raise ConfigError(f"{setting}: {url}: {error} (install its driver)") from None
        return
    if "?" in url:  # SQLite URLs read what follows as options: the file would be elsewhere
        raise ConfigError(f"{setting}: {url} holds '?'; choose a path without it")
    database = Path(parsed.database or "").absolute()  # relative: to the working directory
    if not database.parent.is_dir() and sweep_dir.absolute() not in database.parents:
        raise ConfigError(f"{setting}: the directory of {database} does not exist")


def _check_ray_address(launcher: DictConfig) -> None:
    """A Ray cluster that cannot be reached is named at once: Ray retries for minutes."""
    if not str(launcher.get("_target_", "")).endswith("RayLauncher"):
        return
    address = OmegaConf.select(launcher, "ray.init.address")
    if address is None or str(address) in ("auto", "local") or "://" in str(address):
        return
    setting = "hydra.launcher.ray.init.address"
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{setting}: {address!r} is not HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ConfigError(f"{setting}: cannot reach {address} ({reason})") from None
    if _ray_refuses_the_token(str(address)):
        raise ConfigError(f"{setting}: {address} refused this driver; {RAY_TOKEN_HINT}")


RAY_TOKEN_HINT = (
    "the cluster asks for its token: set RAY_AUTH_MODE=token, and RAY_AUTH_TOKEN or "
    "RAY_AUTH_TOKEN_PATH unless it is in ~/.ray/auth_token"
)


def _ray_refuses_the_token(address: str) -> bool:
    """Asks the cluster's GCS once whether it lets this driver in. Ray's own connect
    retries a refused token for 20 s, printing a C++ warning a second; this asks once,
    its one warning line silenced. Anything but a refusal is left to Ray's connect."""
    try:
        # Ray's own client; its module path is private (and untyped)
        from ray._raylet import GcsClient  # type: ignore[attr-defined]
        from ray.exceptions import AuthenticationError
    except ImportError:
        return False
    try:
        with _stderr_silenced():
            GcsClient(address=address)
    except AuthenticationError:
        return True
    except Exception:  # noqa: BLE001 - whatever else is wrong, Ray's connect reports it
        return False
    return False


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 goes to /dev/null meanwhile: C++ libraries write there directly."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _subdir(composed: DictConfig) -> str:
    """hydra.sweep.subdir as written, its interpolations unresolved."""
    sweep = OmegaConf.to_container(composed.hydra.sweep, resolve=False)
    assert isinstance(sweep, dict)
    return str(sweep.get("subdir"))


def _swept_values_only(composed: DictConfig, parsed: list[Override]) -> list[str]:
    """With the default `hydra.sweep.subdir`, leaves the sweep's fixed keys out of
    Hydra's `override_dirname`, so that job directories are named by what varies between
    jobs (and a continued sweep that changes a fixed key, a longer
    `trainer.total_steps`, keeps its names). A subdir of the user's own keeps Hydra's."""
    setting = "hydra.job.config.override_dirname.exclude_keys"
    if _subdir(composed) != JOB_SUBDIR or _override_of(parsed, setting) is not None:
        return []
    fixed = [o.key_or_group for o in parsed if not o.is_sweep_override()]
    return [f"{setting}=[{','.join(hydra_quote(key) for key in fixed)}]"]


def _job_name(job_config: DictConfig, number: int) -> str:
    """The directory name job `number` gets with the subdirs resume=auto continues."""
    if _subdir(job_config) == JOB_SUBDIR:
        return job_dirname(number, str(job_config.hydra.job.override_dirname))
    return str(number)  # ${hydra.job.num}, the layout before names carried values


def _check_continued_sweep(
    sweep_dir: Path,
    composed: DictConfig,
    parsed: list[Override],
    jobs: list[list[str]],
    job_configs: list[DictConfig],
    job_names: list[str],
) -> None:
    """resume=auto on a sweep: job k continues directory k, so each job that finds a run
    there must be that run's job (the same swept values, under the same name), and may
    change only what a resume may change. Checked for every job before any runs:
    nothing is touched."""
    if sweep_dir.exists() and not sweep_dir.is_dir():
        return  # claim_run_dir reports it
    sweep_files = ((sweep_dir / "multirun.yaml").is_file(), (sweep_dir / SWEEP_INDEX).is_file())
    if sweep_dir.is_dir() and any(sweep_dir.iterdir()) and not any(sweep_files):
        raise ConfigError(
            f"resume=auto: hydra.sweep.dir {sweep_dir} holds files but no sweep "
            "(no multirun.yaml or sweep.jsonl); give the sweep's own directory"
        )
    if _subdir(composed) not in (JOB_SUBDIR, OLD_JOB_SUBDIR):
        raise ConfigError(
            "resume=auto: keep the default hydra.sweep.subdir (job numbers, then values)"
        )
    swept = {o.key_or_group for o in parsed if o.is_sweep_override()}
    for number, (job, job_config) in enumerate(zip(jobs, job_configs, strict=True)):
        job_dir = _job_dir(sweep_dir, number)
        if job_dir is None or not (job_dir / SAVED_CONFIG).is_file():
            continue
        context = f"resume=auto: sweep job {' '.join(job)} would continue {job_dir}"
        try:  # before any job runs: a sweep that stops at a busy job has written nothing
            RunLock(job_dir).check_free()
        except RunLocked as error:
            raise RunLocked(f"{context}: {error}") from error
        saved, saved_settings = load_saved_config(job_dir)
        changes = _differences(saved, job_config)
        moved = [c for c in changes if {c.split("=")[0], c.split(".")[0]} & swept]
        if moved:
            raise ConfigError(
                f"{context}, a run with other swept values ({moved[0].split('=')[0]} "
                "differs); rerun the sweep's own command, or give a new hydra.sweep.dir"
            )
        if job_dir.name != job_names[number]:  # Hydra would start it afresh elsewhere
            hint = (
                f"; continue it with hydra.sweep.subdir='{OLD_JOB_SUBDIR}'"
                if job_dir.name == str(number)
                else ": rerun the sweep's own command (the same swept keys and values)"
            )
            raise ConfigError(
                f"resume=auto: sweep job {' '.join(job)} would run in "
                f"{job_names[number]!r}, beside job {number}'s earlier run {job_dir.name!r}"
                f"{hint}"
            )
        try:
            apply_resume_overrides(saved, saved_settings, changes)
        except ConfigError as error:
            raise ConfigError(f"{context}: {error}") from error


def _job_dir(sweep_dir: Path, number: int) -> Path | None:
    """Job `number`'s directory in a sweep that ran before (named `<number>_<values>`)."""
    if not sweep_dir.is_dir():
        return None
    prefix = f"{number}_"
    found = [p for p in sweep_dir.iterdir() if p.name == str(number) or p.name.startswith(prefix)]
    return found[0] if found else None


def _compose_sweep_base(fixed: list[str], parsed: list[Override]) -> DictConfig:
    """The config of a sweep's fixed overrides, which Hydra composes (for the sweep's
    own settings) with the default option of every swept group."""
    try:
        return compose_config(fixed)
    except (HydraException, OmegaConfBaseException) as error:
        swept = sorted(
            {o.key_or_group for o in parsed if o.is_sweep_override() and o.key_or_group in GROUPS}
        )
        if not swept:
            raise
        raise ConfigError(
            f"{one_line(error)} (a sweep's fixed keys must fit the default "
            f"{' and '.join(swept)} option too, as Hydra applies them before it sweeps "
            f"{', '.join(swept)}: run one sweep per option when their keys differ)"
        ) from error


AUTO = "auto"


def prepare_auto_resume(flags: list[str], overrides: list[str]) -> Launch:
    """`resume=auto`: the command a preempted job is requeued with. Its run directory
    (given by hydra.run.dir) is started if it holds no run yet, resumed exactly from its
    newest checkpoint if it has one, started again from its saved config if it stopped
    before its first checkpoint, and left as it is if it completed."""
    overrides = _integral_floats_as_ints(_without(overrides, ("resume",)))
    if _override_of(parse_overrides(overrides), "hydra.run.dir") is None:
        raise ConfigError(
            "resume=auto: give the run's directory with hydra.run.dir=... (the default "
            "name holds the start time, so a requeued command would start a new run)"
        )
    composed = compose_config(overrides)
    run_dir = Path(str(composed.hydra.run.dir)).expanduser()
    if not (run_dir / SAVED_CONFIG).is_file():
        return prepare_fresh_run(flags, overrides)
    saved, _ = load_saved_config(run_dir)
    changes = _differences(saved, _task_config(composed))
    return prepare_resume(str(run_dir), changes, show_config=False)


def _differences(saved: DictConfig, asked: DictConfig) -> list[str]:
    """Overrides that turn the saved config into the asked one (a resume then accepts
    the changeable ones, a longer run say, and refuses the rest, naming them)."""
    before = flat_config(OmegaConf.to_container(saved, resolve=True))
    after = flat_config(OmegaConf.to_container(asked, resolve=True))
    after.pop("resume", None)
    return [
        f"{key}={_override_value(value)}"
        for key, value in after.items()
        if key not in before or before[key] != value
    ]


def _override_value(value: Any) -> str:
    if isinstance(value, str) and not value.startswith("["):  # lists arrive as JSON text
        return hydra_quote(value)
    return "null" if value is None else json.dumps(value)


def prepare_resume(resume_value: str, overrides: list[str], show_config: bool) -> Launch:
    # Absolute: the resume command printed later must work from any directory.
    run_dir = Path(resume_value).expanduser().absolute()
    if not run_dir.is_dir():
        raise ConfigError(f"resume: {run_dir} is not a directory")
    if not (run_dir / SAVED_CONFIG).is_file():
        if holds_run(run_dir):
            raise ConfigError(f"resume: {missing_config_advice(run_dir)}")
        raise ConfigError(f"resume: {run_dir} is not a run directory (no {SAVED_CONFIG})")
    saved, saved_settings = load_saved_config(run_dir)
    check_groups_read(saved_settings.algo.name, _override_keys(overrides))
    merged, changes = apply_resume_overrides(saved, saved_settings, overrides)
    if show_config:
        validate(merged)
        print(OmegaConf.to_yaml(merged), end="")
        return Launch()
    lock = RunLock(run_dir).acquire()
    try:
        plan = check_resume_plan(run_dir, merged, changes)
    except BaseException:
        lock.release()
        raise
    return Launch(resume=plan, resume_lock=lock)


def check_resume_plan(run_dir: Path, merged: DictConfig, changes: list[str]) -> ResumePlan:
    """What a resume needs besides its config, checked while its lock is held."""
    settings = _check_runnable(merged)
    check_writable(run_dir)
    if (run_dir / CHECKPOINT_DIR).is_dir():
        check_writable(run_dir / CHECKPOINT_DIR)
    check_resumable(run_dir)
    return ResumePlan(run_dir, merged, settings, changes)


def auto_resume_plan(run_dir: Path, asked: DictConfig) -> ResumePlan:
    """A sweep job's `resume=auto` in a directory that holds its run (the caller holds
    the lock): the saved run, with the asked config's differences applied."""
    saved, saved_settings = load_saved_config(run_dir)
    merged, changes = apply_resume_overrides(saved, saved_settings, _differences(saved, asked))
    return check_resume_plan(run_dir, merged, changes)


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


def _home_expanded_dirs(arguments: list[str]) -> list[str]:
    """`hydra.run.dir=~/runs/x` (and hydra.sweep.dir): Hydra's override grammar refuses
    an unquoted `~`, and the shell leaves it alone after `key=`, so it is expanded here
    as a shell would, and quoted for Hydra. A `~user` with no such user stays as it is,
    and Hydra's parse error then says to quote it."""
    expanded = []
    for argument in arguments:
        match = re.fullmatch(r"(\+{0,2}hydra\.(?:run|sweep)\.dir)=(~.*)", argument, flags=re.DOTALL)
        home = os.path.expanduser(match.group(2)) if match else ""
        if match and home != match.group(2):
            argument = f"{match.group(1)}={hydra_quote(home)}"
        expanded.append(argument)
    return expanded


def check_resumable(run_dir: Path) -> None:
    """What a resume reads besides the checkpoint: its logs (rows past the checkpoint
    are dropped) and, if the run got past its first checkpoint, a checkpoint."""
    for name in (METRICS_FILE, EVALUATIONS_FILE):
        try:
            read_jsonl(run_dir / name)
        except ValueError as error:
            raise ConfigError(f"resume: {error}; repair or remove that line") from error
    summary = read_summary(run_dir / SUMMARY_FILE) or {}
    # These statuses are written at a checkpoint or after one.
    checkpointed = summary.get("status") in ("running", "completed", "interrupted")
    if checkpointed and not periodic_checkpoints(run_dir / CHECKPOINT_DIR):
        raise ConfigError(
            f"resume: {run_dir} was checkpointed at step {summary.get('env_steps')} "
            f"(summary.json) but its {CHECKPOINT_DIR}/step_*.pt files are gone; restore them"
        )


def prepare_launch(arguments: list[str]) -> Launch:
    """Check the command line completely; claim and lock the directory it writes to."""
    arguments = _home_expanded_dirs(_literal_resume_paths(arguments))
    args = parse_command_line(arguments)
    overrides: list[str] = args.overrides
    parsed = parse_overrides(overrides)
    if args.experimental_rerun is not None:
        raise ConfigError("--experimental-rerun: not supported; continue a run with resume=DIR")
    if _override_of(parsed, "hydra.mode") is not None:
        raise ConfigError("hydra.mode: start a sweep with -m (--multirun)")
    resume = _override_of(parsed, "resume")
    if resume is not None and resume.value() == AUTO and args.multirun:
        if _override_of(parsed, "hydra.sweep.dir") is None:
            raise ConfigError(
                "resume=auto: give the sweep's directory with hydra.sweep.dir=... (the "
                "default name holds the start time, so a requeued sweep would start anew)"
            )
        flags = _flags(arguments, overrides)
        return prepare_sweep(flags, _integral_floats_as_ints(overrides), adopt=True)
    if resume is not None and resume.value() == AUTO and not args.multirun:
        if args.cfg or args.help or args.info:
            raise ConfigError("resume=auto: start or continue a run; drop --cfg/--help/--info")
        return prepare_auto_resume(_flags(arguments, overrides), overrides)
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
