"""One writer per run directory: concurrent resumes are refused, concurrent fresh runs
never share a directory."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import FAST, ok, read_jsonl, rl_run, start_rl_run
from test_faults import assert_each_step_logged_once
from test_resume import comparable_rows

ARGS = [*FAST, "eval.every=1000", "checkpoint.every=1000", "trainer.log_every=250"]


def test_a_second_resume_of_a_run_in_progress_is_refused(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(rl_run(*ARGS, "trainer.total_steps=1000", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    first = start_rl_run(f"resume={run_dir}", "trainer.total_steps=8000", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (run_dir / ".rl-run.lock").exists():
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    second = rl_run(f"resume={run_dir}", "trainer.total_steps=8000", cwd=tmp_path)
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert second.returncode == 2 and len(lines) == 1, second.stderr
    assert f"in use by another rl-run (pid {first.pid})" in lines[0]
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == 8000
    assert_each_step_logged_once(run_dir)
    assert not (run_dir / ".rl-run.lock").exists()  # released on exit


def test_fresh_runs_started_together_get_their_own_directories(tmp_path: Path):
    runs = [start_rl_run(*ARGS, "trainer.total_steps=2000", cwd=tmp_path) for _ in range(2)]
    for process in runs:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    run_dirs = sorted(p.parent for p in (tmp_path / "outputs").rglob("summary.json"))
    assert len(run_dirs) == 2
    names = [d.name for d in run_dirs]
    if names[0].split("_")[0] == names[1].split("_")[0]:  # the same second
        assert names[1] == f"{names[0]}-2"
    # Same seed, same config, separate directories: two identical, unmixed runs.
    first, second = run_dirs
    assert comparable_rows(first) == comparable_rows(second)
    assert read_jsonl(first / "evaluations.jsonl") == read_jsonl(second / "evaluations.jsonl")
    for run_dir in run_dirs:
        assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == 2000
