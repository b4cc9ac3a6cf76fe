"""`rl-report` across seeds: groups, statistics read back against the runs, a sweep
that is not finished, several directories at once."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from conftest import ok, rl_run

from rl_runner.tools.report import Run, group_runs

RL_REPORT = shutil.which("rl-report", path=str(Path(sys.executable).parent)) or "rl-report"
SEEDS = [0, 1, 2, 3]
RATES = ["0.001", "0.0001"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    args = [
        "-m",
        "algo=reinforce",
        f"seed={','.join(map(str, SEEDS))}",
        f"algo.lr={','.join(RATES)}",
    ]
    args += ["trainer.total_steps=1500", "eval.every=500", "eval.episodes=3"]
    ok(rl_run(*args, f"hydra.sweep.dir={root / 'sweep'}", cwd=root))
    return root / "sweep"


def rl_report(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([RL_REPORT, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def job_results(sweep: Path) -> dict[str, list[dict]]:
    """Each learning rate's job summaries, from the jobs' own files."""
    results: dict[str, list[dict]] = {rate: [] for rate in RATES}
    for job in sorted(p for p in sweep.iterdir() if p.is_dir()):
        overrides = (job / ".hydra" / "overrides.yaml").read_text()
        rate = next(rate for rate in RATES if f"algo.lr={rate}" in overrides)
        results[rate].append(json.loads((job / "summary.json").read_text()))
    return results


def test_the_table_holds_each_groups_statistics_across_seeds(sweep: Path, tmp_path: Path):
    ok(rl_report(str(sweep), "-o", str(tmp_path), cwd=tmp_path))
    rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    by_group = {row["group"]: row for row in rows}
    assert set(by_group) == {f"algo.lr={float(rate)}" for rate in RATES}
    for rate, summaries in job_results(sweep).items():
        row = by_group[f"algo.lr={float(rate)}"]
        final = np.sort([s["final_eval_return_mean"] for s in summaries])
        assert int(row["seeds"]) == len(SEEDS)
        assert float(row["final_mean"]) == pytest.approx(final.mean())
        assert float(row["final_std"]) == pytest.approx(final.std())
        assert float(row["final_iqm"]) == pytest.approx(final[1:3].mean())  # middle 2 of 4
        assert (
            float(row["final_iqm_low"]) <= float(row["final_iqm"]) <= float(row["final_iqm_high"])
        )
        best = [s["best_eval_return_mean"] for s in summaries]
        assert float(row["best_mean"]) == pytest.approx(np.mean(best))
    iqms = [float(row["final_iqm"]) for row in rows]
    assert iqms == sorted(iqms, reverse=True)  # best first
    assert (tmp_path / "report.md").read_text().count("\n") == 2 + len(RATES)
    image = matplotlib.image.imread(tmp_path / "report.png")
    assert len(np.unique(image.reshape(-1, image.shape[2]), axis=0)) > 50


def test_a_partial_sweep_and_a_lone_run_report_together(sweep: Path, tmp_path: Path):
    partial = tmp_path / "partial"
    shutil.copytree(sweep, partial)
    unfinished = sorted(p for p in partial.iterdir() if p.is_dir())[0]
    (unfinished / "summary.json").unlink()  # killed before its first checkpoint
    lone = tmp_path / "lone"
    ok(
        rl_run(
            "algo=reinforce",
            "seed=9",
            "algo.lr=0.001",
            "trainer.total_steps=1500",
            "eval.every=500",
            "eval.episodes=3",
            f"hydra.run.dir={lone}",
            cwd=tmp_path,
        )
    )
    result = ok(rl_report(str(partial), str(lone), "-o", str(tmp_path / "out"), cwd=tmp_path))
    assert f"not completed (not started): {unfinished}" in result.stdout
    rows = list(csv.DictReader((tmp_path / "out" / "report.csv").open()))
    assert sum(int(row["seeds"]) for row in rows) == len(SEEDS) * len(RATES) - 1 + 1
    assert sum(int(row["incomplete"]) for row in rows) == 1


def test_a_folder_without_runs_is_one_line(tmp_path: Path):
    result = rl_report(str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("rl-report: error: no run directories")


def test_unreadable_and_non_finite_runs_are_named(sweep: Path, tmp_path: Path):
    damaged = tmp_path / "damaged"
    shutil.copytree(sweep, damaged)
    jobs = sorted(p for p in damaged.iterdir() if p.is_dir())
    summary = json.loads((jobs[0] / "summary.json").read_text())
    summary["final_eval_return_mean"] = "NaN"
    (jobs[0] / "summary.json").write_text(json.dumps(summary))
    result = ok(rl_report(str(damaged), "-o", str(tmp_path / "out"), cwd=tmp_path))
    assert f"not completed (a non-finite return): {jobs[0]}" in result.stdout
    assert "nan" not in (tmp_path / "out" / "report.md").read_text()
    assert result.stderr == ""
    (jobs[1] / ".hydra" / "config.yaml").write_text(": : [")
    broken = rl_report(str(damaged), "-o", str(tmp_path / "out"), cwd=tmp_path)
    [line] = broken.stderr.strip().splitlines()
    assert broken.returncode == 2 and line.startswith("rl-report: error: cannot read ")
    assert str(jobs[1] / ".hydra" / "config.yaml") in line


def test_groups_of_several_algorithms_are_labelled_by_option_and_swept_keys():
    def run(seed: int, algo: str, lr: float, gamma: float) -> Run:
        config = {"seed": seed, "algo.name": algo, "algo.lr": lr, "algo.gamma": gamma}
        summary = {"status": "completed", "final_eval_return_mean": 1.0}
        return Run(Path(f"{algo}{lr}{seed}"), config, {**summary, "best_eval_return_mean": 2}, [])

    runs = [run(seed, "dqn", lr, 0.99) for seed in (0, 1) for lr in (1e-3, 3e-4)]
    runs += [run(seed, "reinforce", 1e-3, 0.9) for seed in (0, 1)]
    groups = {group.label: len(group.runs) for group in group_runs(runs)}
    # gamma differs only with the algorithm: left out; lr also differs within dqn: shown
    assert groups == {
        "algo.lr=0.001, algo.name=dqn": 2,
        "algo.lr=0.0003, algo.name=dqn": 2,
        "algo.lr=0.001, algo.name=reinforce": 2,
    }
