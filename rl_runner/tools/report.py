"""`rl-report`: results across seeds. Groups runs by everything but the seed and
writes, per group, the evaluation curve (mean across seeds with a 95% bootstrap band)
and a table of final and best evaluation returns.

    rl-report outputs/multirun/2026-11-26/10-00-00            # a sweep: every job in it
    rl-report SWEEP_A SWEEP_B outputs/2026-11-26/*/ -o report  # several sweeps and runs

The table (Markdown on stdout and in report.md, and report.csv) gives per group: the
seeds, final and best return as mean ± std and as interquartile mean (IQM, the mean of
the middle 50%: robust to one lucky or failed seed) with a 95% bootstrap confidence
interval, and mean wall time; best first (by final IQM). Runs that have not completed
(running, interrupted, failed) are left out and listed; with none left to report, it
says so and writes nothing. The figure is report.png.

A group's label names only the settings that tell the groups apart (a small set, chosen
greedily, group options such as `algo.name` first), and only those its algorithm has;
report.csv holds every setting that differs between the groups, one column each, and
report.md lists them per group where a label leaves some out. The three files are
written whole or not at all: Ctrl-C or SIGTERM leaves none half-written (exit 130/143).
"""

from __future__ import annotations

import csv
import json
import math
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rl_runner.config.settings import GROUPS, flat_config, groups_of
from rl_runner.errors import ConfigError, StorageError
from rl_runner.manifest import numerics, read_manifest
from rl_runner.rundir import (
    EVALUATIONS_FILE,
    SAVED_CONFIG,
    SUMMARY_FILE,
    atomic_file,
    read_jsonl,
)
from rl_runner.tools.cli import (
    OneLineParser,
    curve_styles,
    run_writing_all_or_nothing,
    tool_description,
    warn,
    warn_no_evaluation,
)

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
    "tracking.backend",  # where else a run's results went
    "tracking.uri",
    "tracking.experiment",
    "eval.video.every",  # what an evaluation films, not what it scores
    "eval.video.fps",
    "eval.video.size",
    "eval.video.max_frames",
}
CONFIDENCE = 0.95
RESAMPLES = 2000
# A label is a legend entry and a table cell: longer ones end in an ellipsis (report.csv
# and report.md keep the settings whole).
MAX_LABEL_CHARS = 80


@dataclass
class Run:
    path: Path
    config: dict[str, Any]  # flattened: "algo.lr" -> 0.001
    summary: dict[str, Any]
    evaluations: list[dict[str, Any]]
    # what changes floating-point results, per session (manifest.json); none for a run
    # from before manifests
    numerics: list[dict[str, Any]] = field(default_factory=list)

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

    @property
    def skip_reason(self) -> str:
        """Why the run is left out of the table (for one that is)."""
        if self.completed:
            return "a non-finite return"
        return str(self.summary.get("status", "not started"))


@dataclass
class Group:
    # the settings that differ between groups, as this group has them (a key its
    # algorithm does not have is absent)
    settings: dict[str, Any]
    label: str = ""
    runs: list[Run] = field(default_factory=list)
    incomplete: list[Run] = field(default_factory=list)

    @property
    def settings_text(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in sorted(self.settings.items()))


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
    manifest = read_manifest(path)
    sessions = [] if manifest is None else [numerics(record) for record in manifest["sessions"]]
    return Run(path, settings_read(flat_config(config)), summary, evaluations, sessions)


def mixed_numerics(runs: list[Run]) -> str | None:
    """Where the runs' sessions differ in what changes floating-point results, as
    `key a | b; ...`, or None where they agree."""
    seen: dict[str, dict[str, list[Run]]] = {}
    for run in runs:
        for record in run.numerics:
            for key, value in record.items():
                holders = seen.setdefault(key, {}).setdefault(value, [])
                if run not in holders:
                    holders.append(run)
    differing = []
    for key, values in seen.items():
        if len(values) > 1:
            shown = [f"{value} ({_named(holders)})" for value, holders in sorted(values.items())]
            differing.append(f"{key} {' | '.join(shown)}")
    return "; ".join(differing) or None


def _named(runs: list[Run]) -> str:
    """The runs of one value, by directory name: three at most, then how many more."""
    names = [run.path.name for run in runs[:3]]
    return ", ".join(names) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")


def settings_read(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of a flattened config that its algorithm reads. A saved config holds
    every group (Hydra composes a network and a replay memory for a table too), but a
    group the algorithm never reads (a tabular run's `buffer`) cannot make two runs
    different experiments."""
    try:
        read = groups_of(str(config.get("algo.name")))
    except ConfigError:  # an algorithm this version does not know: keep every setting
        return config
    unread = set(GROUPS) - set(read)
    return {key: value for key, value in config.items() if key.split(".")[0] not in unread}


def _differ(runs: list[Run], key: str) -> bool:
    # through .get: a key null in one run and absent in another is no difference
    return len({repr(run.config.get(key)) for run in runs}) > 1


def group_runs(runs: list[Run]) -> list[Group]:
    """Runs that differ only in ignored keys share a group, labelled by the keys that
    tell the groups apart."""
    keys = sorted({key for run in runs for key in run.config} - IGNORED_KEYS)
    varying = [key for key in keys if _differ(runs, key)]
    groups: dict[tuple[str, ...], Group] = {}
    for run in runs:
        identity = tuple(repr(run.config.get(key)) for key in varying)
        settings = {key: run.config[key] for key in varying if key in run.config}
        group = groups.setdefault(identity, Group(settings))
        (group.runs if run.completed and run.finite else group.incomplete).append(run)
    keys_shown = distinguishing_keys(list(groups.values()))
    for group in groups.values():
        group.label = label(group, keys_shown)
    return list(groups.values())


def _is_option(key: str) -> bool:
    """A group's option (`algo.name`, `env.name`): it implies all of its defaults."""
    return key.count(".") == 1 and key.endswith(".name")


def distinguishing_keys(groups: list[Group]) -> list[str]:
    """Few keys whose values tell every group apart. Chosen greedily: each step adds the
    key that tells the most groups apart, an option first on a tie, so that dqn against
    reinforce is `algo.name`, not every default in which the two differ."""
    candidates = sorted({key for group in groups for key in group.settings})

    def told_apart(keys: list[str]) -> int:
        return len({tuple(repr(group.settings.get(key)) for key in keys) for group in groups})

    def preference(key: str) -> tuple[int, bool, int]:
        return told_apart([*chosen, key]), _is_option(key), -candidates.index(key)

    chosen: list[str] = []
    # ends: two groups not yet told apart differ in some candidate, which adds one
    while told_apart(chosen) < len(groups):
        chosen.append(max((key for key in candidates if key not in chosen), key=preference))
    return sorted(chosen)


def label(group: Group, keys: list[str]) -> str:
    """The group's values of `keys`, leaving out the keys its algorithm does not have
    (reinforce has no `algo.amsgrad`)."""
    if not keys:
        return "all runs"
    shown = [f"{key}={group.settings[key]}" for key in keys if key in group.settings]
    text = ", ".join(shown) or f"without {', '.join(keys)}"
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


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
    """The table, a row per group."""
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


def settings_section(groups: list[Group]) -> str:
    """Each group's differing settings in full, where a label leaves some out."""
    if all(group.settings_text == group.label for group in groups):
        return ""
    lines = [f"- {group.label}: {group.settings_text}" for group in groups]
    return "\nSettings that differ between the groups:\n\n" + "\n".join(lines) + "\n"


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
    for group, (color, linestyle) in zip(groups, curve_styles(len(groups)), strict=True):
        drawn = curve(group)
        if drawn is None:
            continue
        steps, mean, low, high = drawn
        axis.plot(
            steps,
            mean,
            color=color,
            linestyle=linestyle,
            label=f"{group.label} (n={len(group.runs)})",
        )
        axis.fill_between(steps, low, high, color=color, alpha=0.2)
    axis.set(
        title="Evaluation return: mean across seeds, 95% bootstrap band",
        xlabel="environment steps",
        ylabel="return",
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    try:
        # the format named: the temporary file's suffix is not .png
        figure.savefig(output, dpi=110, format="png")
    finally:
        plt.close(figure)


def nothing_to_report(runs: list[Run]) -> str:
    reasons = Counter(run.skip_reason for run in runs)
    why = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())
    return f"no completed run with an evaluation to report: {len(runs)} run(s) skipped ({why})"


def write_csv(path: Path, reported: list[tuple[dict[str, Any], Group]]) -> None:
    """The statistics, then a column per setting that differs between the groups
    (empty where a group's algorithm has no such setting)."""
    setting_keys = sorted({key for _, group in reported for key in group.settings})
    with open(path, "w", newline="") as handle:
        fields = [*reported[0][0], *setting_keys]
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows({**row, **group.settings} for row, group in reported)


def report(paths: list[Path], output_dir: Path) -> list[dict[str, Any]]:
    runs = [load_run(path) for path in find_runs(paths)]
    if not runs:
        raise ValueError(f"no run directories in {', '.join(map(str, paths))}")
    groups = group_runs(runs)
    reported = sorted(
        ((summarise(group), group) for group in groups if group.runs),
        key=lambda pair: -pair[0]["final_iqm"],
    )
    if not reported:
        raise ValueError(nothing_to_report(runs))
    for run in runs:
        if not run.evaluations:
            warn_no_evaluation("rl-report", run.path)
    unrecorded = [run.path for run in runs if not run.numerics]
    if unrecorded and len(unrecorded) < len(runs):
        names = ", ".join(path.name for path in unrecorded[:3])
        more = f" and {len(unrecorded) - 3} more" if len(unrecorded) > 3 else ""
        warn("rl-report", f"no readable manifest.json in {names}{more}: numerics not compared")
    for _, group in reported:
        mixed = mixed_numerics(group.runs)
        if mixed is not None:
            message = f"the runs of [{group.label}] ran with different numerics ({mixed})"
            warn("rl-report", f"{message}: their seeds do not compare bit for bit")
    rows = [row for row, _ in reported]
    table = markdown(rows)
    output_dir.mkdir(parents=True, exist_ok=True)
    # Each file to a temporary one, renamed only once all three are complete: a stop or
    # a failed write leaves the previous report as it was.
    with (
        atomic_file(output_dir / "report.md") as report_md,
        atomic_file(output_dir / "report.csv") as report_csv,
        atomic_file(output_dir / "report.png") as report_png,
    ):
        report_md.write_text(table + settings_section([group for _, group in reported]))
        write_csv(report_csv, reported)
        draw([group for _, group in reported], report_png)
    print(table, end="")
    for group in groups:
        for run in group.incomplete:
            print(f"not completed ({run.skip_reason}): {run.path} [{group.label}]")
    print(f"written: {output_dir / 'report.md'}, report.csv, report.png")
    return rows


def main(arguments: list[str] | None = None) -> int:
    return run_writing_all_or_nothing("rl-report", _main, arguments)


def _main(arguments: list[str] | None) -> int:
    parser = OneLineParser(prog="rl-report", description=tool_description(__doc__))
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
    except (ValueError, StorageError) as error:  # atomic_file's error names the file
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
