"""The configs ship inside the package: an installed rl-run finds them anywhere."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_carries_the_config_tree_and_runs_from_it(tmp_path: Path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("rl_runner-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # Every module and config of the source tree, not a hand-kept list of them.
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "rl_runner").rglob("*.py")}
    configs = {
        "rl_runner/configs/" + p.relative_to(REPO / "configs").as_posix()
        for p in (REPO / "configs").rglob("*.yaml")
    }
    assert "rl_runner/agents/td3.py" in sources and "rl_runner/configs/algo/sac.yaml" in configs
    missing = sorted((sources | configs) - names)
    assert not missing, f"left out of the wheel: {missing}"
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    # Run from an unrelated directory with only the unpacked wheel importable.
    code = (
        f"import sys; sys.path.insert(0, {str(installed)!r}); import rl_runner; "
        f"assert rl_runner.__file__.startswith({str(installed)!r}), rl_runner.__file__; "
        "from rl_runner.train import cli; sys.argv = ['rl-run', '--cfg', 'job', 'seed=5']; cli()"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "seed: 5" in result.stdout and "name: dqn" in result.stdout


def test_benchmark_scripts_import_against_the_current_package():
    """The benchmarks are not run by the suite; their imports must still hold."""
    benchmarks = REPO / "benchmarks"
    scripts = sorted(p.name for p in benchmarks.glob("*.py"))
    for script in scripts:
        result = subprocess.run(
            [sys.executable, "-c", f"import runpy; runpy.run_path({script!r}, run_name='check')"],
            cwd=benchmarks,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"{script}: {result.stderr[-1500:]}"
