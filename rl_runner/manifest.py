"""`manifest.json`: what produced a run, so that a figure can be traced back months later.

One record per session of the run: its start and each resume append one, with the step
it began at. A record holds rl-runner's version and git commit (and the user's working
tree's, where the run was started inside a git repository), the library versions, the
machine (CPU model and the flags that change floating-point results, the matmul
precision the algorithm trains with, GPU and CUDA), the command line, the host and the
time. `numerics(record)` is the part that changes results bit for bit: `rl-report`
warns when one group mixes runs that differ there.
"""

from __future__ import annotations

import logging
import os
import platform
import shlex
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_runner.hardware import cpu_flags, cpu_model
from rl_runner.rundir import read_summary, write_json_atomic

if TYPE_CHECKING:
    from rl_runner.config.settings import Settings

MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA = 1
LIBRARIES = ("torch", "gymnasium", "mujoco", "numpy", "hydra-core", "omegaconf")
NUMERIC_LIBRARIES = ("torch", "numpy", "gymnasium", "mujoco")
NUMERIC_MACHINE = ("cpu", "cpu_flags", "matmul_precision", "device", "gpu", "cuda")
# CPU features whose kernels give other floating-point results (bfloat16 and AMX
# products, fused multiply-adds, vector widths that change reduction orders)
NUMERIC_CPU_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2", "fma")
GIT_TIMEOUT_S = 5
COMMAND_LINE_VARIABLE = "RL_RUN_COMMAND_LINE"
SWEEP_ORIGIN_FILE = ".rl-run-origin.json"  # in a sweep directory: its driver's command

log = logging.getLogger("rl_runner")
PACKAGE_DIR = Path(__file__).resolve().parent


def remember_command_line(arguments: list[str]) -> None:
    """The command line as the user typed it, before rl-run rewrites it for Hydra; in
    the environment, so that a launcher's worker processes record it too."""
    os.environ[COMMAND_LINE_VARIABLE] = shlex.join(["rl-run", *arguments])


def remember_sweep_origin(sweep_dir: Path) -> None:
    """The driver's command line and directory, for its jobs' manifests: a launcher's
    workers (a Ray cluster's) run with their own argv, environment and directory."""
    write_json_atomic(
        sweep_dir / SWEEP_ORIGIN_FILE,
        {"command": _command_line(), "working_directory": str(Path.cwd())},
    )


def origin(sweep_dir: Path | None) -> tuple[str, Path]:
    """Who started this session, and where: a sweep job's driver, else this process."""
    saved = None if sweep_dir is None else read_summary(sweep_dir / SWEEP_ORIGIN_FILE)
    if saved is not None and {"command", "working_directory"} <= saved.keys():
        return str(saved["command"]), Path(str(saved["working_directory"]))
    return _command_line(), Path.cwd()


def _command_line() -> str:
    return os.environ.get(COMMAND_LINE_VARIABLE, shlex.join(sys.argv))


def record_session(
    run_dir: Path, settings: Settings, step: int, sweep_dir: Path | None = None
) -> None:
    """Appends this session's record (a start at step 0, or a resume) to the run's
    manifest, written atomically; a sweep job's names its driver's command."""
    path = run_dir / MANIFEST_FILE
    manifest = read_manifest(run_dir)
    if manifest is None and path.exists():  # damaged: kept aside, not written over
        kept = path.with_name(f"{MANIFEST_FILE}.damaged")
        path.replace(kept)
        log.warning("%s could not be read: kept as %s; a new one starts here", path, kept.name)
    manifest = manifest or {"schema": MANIFEST_SCHEMA, "sessions": []}
    record = session(settings, step, sweep_dir)
    if step == 0 and manifest["sessions"]:  # killed before its first checkpoint, begun again
        record["kind"] = "restart"
    manifest["sessions"].append(record)
    write_json_atomic(path, manifest)


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The manifest, or None where it is missing or not one (a list of session
    records)."""
    manifest = read_summary(run_dir / MANIFEST_FILE)
    sessions = None if manifest is None else manifest.get("sessions")
    if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
        return None
    return manifest


def session(settings: Settings, step: int, sweep_dir: Path | None = None) -> dict[str, Any]:
    command, directory = origin(sweep_dir)
    return {
        "kind": "start" if step == 0 else "resume",
        "step": step,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "command": command,
        "working_directory": str(directory),
        "rl_runner": {"version": _version("rl-runner"), "git": own_checkout()},
        "project_git": _project_git(directory),
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "machine": machine(settings),
    }


def numerics(record: dict[str, Any]) -> dict[str, str]:
    """What in a session record changes results bit for bit, each as text: the torch,
    numpy, gymnasium and mujoco versions (MuJoCo's physics), the CPU and its numeric
    flags, the matmul precision, the device type, GPU and CUDA."""
    libraries, machine_record = (_mapping(record.get(key)) for key in ("libraries", "machine"))
    values: dict[str, Any] = {name: libraries.get(name) for name in NUMERIC_LIBRARIES}
    values |= {key: machine_record.get(key) for key in NUMERIC_MACHINE}
    values["device"] = str(values["device"]).split(":")[0]  # cuda:1 computes as cuda:0
    flags = values["cpu_flags"]
    values["cpu_flags"] = "+".join(map(str, flags)) if isinstance(flags, list) else flags
    return {key: "none" if value in (None, "") else str(value) for key, value in values.items()}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def machine(settings: Settings) -> dict[str, Any]:
    import torch

    from rl_runner.agents.common import resolve_matmul_precision
    from rl_runner.build import resolve_device

    device = resolve_device(settings.run.device)
    setting = getattr(settings.algo, "matmul_precision", None)  # tabular agents have none
    # where the algorithm sets none, its products run at torch's default
    precision = (
        torch.get_float32_matmul_precision()
        if setting is None
        else resolve_matmul_precision(setting, device)
    )
    flags = cpu_flags()
    return {
        "cpu": cpu_model(),
        "cpu_flags": [flag for flag in NUMERIC_CPU_FLAGS if flag in flags],
        "cpu_count": os.cpu_count(),
        "torch_threads": settings.run.threads,
        "device": str(device),
        "matmul_precision": precision,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
    }


def git_state(directory: Path) -> dict[str, Any] | None:
    """The commit checked out in the git repository holding `directory`, and whether its
    tracked files differ from it; None outside a repository (an installed wheel) or
    without git."""
    commit = _git(directory, "rev-parse", "HEAD")
    if commit is None:
        return None
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    top = _git(directory, "rev-parse", "--show-toplevel")
    return {"commit": commit, "dirty": bool(status), "repository": top}


def own_checkout() -> dict[str, Any] | None:
    """rl-runner's git state where it runs from its own checkout (an editable install);
    None for an installed copy, even one inside another repository (a project's .venv)."""
    state = git_state(PACKAGE_DIR)
    if state is None or Path(state["repository"]).resolve() != PACKAGE_DIR.parent:
        return None
    return state


def _project_git(directory: Path) -> dict[str, Any] | None:
    """The user's working tree, where rl-run was started in a git repository other
    than rl-runner's own checkout."""
    state = git_state(directory)
    own = own_checkout()
    if state is None or (own is not None and own["repository"] == state["repository"]):
        return None
    return state


def _git(directory: Path, *arguments: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *arguments],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None
