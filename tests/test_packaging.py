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
    names = zipfile.ZipFile(wheel).namelist()
    for config in ("config.yaml", "algo/dqn.yaml", "experiment/dqn_cartpole_tutorial.yaml"):
        assert f"rl_runner/configs/{config}" in names
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
    for script in ("common.py", "default_preset_solve_rate.py", "divergence_check_cost.py"):
        result = subprocess.run(
            [sys.executable, "-c", f"import runpy; runpy.run_path({script!r}, run_name='check')"],
            cwd=benchmarks,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"{script}: {result.stderr[-1500:]}"
