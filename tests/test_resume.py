"""Resume is exact: N steps + resume + M steps equals N+M straight steps, bit for bit."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import (
    FAST,
    RL_RUN,
    ok,
    read_jsonl,
    rl_run,
    run_env,
    start_rl_run,
    tree_digest,
    wait_until,
)
from test_cli_run import scalars

from rl_runner import rundir
from rl_runner.config.compose import hydra_quote

ARGS = [*FAST, "eval.every=1000", "checkpoint.every=1000", "trainer.log_every=250"]


def final_state(run_dir: Path, step: int) -> dict:
    return torch.load(run_dir / "checkpoints" / f"step_{step:010d}.pt", weights_only=True)


def assert_trees_equal(left: object, right: object, path: str = "") -> None:
    if isinstance(left, torch.Tensor):
        assert isinstance(right, torch.Tensor) and torch.equal(left, right), path
    elif isinstance(left, dict):
        assert isinstance(right, dict) and left.keys() == right.keys(), path
        for key in left:
            assert_trees_equal(left[key], right[key], f"{path}/{key}")
    elif isinstance(left, (list, tuple)):
        assert len(left) == len(right), path
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_trees_equal(a, b, f"{path}[{index}]")
    else:
        assert left == right, path


def comparable_rows(run_dir: Path) -> list[dict]:
    """Metric rows without wall-clock values (time, steps per second)."""
    return [
        {k: v for k, v in row.items() if k not in ("time", "time/sps")}
        for row in read_jsonl(run_dir / "metrics.jsonl")
    ]


def assert_same_run(straight: Path, resumed: Path, step: int) -> None:
    left, right = final_state(straight, step), final_state(resumed, step)
    right["loop"]["wall_seconds"] = left["loop"]["wall_seconds"]
    assert left["run_id"] != right["run_id"]  # two runs, each with its own identity
    right["run_id"] = left["run_id"]
    assert_trees_equal(left["agent"], right["agent"], "agent")
    assert_trees_equal(left, right)
    assert comparable_rows(straight) == comparable_rows(resumed)
    assert read_jsonl(straight / "evaluations.jsonl") == read_jsonl(resumed / "evaluations.jsonl")


def test_resumed_run_is_bitwise_equal_to_a_straight_run(tmp_path: Path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    ok(rl_run(*ARGS, "trainer.total_steps=4000", f"hydra.run.dir={straight}", cwd=tmp_path))
    ok(rl_run(*ARGS, "trainer.total_steps=2000", f"hydra.run.dir={resumed}", cwd=tmp_path))
    ok(rl_run(f"resume={resumed}", "trainer.total_steps=4000", cwd=tmp_path))
    assert_same_run(straight, resumed, 4000)
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["env_steps"] == 4000 and summary["completed"] is True
    assert "total_steps: 4000" in (resumed / ".hydra" / "config.yaml").read_text()


def test_resume_is_exact_with_several_parallel_envs(tmp_path: Path):
    # Three envs: steps advance by 3, and work falls due at the first step past each multiple.
    parallel = [*ARGS, "env.num_envs=3", "eval.every=500"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    ok(rl_run(*parallel, "trainer.total_steps=3000", f"hydra.run.dir={straight}", cwd=tmp_path))
    ok(rl_run(*parallel, "trainer.total_steps=1500", f"hydra.run.dir={resumed}", cwd=tmp_path))
    ok(rl_run(f"resume={resumed}", "trainer.total_steps=3000", cwd=tmp_path))
    assert_same_run(straight, resumed, 3000)
    rows = read_jsonl(straight / "metrics.jsonl")
    assert len([row for row in rows if "train/episode_return" in row]) > 30
    evaluation_steps = [row["step"] for row in read_jsonl(straight / "evaluations.jsonl")]
    assert evaluation_steps == [501, 1002, 1500, 2001, 2502, 3000]


def test_resume_after_a_crash_drops_log_rows_past_the_checkpoint(tmp_path: Path):
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    ok(rl_run(*ARGS, "trainer.total_steps=4000", f"hydra.run.dir={straight}", cwd=tmp_path))
    ok(rl_run(*ARGS, "trainer.total_steps=2000", f"hydra.run.dir={crashed}", cwd=tmp_path))
    checkpoint_2000 = crashed / "checkpoints" / "step_0000002000.pt"
    as_written = checkpoint_2000.read_bytes()  # the newest checkpoint holds the replay memory
    ok(rl_run(f"resume={crashed}", "trainer.total_steps=3000", cwd=tmp_path))
    # As if the process died after logging up to step 3000 but before its checkpoint, when
    # step 2000 was still the newest one (a newer checkpoint takes its replay memory).
    (crashed / "checkpoints" / "step_0000003000.pt").unlink()
    checkpoint_2000.write_bytes(as_written)
    assert max(row["step"] for row in read_jsonl(crashed / "metrics.jsonl")) == 3000
    ok(rl_run(f"resume={crashed}", "trainer.total_steps=4000", cwd=tmp_path))
    assert_same_run(straight, crashed, 4000)
    # TensorBoard too: the resumed event file purges the first one's steps past 2000.
    straight_scalars, crashed_scalars = scalars(straight), scalars(crashed)
    del straight_scalars["time/sps"], crashed_scalars["time/sps"]
    assert crashed_scalars == straight_scalars


def test_a_resume_whose_metrics_log_was_deleted_says_what_is_lost(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(rl_run(*ARGS, "trainer.total_steps=2000", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    (run_dir / "metrics.jsonl").unlink()
    result = ok(rl_run(f"resume={run_dir}", "trainer.total_steps=3000", cwd=tmp_path))
    said = "metrics.jsonl was missing: the log goes on from step 2000; its rows before"
    assert said in result.stdout + result.stderr
    assert said in (run_dir / "train.log").read_text()
    assert min(row["step"] for row in read_jsonl(run_dir / "metrics.jsonl")) > 2000


def test_a_checkpoint_copied_in_from_another_run_is_refused(tmp_path: Path):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    ok(rl_run(*ARGS, "trainer.total_steps=1000", f"hydra.run.dir={mine}", cwd=tmp_path))
    ok(rl_run(*ARGS, "trainer.total_steps=2000", f"hydra.run.dir={theirs}", cwd=tmp_path))
    copied = mine / "checkpoints" / "step_0000002000.pt"
    copied.write_bytes((theirs / "checkpoints" / "step_0000002000.pt").read_bytes())
    before = tree_digest(mine)
    result = rl_run(f"resume={mine}", "trainer.total_steps=3000", cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert f"checkpoint {copied} was written by another run" in lines[0]
    assert tree_digest(mine) == before
    copied.unlink()  # its own checkpoints resume as ever
    ok(rl_run(f"resume={mine}", "trainer.total_steps=2000", cwd=tmp_path))
    assert final_state(mine, 2000)["run_id"] == final_state(mine, 1000)["run_id"]


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline, "run ended early"
        time.sleep(0.01)


ENDLESS = ["algo=q_learning", "env=gym", "env.id=fake_envs:Endless-v0", "eval.episodes=2"]


def test_evaluation_of_an_env_without_a_time_limit_ends_and_says_so(tmp_path: Path):
    run_dir = tmp_path / "run"
    result = ok(
        rl_run(
            *ENDLESS,
            "trainer.total_steps=600",
            "eval.every=300",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    said = "fake_envs:Endless-v0 has no time limit: evaluation episodes end at 10000 steps"
    assert said in result.stdout + result.stderr
    rows = read_jsonl(run_dir / "evaluations.jsonl")
    assert [row["step"] for row in rows] == [300, 600]
    assert all(row["eval/length_mean"] == 10_000 for row in rows)


@pytest.mark.parametrize(
    ("total", "every", "evaluated"), [(1000, 500, [500, 1000]), (500, 1000, [500])]
)
def test_a_stop_signal_during_an_evaluation_stops_it_and_the_resume_runs_it(
    tmp_path: Path, total: int, every: int, evaluated: list[int]
):
    """SIGTERM is honoured mid-evaluation (here one that would take hours), at a
    periodic evaluation and at the run's last one; the checkpoint remembers the
    evaluation is owed, and the resume runs it first."""
    run_dir = tmp_path / "run"
    process = start_rl_run(
        *ENDLESS,
        f"trainer.total_steps={total}",
        f"eval.every={every}",
        "eval.max_episode_steps=100000000",
        "checkpoint.every=250",
        "trainer.log_every=250",  # a row at the cut step: the resume must not repeat it
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    wait_for(run_dir / "checkpoints" / "step_0000000250.pt", process)
    time.sleep(2)  # the 250 tabular steps to 500 take milliseconds: it is evaluating
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert final_state(run_dir, 500)["loop"]["evaluation_pending"] is True
    assert read_jsonl(run_dir / "evaluations.jsonl") == []
    ok(rl_run(f"resume={run_dir}", "eval.max_episode_steps=50", cwd=tmp_path))
    rows = read_jsonl(run_dir / "evaluations.jsonl")
    assert [row["step"] for row in rows] == evaluated
    assert all(row["eval/length_mean"] == 50 for row in rows)
    assert not final_state(run_dir, total)["loop"]["evaluation_pending"]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    steps = [
        row["step"] for row in read_jsonl(run_dir / "metrics.jsonl") if "train/episodes" in row
    ]
    assert steps == sorted(set(steps))  # each training row once


@pytest.mark.parametrize(("stop", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_checkpoints_and_the_run_resumes_exactly(tmp_path: Path, stop, status):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    total = "trainer.total_steps=20000"
    process = start_rl_run(*ARGS, total, f"hydra.run.dir={stopped}", cwd=tmp_path)
    wait_for(stopped / "checkpoints" / "step_0000001000.pt", process)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    name = signal.Signals(stop).name
    assert stderr.count("\n") == 1 and name in stderr and f"resume={stopped}" in stderr
    assert name in (stopped / "train.log").read_text()  # the interruption is logged
    summary = json.loads((stopped / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 1000 <= summary["env_steps"] < 20000
    newest = sorted((stopped / "checkpoints").glob("step_*.pt"))[-1]
    assert newest.name == f"step_{summary['env_steps']:010d}.pt"

    ok(rl_run(f"resume={stopped}", cwd=tmp_path))
    ok(rl_run(*ARGS, total, f"hydra.run.dir={straight}", cwd=tmp_path))
    assert_same_run(straight, stopped, 20000)


@pytest.mark.parametrize("presses", [1, 2])  # two: 0.05 s apart, as an impatient user
def test_ctrl_c_during_start_up_leaves_no_directory(tmp_path: Path, presses: int):
    process = start_rl_run(*ARGS, cwd=tmp_path)
    wait_for(tmp_path / "outputs", process)  # the run directory is being set up
    for press in range(presses):
        time.sleep(0.05 * press)
        process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1
    outputs = tmp_path / "outputs"
    started = list(outputs.rglob("metrics.jsonl")) if outputs.exists() else []
    if not started:  # stopped before training: nothing of it stays
        assert not (tmp_path / "outputs").exists(), list((tmp_path / "outputs").rglob("*"))
        assert "before training started" in stderr


def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path: Path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    process = start_rl_run(
        *ARGS, "trainer.total_steps=2000", f"hydra.run.dir={killed}", cwd=tmp_path
    )
    wait_for(killed / ".hydra" / "config.yaml", process)  # written just before training
    process.kill()
    process.wait()
    assert not list(killed.glob("checkpoints/step_*.pt"))
    result = ok(rl_run(f"resume={killed}", cwd=tmp_path))
    assert "stopped before its first checkpoint" in result.stdout
    ok(rl_run(*ARGS, "trainer.total_steps=2000", f"hydra.run.dir={straight}", cwd=tmp_path))
    assert_same_run(straight, killed, 2000)


def test_a_restart_from_step_0_says_how_many_logged_steps_it_loses(tmp_path: Path):
    killed = tmp_path / "killed"
    args = [*FAST, "eval.every=100000", "checkpoint.every=100000", "trainer.log_every=250"]
    process = start_rl_run(
        *args, "trainer.total_steps=100000", f"hydra.run.dir={killed}", cwd=tmp_path
    )
    metrics = killed / "metrics.jsonl"
    # rundir's reader: the line being written may be torn
    logged = lambda: len(rundir.read_jsonl(metrics)) >= 2  # noqa: E731
    assert wait_until(logged, process, 120), process.communicate()
    process.kill()
    process.wait()
    last_logged = rundir.read_jsonl(metrics)[-1]["step"]  # a kill may tear the last line
    result = ok(rl_run(f"resume={killed}", "trainer.total_steps=500", cwd=tmp_path))
    assert f"the {last_logged} env steps it logged are lost" in result.stdout


def test_resume_of_a_finished_run_changes_nothing(tmp_path: Path, finished_run: Path):
    before = tree_digest(finished_run)
    result = ok(rl_run(f"resume={finished_run}", cwd=tmp_path))
    assert "already has 3000 of 3000 steps" in result.stdout + result.stderr
    assert tree_digest(finished_run) == before


def test_evaluation_and_checkpoint_frequency_do_not_perturb_training(tmp_path: Path):
    """Evaluating and checkpointing draw on no training RNG: the learner ends the same."""
    sparse, dense = tmp_path / "sparse", tmp_path / "dense"
    common = [*FAST, "trainer.total_steps=2000"]
    ok(
        rl_run(
            *common,
            "eval.every=2000",
            "checkpoint.every=2000",
            f"hydra.run.dir={sparse}",
            cwd=tmp_path,
        )
    )
    ok(
        rl_run(
            *common,
            "eval.every=300",
            "checkpoint.every=700",
            f"hydra.run.dir={dense}",
            cwd=tmp_path,
        )
    )
    assert_trees_equal(final_state(sparse, 2000)["agent"], final_state(dense, 2000)["agent"])


def test_changes_allowed_on_resume_apply_from_the_resumed_step(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(rl_run(*ARGS, "trainer.total_steps=2000", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    result = ok(
        rl_run(
            f"resume={run_dir}",
            "trainer.total_steps=3e3",  # written the way papers do
            "eval.episodes=5",
            "algo.lr=5e-4",
            "seed=0",  # the saved value: accepted, changes nothing
            "env.id=CartPole-v1",
            "env=cartpole",  # the saved option
            "algo.weight_decay=0.01",  # the optimiser's saved value must not win
            cwd=tmp_path,
        )
    )
    assert "changed on resume at step 2000" in result.stdout
    evaluations = read_jsonl(run_dir / "evaluations.jsonl")
    assert [len(row["returns"]) for row in evaluations] == [3, 3, 5]
    rates = {
        row["step"]: row["train/learning_rate"]
        for row in read_jsonl(run_dir / "metrics.jsonl")
        if "train/learning_rate" in row
    }
    assert rates[2000] != 5e-4 and rates[3000] == 5e-4
    history = (run_dir / ".hydra" / "resumes.yaml").read_text()
    assert "step: 2000" in history and "algo.lr=0.0005" in history and "seed" not in history
    saved = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "total_steps: 3000" in saved and "episodes: 5" in saved
    (group,) = final_state(run_dir, 3000)["agent"]["optimizer"]["param_groups"]
    assert group["weight_decay"] == 0.01


def test_the_first_row_after_a_resume_carries_the_latest_losses(tmp_path: Path):
    # Updates every 500 steps, rows every 250: a row falls due before the first update
    # after the resume, and must show the losses a straight run shows there.
    sparse = [*ARGS, "algo.train_freq=500", "checkpoint.every=1000"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    ok(rl_run(*sparse, "trainer.total_steps=2000", f"hydra.run.dir={straight}", cwd=tmp_path))
    ok(rl_run(*sparse, "trainer.total_steps=1000", f"hydra.run.dir={resumed}", cwd=tmp_path))
    ok(rl_run(f"resume={resumed}", "trainer.total_steps=2000", cwd=tmp_path))
    first_after = [
        r for r in comparable_rows(resumed) if r["step"] == 1250 and "train/episodes" in r
    ]
    assert "loss/td" in first_after[0]
    assert comparable_rows(straight) == comparable_rows(resumed)


def test_cfg_job_shows_the_config_a_resume_would_use(tmp_path: Path, finished_run: Path):
    before = tree_digest(finished_run)
    for args in (
        ["--cfg", "job", f"resume={finished_run}", "trainer.total_steps=7000"],
        [f"resume={finished_run}", "trainer.total_steps=7000", "--cfg", "job"],
    ):
        shown = ok(rl_run(*args, cwd=tmp_path)).stdout
        assert "total_steps: 7000" in shown and "hidden_sizes:\n  - 32\n  - 32" in shown
    assert tree_digest(finished_run) == before


def test_any_run_directory_resumes_with_the_printed_command(tmp_path: Path):
    """Spaces, quotes and non-ASCII in the path: the printed command works pasted."""
    run_dir = tmp_path / "runs" / "it's my run é"
    process = start_rl_run(
        *ARGS,
        "trainer.total_steps=20000",
        f"hydra.run.dir={hydra_quote(str(run_dir))}",
        cwd=tmp_path,
    )
    wait_for(run_dir / "checkpoints" / "step_0000001000.pt", process)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)  # a second Ctrl-C: stop at once, still say how to go on
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    printed = stderr.strip().split("continue with: ")[1]
    assert printed.startswith("rl-run resume=")
    command = printed.replace("rl-run", RL_RUN, 1) + " trainer.total_steps=2000"
    shell = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, env=run_env()
    )
    assert shell.returncode == 0, shell.stderr


def test_best_checkpoint_never_outlives_the_steps_a_resume_discards(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [*FAST, "eval.every=250", "checkpoint.every=1000", "checkpoint.keep_last=5"]
    ok(rl_run(*args, "trainer.total_steps=2000", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    # As if killed after the evaluations past step 1000 but before the step-2000 checkpoint.
    (run_dir / "checkpoints" / "step_0000002000.pt").unlink()
    kept = final_state(run_dir, 1000)["best"]
    ok(rl_run(f"resume={run_dir}", "eval.every=100000", cwd=tmp_path))
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert best["env_steps"] == kept["env_steps"] == summary["best_eval_step"] <= 1000
    assert_trees_equal(best["agent"], kept["agent"])


def test_interpolated_values_are_saved_resolved(tmp_path: Path, monkeypatch):
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            *ARGS,
            "seed=${oc.env:RL_TEST_SEED,3}",
            "trainer.total_steps=1000",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    assert "seed: 3\n" in (run_dir / ".hydra" / "config.yaml").read_text()
    monkeypatch.setenv("RL_TEST_SEED", "5")  # must not change what the run means
    ok(rl_run(f"resume={run_dir}", "trainer.total_steps=2000", cwd=tmp_path))
    assert "seed: 3\n" in (run_dir / ".hydra" / "config.yaml").read_text()
