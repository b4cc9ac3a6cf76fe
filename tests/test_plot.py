"""rl-plot draws a run's learning curves into a PNG."""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from conftest import ok, read_jsonl, rl_run, tree_digest
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D

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
    [legend] = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == list(runs)
    for line, name in zip(eval_axis.get_lines(), runs, strict=True):
        evaluations = read_jsonl(tmp_path / name / "evaluations.jsonl")
        assert line.get_xdata().tolist() == [row["step"] for row in evaluations]
        assert line.get_ydata().tolist() == [row["eval/return_mean"] for row in evaluations]


def copies(run_dir: Path, destination: Path, count: int) -> list[Path]:
    """`count` copies of a run's logs (what rl-plot reads), named run00, run01, ..."""
    logs_only = shutil.ignore_patterns("checkpoints", "tensorboard")
    return [
        Path(shutil.copytree(run_dir, destination / f"run{index:02d}", ignore=logs_only))
        for index in range(count)
    ]


def test_more_than_ten_runs_each_keep_a_style_and_a_legend_entry(
    finished_run: Path, tmp_path: Path
):
    runs = copies(finished_run, tmp_path, 12)
    ok(subprocess.run([RL_PLOT, *map(str, runs), "-o", str(tmp_path / "all.png")], text=True))
    assert matplotlib.image.imread(tmp_path / "all.png").shape[1] > 1000
    figure = draw(runs)
    [legend] = figure.legends  # one for both panels
    assert [text.get_text() for text in legend.get_texts()] == [run.name for run in runs]
    entries = [style(line) for line in legend.get_lines()]
    assert len(set(entries)) == len(runs)
    for axis in figure.axes:  # the moving averages, the evaluations: styled as in the legend
        labelled = [line for line in axis.get_lines() if not line.get_label().startswith("_")]
        assert [style(line) for line in labelled] == entries


def style(line: Line2D) -> tuple[tuple[float, ...], str]:
    return to_rgba(line.get_color()), str(line.get_linestyle())


def test_a_run_without_an_evaluation_is_named_in_a_warning(finished_run: Path, tmp_path: Path):
    [run] = copies(finished_run, tmp_path, 1)
    (run / "evaluations.jsonl").write_text("")  # as a run before its first evaluation
    result = ok(
        subprocess.run(
            [RL_PLOT, str(run), "-o", str(tmp_path / "curve.png")], capture_output=True, text=True
        )
    )
    [line] = result.stderr.strip().splitlines()
    assert line == f"rl-plot: warning: {run}: no evaluation yet ({EMPTY})"
    assert (tmp_path / "curve.png").is_file()


EMPTY = "evaluations.jsonl is empty or missing"


def wait_for_reader(fifo: Path, process: subprocess.Popen) -> int:
    """Open `fifo` for writing once `process` has opened it to read (then blocked on it),
    and return the descriptor: the process is stopped where it reads its input."""
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:  # ENXIO: no reader yet
            assert error.errno == errno.ENXIO and process.poll() is None
            time.sleep(0.01)


OLD_PNG = b"the previous figure"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_is_one_line_and_leaves_the_previous_png(
    finished_run: Path, tmp_path: Path, stop: signal.Signals
):
    [run] = copies(finished_run, tmp_path / "runs", 1)
    evaluations = run / "evaluations.jsonl"
    evaluations.unlink()
    os.mkfifo(evaluations)  # rl-plot blocks reading it, for as long as the test likes
    output = tmp_path / "curve.png"
    output.write_bytes(OLD_PNG)
    process = subprocess.Popen(
        [RL_PLOT, str(run), "-o", str(output)], stderr=subprocess.PIPE, text=True
    )
    writer = wait_for_reader(evaluations, process)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    os.close(writer)
    assert process.returncode == 128 + stop
    assert stderr.splitlines() == [f"rl-plot: stopped by {stop.name}; nothing was written"]
    assert output.read_bytes() == OLD_PNG and sorted(tmp_path.iterdir()) == [output, run.parent]


def files_up_to(size: int) -> Callable[[], None]:
    """A subprocess's preexec_fn: its writes past `size` bytes fail, as on a disk that
    fills up (RLIMIT_FSIZE; Python ignores SIGXFSZ)."""
    import matplotlib.font_manager  # noqa: F401  its cache is written here, not under the limit

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_a_failed_write_is_one_line_and_leaves_the_previous_png(finished_run: Path, tmp_path: Path):
    output = tmp_path / "curve.png"
    output.write_bytes(OLD_PNG)
    result = subprocess.run(
        [RL_PLOT, str(finished_run), "-o", str(output)],
        capture_output=True,
        text=True,
        preexec_fn=files_up_to(10_000),  # the PNG is larger
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"rl-plot: error: cannot write {output}: File too large"]
    assert output.read_bytes() == OLD_PNG and list(tmp_path.iterdir()) == [output]
