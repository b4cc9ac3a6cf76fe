"""rl-plot draws a run's learning curves into a PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np

from rl_runner.tools.plot import moving_average

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


def test_plot_rejects_a_directory_that_is_not_a_run(tmp_path: Path):
    result = subprocess.run([RL_PLOT, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("rl-plot: error:")
    assert "not a run directory" in result.stderr
