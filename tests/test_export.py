"""`rl-export`: every registered algorithm's policy as a file, replayed without
rl-runner's agent (onnxruntime, torch.jit or the table alone, with gymnasium) to the
return its run's evaluation recorded; and its refusals, one line each, writing nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnxruntime
import pytest
import torch
from conftest import ok, read_jsonl, rl_run, tree_digest
from test_algorithms import quick, small_env

import rl_runner.envs  # noqa: F401 - registers the maze
from rl_runner.registry import ALGORITHMS

pytestmark = pytest.mark.xdist_group("export")  # one worker: the runs are shared

RL_EXPORT = shutil.which("rl-export", path=str(Path(sys.executable).parent)) or "rl-export"
NETWORK_ALGOS = sorted(name for name, entry in ALGORITHMS.items() if "network" in entry.groups)
TABLE_ALGOS = sorted(set(ALGORITHMS) - set(NETWORK_ALGOS))
# A Gaussian policy on observations normalised with the checkpoint's statistics.
PPO_BOX = ["algo=ppo", "env=pendulum", "algo.normalize_observations=true"]
RUNS = {name: [f"algo={name}", small_env(name), *quick(name)] for name in ALGORITHMS}
RUNS["ppo_box"] = [*PPO_BOX, *quick("ppo")]


def rl_export(*args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [RL_EXPORT, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """One short run per case, made on first use."""
    root = tmp_path_factory.mktemp("export")
    made: dict[str, Path] = {}

    def run(case: str) -> Path:
        if case not in made:
            run_dir = root / case
            ok(
                rl_run(
                    *RUNS[case], "trainer.total_steps=1500", f"hydra.run.dir={run_dir}", cwd=root
                )
            )
            made[case] = run_dir
        return made[case]

    return run


def saved_env(run_dir: Path) -> tuple[gym.Env, int]:
    """The run's env as gymnasium makes it from the saved config, and the seed of its
    first evaluation episode."""
    import yaml

    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    env = config["env"]
    env_made = gym.make(env["id"], max_episode_steps=env["max_episode_steps"], **env["kwargs"])
    eval_seed = config["eval"]["seed"]
    return env_made, config["seed"] + 100 if eval_seed is None else eval_seed


def replayed_return(run_dir: Path, act) -> float:
    """Evaluation episode 0 with `act(obs, info)` choosing every action."""
    env, seed = saved_env(run_dir)
    obs, info = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(act(obs, info))
        total += float(reward)
        done = terminated or truncated
    env.close()
    return total


def discrete_actions(case: str) -> bool:
    return "env=pendulum" not in RUNS[case]


def assert_replayed(case: str, replayed: float, recorded: float) -> None:
    """Discrete actions replay exactly; Box actions to float32 rounding (the file's
    products run in another order than the agent's numpy ones)."""
    assert replayed == (recorded if discrete_actions(case) else pytest.approx(recorded, rel=1e-4))


def best_episode_return(run_dir: Path) -> float:
    """What evaluations.jsonl recorded for episode 0 at best.pt's step."""
    step = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["env_steps"]
    [row] = [row for row in read_jsonl(run_dir / "evaluations.jsonl") if row["step"] == step]
    return row["returns"][0]


def test_every_network_algorithm_has_an_export_case():
    assert set(NETWORK_ALGOS) <= set(RUNS) and "ppo_box" in RUNS


@pytest.mark.parametrize("case", [*NETWORK_ALGOS, "ppo_box"])
def test_an_onnx_export_replays_the_evaluation_with_onnxruntime_alone(trained, case: str):
    run_dir = trained(case)
    result = ok(rl_export(str(run_dir), cwd=run_dir))
    exported = run_dir / "export" / "policy.onnx"
    assert result.stdout.splitlines()[-1] == (
        f"written: {exported} (described in policy.onnx.json)"
    )
    assert "(the same)" in result.stdout or not discrete_actions(case)
    description = json.loads((run_dir / "export" / "policy.onnx.json").read_text())
    assert description["check"]["disagreements"] == 0 and description["opset"] >= 17
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    [model_input] = session.get_inputs()
    assert model_input.name == "observation" and model_input.shape[0] == "batch"

    def act(obs, _info):
        return session.run(["action"], {"observation": np.asarray(obs)[None]})[0][0]

    assert_replayed(case, replayed_return(run_dir, act), best_episode_return(run_dir))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # still torch 2.13's
@pytest.mark.parametrize("case", ["td3", "ppo_box", "dqn"])
def test_a_torchscript_export_replays_the_evaluation_with_torch_alone(trained, case: str):
    run_dir = trained(case)
    ok(rl_export(str(run_dir), "--format", "torchscript", cwd=run_dir))
    module = torch.jit.load(str(run_dir / "export" / "policy.pt"))

    def act(obs, _info):
        with torch.inference_mode():
            return module(torch.as_tensor(np.asarray(obs)[None])).numpy()[0]

    assert_replayed(case, replayed_return(run_dir, act), best_episode_return(run_dir))


@pytest.mark.parametrize("algo", TABLE_ALGOS)
def test_a_table_export_replays_the_evaluation_with_numpy_alone(trained, algo: str, tmp_path):
    run_dir = trained(algo)
    ok(rl_export(str(run_dir), "-o", str(tmp_path), cwd=run_dir))  # a folder: policy.json in it
    tables = json.loads((tmp_path / "policy.json").read_text())
    description = json.loads((tmp_path / "policy.description.json").read_text())
    assert description["legal_action_masks"] is True  # the maze's: greedy among them
    greedy = np.asarray(tables["q" if "q" in tables else "theta"])
    ok(rl_export(str(run_dir), "--format", "npy", "-o", str(tmp_path / "t.npy"), cwd=run_dir))
    assert np.array_equal(np.load(tmp_path / "t.npy"), greedy)

    def act(obs, info):  # the row's largest entry among the maze's legal moves
        return int(np.where(info["action_mask"], greedy[obs], -np.inf).argmax())

    assert replayed_return(run_dir, act) == best_episode_return(run_dir)


def assert_refused(result: subprocess.CompletedProcess, *mentions: str) -> None:
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("rl-export: error: ")
    for text in mentions:
        assert text in line


@pytest.mark.parametrize(
    ("case", "args", "mentions"),
    [
        ("q_learning", ["--format", "onnx"], ["keeps a table", "--format json or npy"]),
        ("dqn", ["--format", "npy"], ["is a network", "--format onnx or torchscript"]),
        ("dqn", ["--checkpoint", "step_9.pt"], ["is not best, latest or a checkpoint file"]),
        ("dqn", ["-o", "/nonexistent/dir/policy.onnx"], ["/nonexistent/dir", "does not exist"]),
        ("dqn", ["-o", "{run}/no_such_dir/"], ["no_such_dir/ does not exist"]),
        ("dqn", ["-o", "{run}/checkpoints/best.pt"], ["is a file of the run"]),
        ("dqn", ["-o", "{run}/.hydra/config.yaml"], ["is a file of the run"]),
        ("dqn", ["-o", "x.onnx", "--format", "torchscript"], ["names a onnx file"]),
        ("dqn", ["-o", "/proc/policy.onnx"], ["cannot write /proc/"]),  # nothing may go there
    ],
)
def test_a_refused_export_is_one_line_and_writes_nothing(trained, case, args, mentions):
    run_dir = trained(case)
    shutil.rmtree(run_dir / "export", ignore_errors=True)
    before = tree_digest(run_dir)
    args = [arg.replace("{run}", str(run_dir)) for arg in args]
    assert_refused(rl_export(str(run_dir), *args, cwd=run_dir), *mentions)
    assert tree_digest(run_dir) == before  # nothing written, nothing replaced


def test_a_directory_without_a_run_is_refused(tmp_path: Path):
    assert_refused(rl_export(str(tmp_path), cwd=tmp_path), "is not a run directory")


def test_onnx_without_its_extra_says_what_to_install(trained, tmp_path: Path):
    run_dir = trained("dqn")
    shutil.rmtree(run_dir / "export", ignore_errors=True)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "onnxruntime.py").write_text("raise ImportError('No module named onnxruntime')\n")
    env = {**dict(__import__("os").environ), "PYTHONPATH": str(blocked)}
    result = rl_export(str(run_dir), cwd=tmp_path, env=env)
    assert_refused(result, "pip install 'rl-runner[export]'")
    assert not (run_dir / "export").exists()
    ok(rl_export(str(run_dir), "--format", "torchscript", cwd=tmp_path, env=env))  # no ONNX needed


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_a_graph_that_disagrees_with_the_agent_is_refused_and_not_written(
    trained, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from torch import nn

    from rl_runner.agents.dqn import DQN
    from rl_runner.networks.policy_graph import Float32Input
    from rl_runner.tools import export

    run_dir = trained("dqn")
    shutil.rmtree(run_dir / "export", ignore_errors=True)

    class AlwaysZero(nn.Module):
        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return torch.zeros(obs.shape[0], dtype=torch.int64)

    monkeypatch.setattr(
        DQN, "policy_graph", lambda self: nn.Sequential(Float32Input(), AlwaysZero())
    )
    assert export.main([str(run_dir), "--format", "torchscript"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("rl-export: error: the exported policy disagrees with the agent on ")
    assert line.endswith("; nothing was written")
    assert not (run_dir / "export").exists()


def test_a_fifo_is_not_replaced(trained, tmp_path: Path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert_refused(rl_export(str(trained("dqn")), "-o", str(fifo), cwd=tmp_path), "not a regular")
    assert fifo.is_fifo()


def test_the_format_follows_the_output_suffix(trained, tmp_path: Path):
    run_dir = trained("dqn")
    ok(rl_export(str(run_dir), "-o", str(tmp_path / "policy.pt"), cwd=tmp_path))
    description = json.loads((tmp_path / "policy.pt.json").read_text())
    assert description["format"] == "torchscript"
    assert description["checkpoint"] == str(run_dir / "checkpoints" / "best.pt")


def test_a_checkpoint_of_another_run_is_not_compared_with_this_runs_evaluations(trained):
    run_dir, other = trained("dqn"), trained("reinforce")
    foreign = run_dir.parent / "dqn_again"
    if not foreign.exists():
        shutil.copytree(run_dir, foreign)  # another run of the same algorithm and env
    result = ok(
        rl_export(
            str(run_dir),
            "--checkpoint",
            str(foreign / "checkpoints" / "best.pt"),
            "-o",
            str(other.parent / "foreign.onnx"),
            cwd=run_dir,
        )
    )
    assert "a checkpoint from outside this run: its evaluations are not it" in result.stdout
    assert "evaluations.jsonl recorded" not in result.stdout


def test_a_resume_that_changed_the_eval_seed_is_not_compared(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(rl_run(*RUNS["dqn"], "trainer.total_steps=1000", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    ok(rl_run(f"resume={run_dir}", "trainer.total_steps=1500", "eval.seed=7", cwd=tmp_path))
    result = ok(rl_export(str(run_dir), "--format", "torchscript", cwd=tmp_path))
    assert "changed on resume (eval.seed=7): not compared" in result.stdout
