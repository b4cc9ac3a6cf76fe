"""`rl-plot`: learning curves of one or more run directories as a PNG.

    rl-plot outputs/2026-11-23/12-00-00_dqn_cartpole_seed0    # -> ./12-00-00_dqn_cartpole_seed0.png
    rl-plot outputs/multirun/2026-11-23/12-00-00/*/ -o sweep.png # runs overlaid

Left: training episode returns with their 100-episode moving average (as the DQN
tutorial plots durations). Right: evaluation return mean and std against env steps.
The PNG goes to the working directory (run directories stay as the run left them).
A run still being written, or killed mid-write, is plotted up to its last whole row;
one without an evaluation yet is named in a warning. One legend below the panels names
every run (past ten runs, each gets a colour of a colour map and a dash pattern). The
PNG is written whole or not at all: Ctrl-C or SIGTERM leaves no partial file (exit 130/143).
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rl_runner.errors import StorageError
from rl_runner.rundir import EVALUATIONS_FILE, METRICS_FILE, atomic_file, read_jsonl
from rl_runner.tools.cli import (
    OneLineParser,
    curve_styles,
    run_writing_all_or_nothing,
    tool_description,
    warn_no_evaluation,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MOVING_AVERAGE = 100
LEGEND_COLUMNS = 3
LEGEND_ROW_INCHES = 0.25


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each point (fewer at the start)."""
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.arange(1, len(values) + 1) - counts]) / counts


def run_label(run_dir: Path) -> str:
    """The directory name, or for a sweep job (named by its number) its overrides."""
    overrides = run_dir / ".hydra" / "overrides.yaml"
    if run_dir.name.isdigit() and overrides.is_file():
        lines = overrides.read_text().splitlines()
        return ",".join(line.removeprefix("- ").strip() for line in lines) or run_dir.name
    return run_dir.name


def plot_runs(run_dirs: list[Path], output: Path) -> None:
    import matplotlib.pyplot as plt

    figure = draw(run_dirs)
    try:
        with atomic_file(output) as temporary:
            # the format named: the temporary file's suffix is not .png
            figure.savefig(temporary, dpi=110, format="png")
    finally:
        plt.close(figure)


def draw(run_dirs: list[Path]) -> Figure:
    """The figure: training returns left, evaluations right, a colour and linestyle per
    run, named in one legend below both panels."""
    # Imported here: `rl-plot --help` and its argument errors need neither.
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    legend_rows = math.ceil(len(run_dirs) / LEGEND_COLUMNS)
    figure, (train_axis, eval_axis) = plt.subplots(
        1, 2, figsize=(12, 4.5 + LEGEND_ROW_INCHES * legend_rows), layout="constrained"
    )
    handles = []
    for run_dir, (color, linestyle) in zip(run_dirs, curve_styles(len(run_dirs)), strict=True):
        label = run_label(run_dir)
        # the legend's entry, whichever panels the run has data for
        handles.append(Line2D([], [], color=color, linestyle=linestyle, label=label))
        episodes = [r for r in read_jsonl(run_dir / METRICS_FILE) if "train/episode_return" in r]
        if episodes:
            steps = np.array([r["step"] for r in episodes])
            returns = np.array([float(r["train/episode_return"]) for r in episodes])
            train_axis.plot(steps, returns, color=color, alpha=0.25, linewidth=0.8)
            average = moving_average(returns, MOVING_AVERAGE)
            train_axis.plot(steps, average, color=color, linestyle=linestyle, label=label)
        evaluations = read_jsonl(run_dir / EVALUATIONS_FILE)
        if not evaluations:
            warn_no_evaluation("rl-plot", run_dir)
        else:
            steps = np.array([r["step"] for r in evaluations])
            mean = np.array([float(r["eval/return_mean"]) for r in evaluations])
            std = np.array([float(r["eval/return_std"]) for r in evaluations])
            eval_axis.plot(
                steps, mean, color=color, linestyle=linestyle, marker="o", markersize=3, label=label
            )
            eval_axis.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2)
    train_axis.set(
        title=f"Training episodes ({MOVING_AVERAGE}-episode moving average)",
        xlabel="environment steps",
        ylabel="episode return",
    )
    eval_axis.set(
        title="Greedy evaluation (mean ± std)", xlabel="environment steps", ylabel="return"
    )
    for axis in (train_axis, eval_axis):
        axis.grid(alpha=0.3)
    columns = min(len(run_dirs), LEGEND_COLUMNS)
    figure.legend(handles=handles, loc="outside lower center", ncols=columns, fontsize="small")
    return figure


def default_output(run_dirs: list[Path]) -> Path:
    if len(run_dirs) == 1:
        return Path(f"{run_dirs[0].resolve().name}.png")
    return Path("learning_curves.png")


def _error(message: str) -> int:
    print(f"rl-plot: error: {message}", file=sys.stderr)
    return 2


def main(arguments: list[str] | None = None) -> int:
    return run_writing_all_or_nothing("rl-plot", _main, arguments)


def _main(arguments: list[str] | None) -> int:
    parser = OneLineParser(prog="rl-plot", description=tool_description(__doc__))
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument(
        "-o", "--output", type=Path, help="PNG path (default: ./<run name>.png in this directory)"
    )
    args = parser.parse_args(arguments)
    for run_dir in args.runs:
        if not (run_dir / METRICS_FILE).is_file():
            return _error(f"{run_dir} is not a run directory (no {METRICS_FILE})")
    output: Path = args.output or default_output(args.runs)
    if output.is_dir():
        output = output / default_output(args.runs)
    if output.suffix.lower() != ".png":
        output = output.with_name(output.name + ".png")
    if not output.parent.is_dir():
        return _error(f"-o: {output.parent} is not a directory")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # matplotlib's notes on empty plots
            plot_runs(args.runs, output)
    except (ValueError, TypeError, KeyError) as error:  # a damaged metrics file
        return _error(f"cannot read the runs' metrics: {error}")
    except StorageError as error:  # the PNG (atomic_file names it)
        return _error(str(error))
    except OSError as error:  # a run's file
        return _error(f"cannot read {error.filename}: {error.strerror or error}")
    print(output)
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
