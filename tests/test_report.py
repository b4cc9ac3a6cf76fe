"""`rl-report` across seeds: groups, statistics read back against the runs, a sweep
that is not finished, several directories at once."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from conftest import ok, rl_run
from test_plot import files_up_to, wait_for_reader

from rl_runner.tools.report import MAX_LABEL_CHARS, Run, group_runs

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


def rl_report(*args: str, cwd: Path, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RL_REPORT, *args], cwd=cwd, capture_output=True, text=True, timeout=300, **options
    )


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


def test_a_long_label_ends_in_an_ellipsis():
    def run(walls: list[list[int]]) -> Run:
        summary = {"status": "completed", "final_eval_return_mean": 1, "best_eval_return_mean": 1}
        return Run(Path(str(walls)), {"env.kwargs.walls": json.dumps(walls)}, summary, [])

    layouts = [[[cell, cell + 1] for cell in range(first, first + 20)] for first in (0, 1)]
    labels = [group.label for group in group_runs([run(walls) for walls in layouts])]
    assert [len(label) for label in labels] == [MAX_LABEL_CHARS] * 2
    assert all(label.startswith("env.kwargs.walls=[[") and label.endswith("…") for label in labels)


MIXED = {  # two replay-memory sizes and optimisers of dqn; a table; REINFORCE
    "dqn_small": ["algo=dqn", "buffer.capacity=5000", "algo.learning_starts=100"],
    "dqn_amsgrad": ["algo=dqn", "buffer.capacity=10000", "algo.learning_starts=100"]
    + ["algo.amsgrad=true"],
    "q_learning": ["algo=q_learning", "env=maze"],
    "reinforce": ["algo=reinforce"],
}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    for name, args in MIXED.items():
        args = [*args, "trainer.total_steps=500", "eval.every=500", "eval.episodes=2"]
        ok(rl_run(*args, f"hydra.run.dir={root / 'runs' / name}", cwd=root))
    return root / "runs"


def test_mixed_groups_are_labelled_by_the_settings_that_tell_them_apart(
    mixed: Path, tmp_path: Path
):
    ok(rl_report(str(mixed), "-o", str(tmp_path), cwd=tmp_path))
    rows = {row["algo.name"] + row["buffer.capacity"]: row for row in read_csv(tmp_path)}
    # algo.name first (an option), then the first key, alphabetically, that splits the
    # dqn runs; a table and REINFORCE have no algo.amsgrad and no replay memory to name
    assert {key: row["group"] for key, row in rows.items()} == {
        "dqn5000": "algo.amsgrad=False, algo.name=dqn",
        "dqn10000": "algo.amsgrad=True, algo.name=dqn",
        "q_learning": "algo.name=q_learning",
        "reinforce": "algo.name=reinforce",
    }
    # every setting that differs, in full: a column each, empty where a group has none
    amsgrad = [rows[key]["algo.amsgrad"] for key in ("dqn5000", "dqn10000", "q_learning")]
    assert amsgrad == ["False", "True", ""]
    assert rows["q_learning"]["env.name"] == "maze" and rows["reinforce"]["env.name"] == "cartpole"
    _, settings = (tmp_path / "report.md").read_text().split("Settings that differ")
    assert "- algo.amsgrad=False, algo.name=dqn: " in settings
    assert "buffer.capacity=5000" in settings and "- algo.name=q_learning: algo.epsilon" in settings


def read_csv(directory: Path) -> list[dict[str, str]]:
    with (directory / "report.csv").open() as handle:
        return list(csv.DictReader(handle))


def jobs_copied(sweep: Path, destination: Path, count: int) -> list[Path]:
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())[:count]
    return [Path(shutil.copytree(job, destination / job.name)) for job in jobs]


def set_status(job: Path, status: str) -> None:
    summary = json.loads((job / "summary.json").read_text())
    (job / "summary.json").write_text(json.dumps({**summary, "status": status}))


def test_runs_without_an_evaluation_to_report_are_one_line_and_write_nothing(
    sweep: Path, tmp_path: Path
):
    failed, killed = jobs_copied(sweep, tmp_path / "runs", 2)
    set_status(failed, "failed")  # as a run that crashed before its first evaluation
    (killed / "summary.json").unlink()  # killed before its first checkpoint
    for job in (failed, killed):
        (job / "evaluations.jsonl").write_text("")
    result = rl_report(str(tmp_path / "runs"), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "rl-report: error: no completed run with an evaluation to report: "
        "2 run(s) skipped (1 failed, 1 not started)"
    ]
    assert not (tmp_path / "out").exists()


def test_a_run_without_an_evaluation_is_named_in_a_warning(sweep: Path, tmp_path: Path):
    runs = jobs_copied(sweep, tmp_path / "runs", 3)
    set_status(runs[0], "running")  # before its first evaluation
    (runs[0] / "evaluations.jsonl").write_text("")
    result = ok(rl_report(str(tmp_path / "runs"), "-o", str(tmp_path / "out"), cwd=tmp_path))
    assert result.stderr.splitlines() == [
        f"rl-report: warning: {runs[0]}: no evaluation yet (evaluations.jsonl is empty or missing)"
    ]
    assert f"not completed (running): {runs[0]}" in result.stdout


OLD_REPORT = {"report.md": b"old table", "report.csv": b"old,rows", "report.png": b"old figure"}


def previous_report(directory: Path) -> None:
    directory.mkdir()
    for name, content in OLD_REPORT.items():
        (directory / name).write_bytes(content)


def unchanged(directory: Path) -> bool:
    """The previous report, whole, and nothing else: no temporary file left behind."""
    return {path.name: path.read_bytes() for path in directory.iterdir()} == OLD_REPORT


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_is_one_line_and_leaves_the_previous_report(
    sweep: Path, tmp_path: Path, stop: signal.Signals
):
    jobs_copied(sweep, tmp_path / "runs", 1)
    config = tmp_path / "runs" / "waiting" / ".hydra" / "config.yaml"
    config.parent.mkdir(parents=True)
    os.mkfifo(config)  # rl-report blocks reading it, for as long as the test likes
    previous_report(tmp_path / "out")
    process = subprocess.Popen(
        [RL_REPORT, str(tmp_path / "runs"), "-o", str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = wait_for_reader(config, process)
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=60)
    os.close(writer)
    assert process.returncode == 128 + stop and stdout == ""
    assert stderr.splitlines() == [f"rl-report: stopped by {stop.name}; nothing was written"]
    assert unchanged(tmp_path / "out")


def test_a_failed_write_is_one_line_and_leaves_the_previous_report(sweep: Path, tmp_path: Path):
    previous_report(tmp_path / "out")
    limit = files_up_to(10_000)  # the table and the CSV fit, the figure does not
    result = rl_report(str(sweep), "-o", str(tmp_path / "out"), cwd=tmp_path, preexec_fn=limit)
    assert result.returncode == 2
    png = tmp_path / "out" / "report.png"
    assert result.stderr.splitlines() == [f"rl-report: error: cannot write {png}: File too large"]
    assert unchanged(tmp_path / "out")


def test_a_group_whose_runs_ran_with_different_numerics_is_named_in_a_warning(
    sweep: Path, tmp_path: Path
):
    runs = jobs_copied(sweep, tmp_path / "runs", 8)
    result = ok(rl_report(str(tmp_path / "runs"), "-o", str(tmp_path / "out"), cwd=tmp_path))
    assert "numerics" not in result.stderr  # one machine, one torch: nothing to say
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    [session] = manifest["sessions"]
    cpu = session["machine"]["cpu"]
    resumed = {**session, "kind": "resume", "step": 1000}
    resumed["machine"] = {**session["machine"], "cpu": "Another CPU", "cpu_flags": []}
    manifest["sessions"].append(resumed)  # resumed on another machine
    (runs[0] / "manifest.json").write_text(json.dumps(manifest))
    result = ok(rl_report(str(tmp_path / "runs"), "-o", str(tmp_path / "out"), cwd=tmp_path))
    [warning] = result.stderr.splitlines()
    rate = next(rate for rate in RATES if f"algo.lr={rate}," in runs[0].name)
    group = [run.name for run in runs if f"algo.lr={rate}," in run.name]
    assert warning.startswith(f"rl-report: warning: the runs of [algo.lr={rate}] ran with ")
    assert f"Another CPU ({runs[0].name})" in warning  # the odd run, named
    assert f"{cpu} ({', '.join(group[:3])} and {len(group) - 3} more)" in warning
    assert warning.endswith(": their seeds do not compare bit for bit")


def test_a_malformed_manifest_is_no_crash(sweep: Path, tmp_path: Path):
    runs = jobs_copied(sweep, tmp_path / "runs", 2)
    (runs[0] / "manifest.json").write_text(json.dumps({"sessions": ["a"], "machine": "x"}))
    result = ok(rl_report(str(tmp_path / "runs"), "-o", str(tmp_path / "out"), cwd=tmp_path))
    assert result.stderr.splitlines() == [
        f"rl-report: warning: no readable manifest.json in {runs[0].name}: numerics not compared"
    ]
