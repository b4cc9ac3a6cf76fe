"""An env of the user's own, by its class (`env.entry_point`)."""

from __future__ import annotations

from pathlib import Path

from conftest import FAST, ok, read_jsonl, rl_run
from test_resume import assert_same_run


def episode_lengths(run_dir: Path) -> set[int]:
    rows = read_jsonl(run_dir / "metrics.jsonl")
    return {row["train/episode_length"] for row in rows if "train/episode_length" in row}


def test_an_entry_point_resumes_exactly_in_worker_processes(tmp_path: Path):
    """rl-runner registers the entry point in each process that makes the env: the
    async workers, and a resume's fresh process; the run resumes bit for bit."""
    own_env = [
        "algo=td3",
        "env=gym",
        "env.entry_point=fake_envs:NoisySpace",
        "env.max_episode_steps=20",
        "env.num_envs=2",
        "env.vectorization_mode=async",
        *FAST,
        "eval.every=500",
        "checkpoint.every=500",
        "trainer.log_every=250",
    ]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    ok(rl_run(*own_env, "trainer.total_steps=1000", f"hydra.run.dir={straight}", cwd=tmp_path))
    ok(rl_run(*own_env, "trainer.total_steps=500", f"hydra.run.dir={resumed}", cwd=tmp_path))
    ok(rl_run(f"resume={resumed}", "trainer.total_steps=1000", cwd=tmp_path))
    assert_same_run(straight, resumed, 1000)
    assert episode_lengths(resumed) == {20}  # env.max_episode_steps, registered with it
    assert "id: fake_envs/NoisySpace" in (resumed / ".hydra" / "config.yaml").read_text()
