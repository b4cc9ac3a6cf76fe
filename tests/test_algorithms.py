"""Every registered algorithm, through `rl-run` as a user runs it: a smoke run with
evaluation and checkpoints, a refusal of the action space it cannot act in, and a
bit-exact resume. A new algorithm gets these by being registered."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from conftest import FAST, ok, read_jsonl, rl_run
from test_bad_input import assert_one_line_refusal
from test_resume import assert_same_run

from rl_runner.registry import ALGORITHMS

ALGOS = sorted(ALGORITHMS)
CONTINUOUS = sorted(name for name, entry in ALGORITHMS.items() if entry.actions == "box")
SCHEDULE = ["eval.every=500", "checkpoint.every=500", "trainer.log_every=250"]
QUICK = [*FAST, *SCHEDULE]
# Short rollouts for the on-policy algorithms (a checkpoint at step 1000 falls inside
# one), and a constant learning rate and clip range: annealed ones depend on
# trainer.total_steps, which the resume tests change.
ON_POLICY_FAST = [
    "env.num_envs=2",  # evaluations and checkpoints then fall on the schedule's steps
    "algo.n_steps=64",
    "algo.batch_size=32",
    "algo.n_epochs=2",
    "algo.lr_schedule=constant",
    "algo.clip_range_schedule=constant",
]
# The checkpoint parts each actor-critic names (the issue's contract for users' tools).
ACTOR_CRITIC_PARTS = {"actor", "critic", "critic_target", "actor_optimizer", "critic_optimizer"}
EXTRA_PARTS = {
    "ddpg": {"actor_target"},
    "td3": {"actor_target"},
    "sac": {"log_alpha", "alpha_optimizer"},
}


def small_env(name: str) -> str:
    if ALGORITHMS[name].observations == "discrete":
        return "env=maze"
    # the on-policy algorithms act in both: CartPole here, Box envs in test_on_policy.py
    return "env=pendulum" if ALGORITHMS[name].actions == "box" else "env=cartpole"


def quick(name: str) -> list[str]:
    """A short run's settings: FAST's small networks and warm-ups where the algorithm
    has them."""
    entry = ALGORITHMS[name]
    fields = {f.name for f in dataclasses.fields(entry.schema)}

    def applies(override: str) -> bool:
        group, key = override.split("=")[0].split(".")[:2]
        if group == "algo":
            return key in fields
        return group in entry.groups or group == "eval" or (group == "env" and entry.on_policy)

    return [*filter(applies, [*FAST, *ON_POLICY_FAST]), *SCHEDULE]


def learning_metrics(row: dict) -> bool:
    return any(tag.startswith(("loss/", "train/policy_change")) for tag in row)


def checkpoint(run_dir: Path, name: str) -> dict:
    return torch.load(run_dir / "checkpoints" / name, weights_only=True)


@pytest.mark.parametrize("algo", ALGOS)
def test_smoke_run_trains_evaluates_and_checkpoints(tmp_path: Path, algo: str):
    run_dir = tmp_path / "run"
    args = [f"algo={algo}", small_env(algo), *quick(algo), "trainer.total_steps=1500"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["agent_updates"] > 0
    assert [row["step"] for row in read_jsonl(run_dir / "evaluations.jsonl")] == [500, 1000, 1500]
    assert any(map(learning_metrics, read_jsonl(run_dir / "metrics.jsonl"))), "nothing learnt"
    newest, older = (
        checkpoint(run_dir, "step_0000001500.pt"),
        checkpoint(run_dir, "step_0000001000.pt"),
    )
    if "buffer" not in ALGORITHMS[algo].groups:
        return  # no replay memory to keep
    assert newest["agent"]["replay"]["size"] == 1500
    assert "replay" not in older["agent"], "only the newest checkpoint keeps the replay memory"
    assert "replay" not in checkpoint(run_dir, "best.pt")["agent"]
    if algo in EXTRA_PARTS:
        assert set(newest["agent"]) >= ACTOR_CRITIC_PARTS | EXTRA_PARTS[algo]


@pytest.mark.parametrize("algo", ALGOS)
def test_an_action_space_the_algorithm_cannot_act_in_is_refused(tmp_path: Path, algo: str):
    wrong = {
        "discrete": "env.id=Pendulum-v1",
        "box": "env.id=CartPole-v1",
        "discrete_or_box": "env.id=fake_envs:MultiDiscreteActions-v0",
    }[ALGORITHMS[algo].actions]
    result = rl_run(f"algo={algo}", "env=gym", wrong, cwd=tmp_path)
    assert_one_line_refusal(result, f"algo={algo} needs a")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("algo", ALGOS)
def test_resume_is_bitwise_equal_to_a_straight_run(tmp_path: Path, algo: str):
    args = [f"algo={algo}", small_env(algo), *quick(algo)]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    ok(rl_run(*args, "trainer.total_steps=1500", f"hydra.run.dir={straight}", cwd=tmp_path))
    ok(rl_run(*args, "trainer.total_steps=1000", f"hydra.run.dir={resumed}", cwd=tmp_path))
    result = ok(rl_run(f"resume={resumed}", "trainer.total_steps=1500", cwd=tmp_path))
    assert_same_run(straight, resumed, 1500)
    assert "replay memory" not in result.stderr  # exact: no warning that it is not


MUJOCO = [*QUICK, "env=hopper", "algo.random_steps=300", "algo.learning_starts=300"]


@pytest.mark.parametrize("algo", CONTINUOUS)
def test_smoke_run_on_mujoco(tmp_path: Path, algo: str):
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            f"algo={algo}",
            *MUJOCO,
            "trainer.total_steps=1000",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    evaluations = read_jsonl(run_dir / "evaluations.jsonl")
    assert [row["step"] for row in evaluations] == [500, 1000]
    physics = checkpoint(run_dir, "step_0000001000.pt")["envs"][0][-1]["attributes"]["data"]
    assert physics[0] == "mujoco" and physics[1]["integration"].numel() > 0


def test_resume_on_mujoco_is_bitwise_equal_to_a_straight_run(tmp_path: Path):
    args = ["algo=td3", *MUJOCO]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    ok(rl_run(*args, "trainer.total_steps=1500", f"hydra.run.dir={straight}", cwd=tmp_path))
    ok(rl_run(*args, "trainer.total_steps=1000", f"hydra.run.dir={resumed}", cwd=tmp_path))
    ok(rl_run(f"resume={resumed}", "trainer.total_steps=1500", cwd=tmp_path))
    assert_same_run(straight, resumed, 1500)


def test_without_replay_in_checkpoints_a_resume_says_it_is_not_exact(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["algo=td3", "env=pendulum", *QUICK, "checkpoint.replay=false"]
    ok(rl_run(*args, "trainer.total_steps=1000", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    assert "replay" not in checkpoint(run_dir, "step_0000001000.pt")["agent"]
    result = ok(rl_run(f"resume={run_dir}", "trainer.total_steps=1500", cwd=tmp_path))
    assert "holds no replay memory" in result.stderr + (run_dir / "train.log").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == 1500


def test_the_ddpg_tutorial_preset_is_seed_001(tmp_path: Path):
    shown = ok(rl_run("+experiment=ddpg_mujoco_tutorial", "env=ant", "--cfg", "job", cwd=tmp_path))
    config = shown.stdout
    for line in (
        "name: ddpg",
        "actor_lr: 0.0001",
        "critic_lr: 0.001",
        "critic_weight_decay: 0.01",
        "tau: 0.005",
        "random_steps: 25000",
        "exploration_noise: 0.1",
        "id: Ant-v5",
        "critic_action_layer: 1",
        "capacity: 1000000",
        "batch_size: 256",
        "total_steps: 1000000",
    ):
        assert line in config, line
    # The layout itself: critic obs->400, the action joining before the 300-unit layer.
    run_dir = tmp_path / "run"
    short = ["trainer.total_steps=300", "algo.random_steps=100", "algo.learning_starts=100"]
    ok(
        rl_run(
            "+experiment=ddpg_mujoco_tutorial",
            "env=hopper",
            *short,
            "eval.episodes=1",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    agent = checkpoint(run_dir, "step_0000000300.pt")["agent"]
    shapes = [tuple(agent["critic"][f"weights.{i}"].shape) for i in range(3)]
    assert shapes == [(1, 11, 400), (1, 403, 300), (1, 300, 1)]  # Hopper: 11 obs, 3 actions
    assert tuple(agent["actor"]["weights.2"].shape) == (1, 300, 3)


@pytest.mark.slow
@pytest.mark.parametrize("algo", CONTINUOUS)
def test_learns_pendulum_within_20k_steps(tmp_path: Path, algo: str):
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            f"algo={algo}",
            "env=pendulum",
            "seed=0",
            "trainer.stop_at_eval_return=-250",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
            timeout=900,
        )
    )
    returns = [row["eval/return_mean"] for row in read_jsonl(run_dir / "evaluations.jsonl")]
    assert max(returns) >= -250, returns
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["reached_eval_target"] and summary["env_steps"] <= 20_000


def test_learning_rates_changed_on_resume_reach_the_optimisers(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["algo=sac", "env=pendulum", *QUICK]
    ok(rl_run(*args, "trainer.total_steps=1000", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    changes = ["algo.actor_lr=0.001", "algo.critic_lr=0.002", "algo.alpha_lr=0.003"]
    ok(rl_run(f"resume={run_dir}", "trainer.total_steps=1500", *changes, cwd=tmp_path))
    agent = checkpoint(run_dir, "step_0000001500.pt")["agent"]
    rates = {
        name: agent[name]["param_groups"][0]["lr"]
        for name in ("actor_optimizer", "critic_optimizer", "alpha_optimizer")
    }
    assert rates == {"actor_optimizer": 0.001, "critic_optimizer": 0.002, "alpha_optimizer": 0.003}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_checkpoint_exact_false_trains_an_env_the_snapshot_cannot_hold(tmp_path: Path, mode: str):
    """Refused by default; with the opt-out, it trains, its checkpoints list what they
    lack, and its resume says it is not the exact continuation."""
    run_dir = tmp_path / "run"
    args = ["algo=td3", "env=gym", "env.id=fake_envs:PythonRandomNoise-v0", *QUICK]
    args += [f"env.vectorization_mode={mode}"]
    refused = rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert refused.returncode == 2 and "PythonRandomNoise.noise (random.Random)" in refused.stderr
    assert "checkpoint.exact=false" in refused.stderr and not run_dir.exists()
    inexact = [*args, "checkpoint.exact=false", f"hydra.run.dir={run_dir}"]
    result = ok(rl_run(*inexact, "trainer.total_steps=1000", cwd=tmp_path))
    assert "checkpoints of fake_envs:PythonRandomNoise-v0 will lack PythonRandomNoise.noise" in (
        result.stderr
    )
    state = torch.load(run_dir / "checkpoints" / "step_0000001000.pt", weights_only=False)
    assert state["envs"][0][-1]["skipped"] == ["PythonRandomNoise.noise (random.Random)"]
    resumed = ok(rl_run(f"resume={run_dir}", "trainer.total_steps=1500", cwd=tmp_path))
    assert "is not the exact continuation" in resumed.stdout
    assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == 1500


def test_env_state_that_appears_mid_run_fails_the_run_with_one_line(tmp_path: Path):
    """Made after the pre-flight's step: found at the first checkpoint past it."""
    run_dir = tmp_path / "run"
    args = ["algo=td3", "env=gym", "env.id=fake_envs:LateUncapturableState-v0", *QUICK]
    result = rl_run(*args, "trainer.total_steps=1000", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 5, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rl-run: error: training failed at step 500") and "recent" in line
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "recent" in summary["error"]
    assert "Traceback" in (run_dir / "train.log").read_text()
