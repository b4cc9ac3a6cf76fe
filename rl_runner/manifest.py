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
# CPU features whose kernels give other floating-point results (bfloat16 and AMX
# products, fused multiply-adds, vector widths that change reduction orders)
NUMERIC_CPU_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2", "fma")
GIT_TIMEOUT_S = 5
COMMAND_LINE_VARIABLE = "RL_RUN_COMMAND_LINE"
PACKAGE_DIR = Path(__file__).resolve().parent


def remember_command_line(arguments: list[str]) -> None:
    """The command line as the user typed it, before rl-run rewrites it for Hydra; in
    the environment, so that a launcher's worker processes record it too."""
    os.environ[COMMAND_LINE_VARIABLE] = shlex.join(["rl-run", *arguments])


def record_session(run_dir: Path, settings: Settings, step: int) -> None:
    """Appends this session's record (a start at step 0, or a resume) to the run's
    manifest, written atomically."""
    manifest = read_manifest(run_dir) or {"schema": MANIFEST_SCHEMA, "sessions": []}
    manifest["sessions"].append(session(settings, step))
    write_json_atomic(run_dir / MANIFEST_FILE, manifest)


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    manifest = read_summary(run_dir / MANIFEST_FILE)
    if manifest is None or not isinstance(manifest.get("sessions"), list):
        return None
    return manifest


def session(settings: Settings, step: int) -> dict[str, Any]:
    return {
        "kind": "start" if step == 0 else "resume",
        "step": step,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "command": os.environ.get(COMMAND_LINE_VARIABLE, shlex.join(sys.argv)),
        "working_directory": str(Path.cwd()),
        "rl_runner": {"version": _version("rl-runner"), "git": git_state(PACKAGE_DIR)},
        "project_git": _project_git(),
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "machine": machine(settings),
    }


def numerics(record: dict[str, Any]) -> dict[str, Any]:
    """What in a session record changes floating-point results: the torch version, the
    CPU and its numeric flags, the matmul precision, the device, GPU and CUDA."""
    machine_record = record.get("machine", {})
    return {
        "torch": record.get("libraries", {}).get("torch"),
        **{
            key: machine_record.get(key)
            for key in ("cpu", "cpu_flags", "matmul_precision", "device", "gpu", "cuda")
        },
    }


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


def _project_git() -> dict[str, Any] | None:
    """The user's working tree, where rl-run was started in a git repository other
    than rl-runner's own."""
    state = git_state(Path.cwd())
    own = git_state(PACKAGE_DIR)
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
