"""rl-plot draws a run's learning curves into a PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
from conftest import ok, read_jsonl, rl_run, tree_digest

from rl_runner.tools.plot import draw, moving_average

RL_PLOT = str(Path(sys.executable).parent / "rl-plot")


def test_moving_average_uses_the_available_prefix_then_a_full_window():
    values = np.array([1.0, 3.0, 5.0, 7.0])
    assert moving_average(values, 2).tolist() == [1.0, 2.0, 4.0, 6.0]
    assert moving_average(values, 100).tolist() == [1.0, 2.0, 3.0, 4.0]


def test_plot_of_a_run_writes_a_png_inside_it(finished_run: Path, tmp_path: Path):
    output = tmp_path / "curve.png"
    result = subprocess.run(
        [RL_PLOT, str(finished_run), "-o", str(output)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    image = matplotlib.image.imread(output)
    height, width = image.shape[:2]
    assert width > 1000 and height > 400
    # Not a blank canvas: the curves put many distinct colours on it.
    assert len(np.unique(image.reshape(-1, image.shape[2]), axis=0)) > 50


def test_plot_writes_into_the_working_directory_not_the_run(finished_run: Path, tmp_path: Path):
    before = tree_digest(finished_run)
    result = subprocess.run(
        [RL_PLOT, str(finished_run)], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / f"{finished_run.name}.png").is_file()
    assert tree_digest(finished_run) == before


def plot_error(*args: str, cwd: Path) -> str:
    result = subprocess.run([RL_PLOT, *args], cwd=cwd, capture_output=True, text=True)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("rl-plot: error:")
    return lines[0]


def test_plot_errors_are_one_line(finished_run: Path, tmp_path: Path):
    assert "not a run directory" in plot_error(str(tmp_path), cwd=tmp_path)
    missing = tmp_path / "missing" / "curve.png"
    assert "is not a directory" in plot_error(str(finished_run), "-o", str(missing), cwd=tmp_path)
    assert "cannot write" in plot_error(str(finished_run), "-o", "/proc/curve.png", cwd=tmp_path)


def test_runs_of_different_algorithms_overlay_with_a_legend(tmp_path: Path):
    runs = {
        "maze": ["algo=sarsa", "env=maze", "trainer.total_steps=1000", "eval.every=250"],
        "reinforce": ["algo=reinforce", "trainer.total_steps=2000", "eval.every=500"],
    }
    for name, args in runs.items():
        ok(rl_run(*args, f"hydra.run.dir={tmp_path / name}", cwd=tmp_path))
    figure = draw([tmp_path / name for name in runs])
    _, eval_axis = figure.axes
    assert [text.get_text() for text in eval_axis.get_legend().get_texts()] == list(runs)
    for line, name in zip(eval_axis.get_lines(), runs, strict=True):
        evaluations = read_jsonl(tmp_path / name / "evaluations.jsonl")
        assert line.get_xdata().tolist() == [row["step"] for row in evaluations]
        assert line.get_ydata().tolist() == [row["eval/return_mean"] for row in evaluations]
