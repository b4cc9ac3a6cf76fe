"""rl-run as a user runs it: the files of a run, read back."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import torch
from conftest import FAST, RL_RUN, job_dir, ok, read_jsonl, rl_run, run_env
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def test_run_directory_holds_config_logs_checkpoints_and_summary(finished_run: Path):
    saved = (finished_run / ".hydra" / "config.yaml").read_text()
    assert "total_steps: 3000" in saved and "name: dqn" in saved
    summary = json.loads((finished_run / "summary.json").read_text())
    assert summary["completed"] is True
    assert summary["env_steps"] == 3000
    assert summary["wall_seconds"] > 0
    assert summary["final_eval_return_mean"] is not None
    assert summary["best_eval_return_mean"] >= summary["final_eval_return_mean"]
    checkpoints = sorted(p.name for p in (finished_run / "checkpoints").iterdir())
    # keep_last=2 of the checkpoints at 1000, 2000, 3000, plus the best
    assert checkpoints == ["best.pt", "step_0000002000.pt", "step_0000003000.pt"]


def test_tensorboard_events_have_the_contract_tags_against_env_steps(finished_run: Path):
    found = scalars(finished_run)
    for tag in (
        "train/episode_return",
        "train/episode_length",
        "eval/return_mean",
        "eval/return_std",
        "loss/td",
        "train/epsilon",
        "time/sps",
    ):
        assert tag in found, f"missing {tag}; have {sorted(found)}"
    assert [step for step, _ in found["eval/return_mean"]] == [1000, 2000, 3000]
    assert [step for step, _ in found["time/sps"]] == [500, 1000, 1500, 2000, 2500, 3000]
    episode_steps = [step for step, _ in found["train/episode_return"]]
    assert episode_steps == sorted(episode_steps) and episode_steps[-1] <= 3000
    # CartPole pays 1 per step, so an episode's return equals its length.
    returns = [value for _, value in found["train/episode_return"]]
    lengths = [value for _, value in found["train/episode_length"]]
    assert returns == lengths
    epsilon = [value for _, value in found["train/epsilon"]]
    assert epsilon == sorted(epsilon, reverse=True)


def test_jsonl_metrics_carry_the_same_scalars_as_tensorboard(finished_run: Path):
    rows = read_jsonl(finished_run / "metrics.jsonl")
    from_jsonl = sorted(
        (tag, row["step"]) for row in rows for tag in row if tag not in ("step", "time")
    )
    from_tensorboard = sorted(
        (tag, step) for tag, points in scalars(finished_run).items() for step, _ in points
    )
    assert from_jsonl == from_tensorboard


def test_evaluations_file_lists_each_evaluation_with_its_episodes(finished_run: Path):
    evaluations = read_jsonl(finished_run / "evaluations.jsonl")
    assert [row["step"] for row in evaluations] == [1000, 2000, 3000]
    for row in evaluations:
        assert len(row["returns"]) == 3
        assert abs(row["eval/return_mean"] - sum(row["returns"]) / 3) < 1e-9


def test_checkpoint_holds_networks_optimiser_replay_rng_and_counters(finished_run: Path):
    state = torch.load(finished_run / "checkpoints" / "step_0000003000.pt", weights_only=True)
    agent = state["agent"]
    assert set(agent) >= {"q_network", "target_network", "optimizer", "rng", "counters", "replay"}
    assert agent["counters"]["env_steps"] == 3000
    assert agent["replay"]["size"] == 3000
    assert agent["replay"]["storage"]["obs"].shape == (3000, 4)
    assert set(state["global_rng"]) == {"python", "numpy", "torch"}
    assert state["loop"]["env_steps"] == 3000
    assert state["run_id"] == (finished_run / ".rl-run-id").read_text().strip()
    best = torch.load(finished_run / "checkpoints" / "best.pt", weights_only=True)
    assert "replay" not in best["agent"]
    assert (
        best["eval_return_mean"]
        == json.loads((finished_run / "summary.json").read_text())["best_eval_return_mean"]
    )


def test_evaluation_is_reproducible_across_runs_with_the_same_seed(tmp_path: Path):
    """Same seed, same config: identical evaluations (and fixed eval seeds)."""
    args = [*FAST, "trainer.total_steps=1000", "eval.every=500"]
    first = tmp_path / "a"
    second = tmp_path / "b"
    ok(rl_run(*args, f"hydra.run.dir={first}", cwd=tmp_path))
    ok(rl_run(*args, f"hydra.run.dir={second}", cwd=tmp_path))
    assert read_jsonl(first / "evaluations.jsonl") == read_jsonl(second / "evaluations.jsonl")


def test_default_run_dir_is_under_outputs_of_the_working_directory(tmp_path: Path):
    ok(rl_run(*FAST, "trainer.total_steps=300", "eval.every=300", cwd=tmp_path))
    run_dirs = [p.parent for p in (tmp_path / "outputs").rglob("summary.json")]
    assert len(run_dirs) == 1
    assert run_dirs[0].name.endswith("_dqn_cartpole_seed0")


def test_generic_gym_env_by_id_is_named_after_the_id(tmp_path: Path):
    ok(
        rl_run(
            "env=gym",
            "env.id=Acrobot-v1",
            *FAST,
            "trainer.total_steps=600",
            "eval.every=600",
            "eval.episodes=1",
            cwd=tmp_path,
        )
    )
    (summary_path,) = (tmp_path / "outputs").rglob("summary.json")
    assert summary_path.parent.name.endswith("_dqn_Acrobot-v1_seed0")
    summary = json.loads(summary_path.read_text())
    assert summary["env_steps"] == 600
    # Acrobot pays -1 per step until it swings up (500-step limit).
    assert -500 <= summary["final_eval_return_mean"] < 0


def test_step_counts_accept_the_way_papers_write_them(tmp_path: Path):
    job = ok(rl_run("trainer.total_steps=1e6", "eval.every=2.5e4", "--cfg", "job", cwd=tmp_path))
    assert "total_steps: 1000000" in job.stdout and "every: 25000" in job.stdout
    assert "lr: 0.001" in ok(rl_run("algo.lr=1e-3", "--cfg", "job", cwd=tmp_path)).stdout
    # settings that fit only the new total: the schema's types decide, not a validation
    # against the preset's total
    long = ["algo=ppo", "env=pendulum", "algo.n_steps=32768", "trainer.total_steps=1e6"]
    assert "total_steps: 1000000" in ok(rl_run(*long, "--cfg", "job", cwd=tmp_path)).stdout


def test_a_failing_sweep_job_fails_alone(tmp_path: Path):
    """Job 0's env makes state a checkpoint cannot hold only after the pre-flight's
    step, so that job fails while running; job 1 runs to the end."""
    result = rl_run(
        "-m",
        "algo=td3",
        "env=gym",
        "env.id=fake_envs:LateUncapturableState-v0,Pendulum-v1",
        *FAST,
        "trainer.total_steps=300",
        "eval.every=300",
        "checkpoint.every=100",
        "hydra.sweep.dir=sweep",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1] == "rl-run: 1 of 2 sweep jobs failed"
    assert "training failed at step 100" in lines[0] and "Traceback" not in result.stderr
    failed = json.loads((job_dir(tmp_path / "sweep", 0) / "summary.json").read_text())
    assert failed["status"] == "failed" and "recent" in failed["error"]
    good = json.loads((job_dir(tmp_path / "sweep", 1) / "summary.json").read_text())
    assert good["status"] == "completed" and good["env_steps"] == 300


def test_the_progress_line_floors_its_percentage(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [*FAST, "env.num_envs=4", "trainer.total_steps=1001", "eval.every=1000"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    log_text = (run_dir / "train.log").read_text()
    assert "step 1000/1001 (99%)" in log_text and "done: 1004 env steps" in log_text


def test_a_terminal_gets_a_bar_and_train_log_still_gets_each_evaluation(tmp_path: Path):
    run_dir = tmp_path / "run"
    controller, terminal = pty.openpty()
    # An 80x24 window: a pty starts at 0x0, where tqdm draws nothing.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(
        [RL_RUN, *FAST, "trainer.total_steps=2000", "eval.every=1000", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        stdout=terminal,
        stderr=terminal,
        stdin=subprocess.DEVNULL,
        env=run_env(),
    )
    os.close(terminal)
    screen = b""
    while True:  # drain the terminal, or the child blocks on a full pty
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    process.wait(timeout=120)
    os.close(controller)
    assert process.returncode == 0
    evaluations = read_jsonl(run_dir / "evaluations.jsonl")
    assert b"eval_return=" + f"{evaluations[-1]['eval/return_mean']:.1f}".encode() in screen
    assert b"step 1000/2000" not in screen  # the bar shows it; the console has no line
    log_text = (run_dir / "train.log").read_text()
    assert "step 1000/2000 (50%)" in log_text and "step 2000/2000 (100%)" in log_text


def test_help_and_version_load_no_heavy_module(tmp_path: Path):
    probe = (
        "import sys\n"
        "sys.argv = ['rl-run', '--help']\n"
        "from rl_runner.train import cli\n"
        "try:\n    cli()\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'gymnasium', 'matplotlib')\n"
        "print('LOADED', sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "LOADED []" in result.stdout, result.stdout[-500:] + result.stderr[-2000:]
    version = ok(rl_run("--version", cwd=tmp_path)).stdout
    assert version.startswith("rl-run 0.1.0")


def test_multirun_makes_one_run_dir_per_job(tmp_path: Path):
    result = ok(
        rl_run(
            "-m",
            "seed=0,1",
            "algo.lr=1e-3,3e-4",
            *FAST,
            "trainer.total_steps=300",
            "eval.every=300",
            "hydra.sweep.dir=sweep",
            cwd=tmp_path,
        )
    )
    summaries = sorted((tmp_path / "sweep").glob("*/summary.json"))
    assert len(summaries) == 4, result.stdout
    # Named by job number and swept values, seed last; the fixed keys left out.
    assert sorted(p.parent.name for p in summaries) == [
        "0_algo.lr=0.001,seed=0",
        "1_algo.lr=0.0003,seed=0",
        "2_algo.lr=0.001,seed=1",
        "3_algo.lr=0.0003,seed=1",
    ]
    overrides = tmp_path / "sweep" / "3_algo.lr=0.0003,seed=1" / ".hydra" / "overrides.yaml"
    assert "seed=1" in overrides.read_text() and "algo.lr=0.0003" in overrides.read_text()


def test_hydra_introspection_works(tmp_path: Path):
    help_text = ok(rl_run("--help", cwd=tmp_path)).stdout
    assert "algo" in help_text and "dqn" in help_text
    job = ok(rl_run("--cfg", "job", "seed=7", cwd=tmp_path)).stdout
    assert "seed: 7" in job and "total_steps: 50000" in job
    defaults = ok(rl_run("--info", "defaults", cwd=tmp_path)).stdout
    assert "algo/dqn" in defaults and "env/cartpole" in defaults
    assert not (tmp_path / "outputs").exists()


def test_tutorial_preset_composes_the_seed_000_hyperparameters(tmp_path: Path):
    job = ok(rl_run("+experiment=dqn_cartpole_tutorial", "--cfg", "job", cwd=tmp_path)).stdout
    for expected in (
        "hidden_sizes:\n  - 128\n  - 128",
        "capacity: 10000",
        "batch_size: 128",
        "lr: 0.0001",
        "optimizer: adamw",
        "amsgrad: true",
        "target_tau: 0.005",
        "schedule: exponential",
        "decay_steps: 1000",
        "grad_clip_value: 100.0",
    ):
        assert expected in job, expected


def test_run_stops_at_the_eval_target_and_resume_respects_it(tmp_path: Path):
    run_dir = tmp_path / "run"
    # A target any policy reaches: the first evaluation ends the run.
    args = [*FAST, "trainer.total_steps=5000", "eval.every=1000", f"hydra.run.dir={run_dir}"]
    ok(rl_run(*args, "trainer.stop_at_eval_return=1", cwd=tmp_path))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 1000 and summary["reached_eval_target"] is True
    assert [row["step"] for row in read_jsonl(run_dir / "evaluations.jsonl")] == [1000]
    assert (run_dir / "checkpoints" / "step_0000001000.pt").exists()

    again = ok(rl_run(f"resume={run_dir}", cwd=tmp_path))
    assert "reached trainer.stop_at_eval_return" in again.stderr
    ok(rl_run(f"resume={run_dir}", "trainer.stop_at_eval_return=null", cwd=tmp_path))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 5000 and summary["reached_eval_target"] is False


def test_the_last_step_is_evaluated_and_logged_once(tmp_path: Path):
    # Three envs step 3 at a time: the in-loop evaluation falls due at step 1002,
    # which is also the last step; the end-of-run evaluation must not repeat it.
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            *FAST,
            "env.num_envs=3",
            "trainer.total_steps=1002",
            "eval.every=1000",
            "trainer.log_every=1000",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    assert [row["step"] for row in read_jsonl(run_dir / "evaluations.jsonl")] == [1002]
    speed_rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "train/epsilon" in r]
    assert [row["step"] for row in speed_rows] == [1002]


def test_run_and_sweep_dirs_and_resume_expand_the_home_directory(tmp_path: Path):
    """`~` reaches rl-run unexpanded after `key=` (the shell expands it only at the start
    of a word), and Hydra's grammar refuses it: rl-run expands it as the shell would."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    user = {"HOME": str(home)}
    short = [*FAST, "eval.every=300", "checkpoint.every=300", "trainer.total_steps=300"]
    ok(rl_run(*short, "hydra.run.dir=~/runs/x", cwd=work, extra_env=user))
    ok(rl_run("resume=~/runs/x", "trainer.total_steps=600", cwd=work, extra_env=user))
    summary = json.loads((home / "runs" / "x" / "summary.json").read_text())
    assert summary["completed"] is True and summary["env_steps"] == 600
    sweep = ["-m", *short, "seed=0,1", "hydra.sweep.dir=~/sweeps/s"]
    ok(rl_run(*sweep, cwd=work, extra_env=user))
    for number in (0, 1):
        job = json.loads((job_dir(home / "sweeps" / "s", number) / "summary.json").read_text())
        assert job["env_steps"] == 300
    assert list(work.iterdir()) == [], "a directory named '~' was made in the working directory"
