"""`rl-report`: results across seeds. Groups runs by everything but the seed and
writes, per group, the evaluation curve (mean across seeds with a 95% bootstrap band)
and a table of final and best evaluation returns.

    rl-report outputs/multirun/2026-11-26/10-00-00            # a sweep: every job in it
    rl-report SWEEP_A SWEEP_B outputs/2026-11-26/*/ -o report  # several sweeps and runs

The table (Markdown on stdout and in report.md, and report.csv) gives per group: the
seeds, final and best return as mean ± std and as interquartile mean (IQM, the mean of
the middle 50%: robust to one lucky or failed seed) with a 95% bootstrap confidence
interval, and mean wall time; best first (by final IQM). Runs that have not completed
(running, interrupted, failed) are left out and listed. The figure is report.png.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rl_runner.config.settings import flat_config
from rl_runner.rundir import EVALUATIONS_FILE, SAVED_CONFIG, SUMMARY_FILE, read_jsonl
from rl_runner.tools.cli import OneLineParser

# Keys that never make two runs different experiments: the seed is what a group spans;
# where and how a run was started, and what it resumed from, do not change its results.
IGNORED_KEYS = {
    "seed",
    "resume",
    "device",
    "threads",
    "checkpoint.every",
    "checkpoint.keep_last",
    "sweep.objective",  # what a run reports to a sweeper, not how it trains
}
CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass
class Run:
    path: Path
    config: dict[str, Any]  # flattened: "algo.lr" -> 0.001
    summary: dict[str, Any]
    evaluations: list[dict[str, Any]]

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def completed(self) -> bool:
        return self.summary.get("status") == "completed"

    @property
    def finite(self) -> bool:
        """Both returns are numbers (a diverged policy can score NaN)."""
        values = [self.summary.get(f"{k}_eval_return_mean") for k in ("final", "best")]
        return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


@dataclass
class Group:
    label: str
    runs: list[Run] = field(default_factory=list)
    incomplete: list[Run] = field(default_factory=list)


def find_runs(paths: list[Path]) -> list[Path]:
    """Each path is a run directory, or holds runs below it (a sweep, a date folder)."""
    found: list[Path] = []
    for path in paths:
        if (path / SAVED_CONFIG).is_file():
            found.append(path)
        else:
            found += sorted(config.parent.parent for config in path.rglob(str(SAVED_CONFIG)))
    return list(dict.fromkeys(path.resolve() for path in found))


def load_run(path: Path) -> Run:
    """A run's saved config, summary and evaluations; a file that cannot be read is a
    ValueError naming it."""
    from omegaconf import OmegaConf

    current = path / SAVED_CONFIG
    try:
        config = OmegaConf.to_container(OmegaConf.load(current), resolve=False)
        current = path / SUMMARY_FILE
        summary = json.loads(current.read_text()) if current.is_file() else {}
        current = path / EVALUATIONS_FILE
        evaluations = read_jsonl(current) if current.is_file() else []
    except (ValueError, OSError, yaml.YAMLError) as error:
        detail = " ".join(str(error).split())[:200]
        raise ValueError(f"cannot read {current}: {detail}") from error
    if not isinstance(config, dict) or not isinstance(summary, dict):
        raise ValueError(f"cannot read {current}: not a mapping")
    return Run(path, flat_config(config), summary, evaluations)


def _differ(runs: list[Run], key: str) -> bool:
    return len({repr(run.config.get(key)) for run in runs}) > 1


def _label_keys(runs: list[Run], varying: list[str]) -> list[str]:
    """The varying keys a label shows: where runs differ in a group's option
    (`algo.name`), that option's own keys (every default of dqn against reinforce) are
    left out, unless they also vary between runs of one option (a swept `algo.lr`)."""
    shown = list(varying)
    for name_key in [key for key in varying if key.count(".") == 1 and key.endswith(".name")]:
        prefix = name_key.removesuffix("name")
        options: dict[str, list[Run]] = {}
        for run in runs:
            options.setdefault(repr(run.config.get(name_key)), []).append(run)
        for key in [key for key in varying if key.startswith(prefix) and key != name_key]:
            if not any(_differ(members, key) for members in options.values()):
                shown.remove(key)
    return shown


def group_runs(runs: list[Run]) -> list[Group]:
    """Runs that differ only in ignored keys share a group, labelled by the keys that
    differ between groups."""
    keys = sorted({key for run in runs for key in run.config} - IGNORED_KEYS)
    varying = [key for key in keys if _differ(runs, key)]
    shown = _label_keys(runs, varying)
    groups: dict[tuple[str, ...], Group] = {}
    for run in runs:
        identity = tuple(repr(run.config.get(key)) for key in varying)
        label = ", ".join(f"{key}={run.config.get(key)}" for key in shown) or "all runs"
        group = groups.setdefault(identity, Group(label))
        (group.runs if run.completed and run.finite else group.incomplete).append(run)
    return list(groups.values())


def interquartile_mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    from scipy.stats import trim_mean

    return np.asarray(trim_mean(values, 0.25, axis=axis))


def percentile_bootstrap(values: np.ndarray, statistic: Any) -> tuple[Any, Any]:
    """The 95% percentile-bootstrap interval of `statistic` over seeds (axis 0), seeded
    so that a report is the same every time it is made."""
    from scipy.stats import bootstrap

    interval = bootstrap(
        (values,),
        statistic,
        axis=0,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(0),
    ).confidence_interval
    return interval.low, interval.high


def bootstrap_interval(values: np.ndarray, statistic: Any) -> tuple[float, float]:
    """The interval of a statistic of one value per seed (nan for one seed)."""
    if len(values) < 2:
        return math.nan, math.nan  # no spread to resample: shown as n/a
    if np.all(values == values[0]):
        value = float(statistic(values))
        return value, value
    low, high = percentile_bootstrap(values, statistic)
    return float(low), float(high)


def summarise(group: Group) -> dict[str, Any]:
    row: dict[str, Any] = {"group": group.label, "seeds": len(group.runs)}
    for name in ("final", "best"):
        values = np.array([float(run.summary[f"{name}_eval_return_mean"]) for run in group.runs])
        low, high = bootstrap_interval(values, interquartile_mean)
        row.update(
            {
                f"{name}_mean": float(values.mean()) if len(values) else math.nan,
                f"{name}_std": float(values.std()) if len(values) else math.nan,
                f"{name}_iqm": float(interquartile_mean(values)) if len(values) else math.nan,
                f"{name}_iqm_low": low,
                f"{name}_iqm_high": high,
            }
        )
    walls = [float(run.summary.get("wall_seconds", math.nan)) for run in group.runs]
    row["wall_seconds_mean"] = float(np.mean(walls)) if walls else math.nan
    row["incomplete"] = len(group.incomplete)
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| group | seeds | final mean ± std | final IQM [95% CI] | best mean ± std "
        "| best IQM [95% CI] | wall s | not completed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [row["group"], str(row["seeds"])]
        for name in ("final", "best"):
            cells.append(f"{row[f'{name}_mean']:.2f} ± {row[f'{name}_std']:.2f}")
            low, high = row[f"{name}_iqm_low"], row[f"{name}_iqm_high"]
            interval = "n/a" if math.isnan(low) else f"[{low:.2f}, {high:.2f}]"
            cells.append(f"{row[f'{name}_iqm']:.2f} {interval}")
        cells += [f"{row['wall_seconds_mean']:.1f}", str(row["incomplete"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def curve(group: Group) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Steps every run of the group evaluated at, the mean return there and its 95%
    bootstrap band across seeds."""
    tables = [
        {row["step"]: row["eval/return_mean"] for row in run.evaluations} for run in group.runs
    ]
    steps = sorted(set.intersection(*(set(table) for table in tables))) if tables else []
    if not steps:
        return None
    returns = np.array([[table[step] for step in steps] for table in tables], dtype=float)
    mean = returns.mean(axis=0)
    if len(returns) < 2:
        return np.array(steps), mean, mean, mean
    low, high = percentile_bootstrap(returns, np.mean)
    low, high = np.nan_to_num(low, nan=mean), np.nan_to_num(high, nan=mean)
    return np.array(steps), mean, low, high


def draw(groups: list[Group], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 5))
    for index, group in enumerate(groups):
        drawn = curve(group)
        if drawn is None:
            continue
        steps, mean, low, high = drawn
        color = f"C{index % 10}"
        axis.plot(steps, mean, color=color, label=f"{group.label} (n={len(group.runs)})")
        axis.fill_between(steps, low, high, color=color, alpha=0.2)
    axis.set(
        title="Evaluation return: mean across seeds, 95% bootstrap band",
        xlabel="environment steps",
        ylabel="return",
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)


def report(paths: list[Path], output_dir: Path) -> list[dict[str, Any]]:
    runs = [load_run(path) for path in find_runs(paths)]
    if not runs:
        raise ValueError(f"no run directories in {', '.join(map(str, paths))}")
    groups = group_runs(runs)
    rows = sorted(
        (summarise(group) for group in groups if group.runs),
        key=lambda row: -row["final_iqm"],
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    table = markdown(rows)
    (output_dir / "report.md").write_text(table)
    with open(output_dir / "report.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["group"])
        writer.writeheader()
        writer.writerows(rows)
    draw([group for group in groups if group.runs], output_dir / "report.png")
    print(table, end="")
    for group in groups:
        for run in group.incomplete:
            status = run.summary.get("status", "not started")
            why = "a non-finite return" if run.completed else status
            print(f"not completed ({why}): {run.path} [{group.label}]")
    print(f"written: {output_dir / 'report.md'}, report.csv, report.png")
    return rows


def main(arguments: list[str] | None = None) -> int:
    parser = OneLineParser(prog="rl-report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="sweep or run directories")
    parser.add_argument("-o", "--output", type=Path, default=Path("."), help="output folder")
    args = parser.parse_args(arguments)
    for path in args.paths:
        if not path.is_dir():
            return _error(f"{path} is not a directory")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's notes on tiny samples: the table says n/a
            report(args.paths, args.output)
    except ValueError as error:
        return _error(str(error))
    except OSError as error:
        return _error(f"cannot write {error.filename or args.output}: {error.strerror or error}")
    return 0


def _error(message: str) -> int:
    print(f"rl-report: error: {message}", file=sys.stderr)
    return 2


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
