"""Does DQN actually learn? Long checks, marked slow (CI runs them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ok, read_jsonl, rl_run


@pytest.mark.slow
def test_default_preset_solves_cartpole_within_50k_steps(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            "algo=dqn",
            "env=cartpole",
            "seed=0",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
            timeout=900,
        )
    )
    evaluations = read_jsonl(run_dir / "evaluations.jsonl")
    assert evaluations[-1]["step"] == 50_000
    best = max(row["eval/return_mean"] for row in evaluations)
    assert best >= 475, [row["eval/return_mean"] for row in evaluations]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_eval_return_mean"] == best


@pytest.mark.slow
def test_tutorial_preset_learns(tmp_path: Path):
    """The seed-000 tutorial's settings (one update per step) improve well past random
    play (about 22 steps) within 15k steps."""
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            "+experiment=dqn_cartpole_tutorial",
            "trainer.total_steps=15000",
            "eval.every=5000",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
            timeout=900,
        )
    )
    best = max(row["eval/return_mean"] for row in read_jsonl(run_dir / "evaluations.jsonl"))
    assert best >= 100
