"""Sweeps through Hydra's launchers: jobs in parallel (joblib), the sweep's index
(sweep.jsonl) kept current, each job's objective, TensorBoard HParams; and
`resume=auto`, the command a preempted job is requeued with."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import FAST, ok, rl_run, start_rl_run, tree_digest, wait_until
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from test_resume import assert_same_run

from rl_runner.config.store import job_dirname
from rl_runner.rundir import checkpoint_step

SHORT = ["algo=q_learning", "env=maze", "trainer.total_steps=600", "eval.every=100"]


def index_rows(sweep_dir: Path) -> dict[str, dict]:
    lines = (sweep_dir / "sweep.jsonl").read_text().splitlines()
    return {row["job"]: row for row in map(json.loads, lines)}


def hparams_of(run_dir: Path) -> tuple[dict, dict[str, float]]:
    """The settings and results a run logged for TensorBoard's HParams dashboard."""
    events = EventAccumulator(
        str(run_dir / "tensorboard" / "hparams"), size_guidance={"scalars": 0}
    )
    events.Reload()
    content = events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    settings = {
        key: getattr(value, value.WhichOneof("kind")) for key, value in start.hparams.items()
    }
    results = {
        tag: events.Scalars(tag)[-1].value for tag in ("hparam/final_return", "hparam/best_return")
    }
    return settings, results


def test_a_job_directory_is_named_by_its_swept_values_with_the_seed_last():
    assert job_dirname(3, "algo.lr=0.0003,seed=1,x=2") == "3_algo.lr=0.0003,x=2,seed=1"
    assert job_dirname(0, "env.id=ALE/Pong-v5,network.hidden_sizes=[64,64]") == (
        "0_env.id=ALE-Pong-v5,network.hidden_sizes=[64,64]"  # no path separator
    )
    assert job_dirname(1, "algo.lr=1e+308") == "1_algo.lr=1e+308"
    assert job_dirname(7, "") == "7"  # a sweep of one job with nothing swept
    assert len(job_dirname(12, ",".join(f"key{i}=value{i}" for i in range(100)))) == 200
    assert len(job_dirname(0, "env.name=" + "漢" * 150).encode()) <= 200  # bytes, not chars


def test_four_jobs_on_two_joblib_workers_are_indexed_with_their_objectives(tmp_path: Path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", *SHORT, "seed=0,1,2,3", "sweep.objective=best"]
    args += ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep_dir}"]
    ok(rl_run(*args, cwd=tmp_path))
    rows = index_rows(sweep_dir)
    assert sorted(rows) == [f"{seed}_seed={seed}" for seed in range(4)]  # job dir names
    for job, row in rows.items():
        seed = int(job.split("=")[1])
        summary = json.loads((sweep_dir / job / "summary.json").read_text())
        assert row["status"] == "completed" == summary["status"]
        assert row["objective"] == summary["best_eval_return_mean"]
        assert row["wall_seconds"] == summary["wall_seconds"]
        assert f"seed={seed}" in row["overrides"]
        settings, results = hparams_of(sweep_dir / job)
        assert settings["seed"] == seed and settings["algo.lr"] == 0.1
        assert results["hparam/final_return"] == summary["final_eval_return_mean"]


def test_a_failed_job_is_indexed_with_its_error_and_fails_the_sweep(tmp_path: Path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", *SHORT, "algo.q_init_high=1,1e308", f"hydra.sweep.dir={sweep_dir}"]
    result = rl_run(*args, cwd=tmp_path)
    assert result.returncode == 1 and "1 of 2 sweep jobs failed" in result.stderr
    rows = index_rows(sweep_dir)
    completed, diverged = rows["0_algo.q_init_high=1"], rows["1_algo.q_init_high=1e+308"]
    assert completed["status"] == "completed" and completed["objective"] == 1.0
    assert diverged["status"] == "diverged" and "diverged" in diverged["error"]


def test_a_requeued_command_with_resume_auto_finishes_the_run_exactly(tmp_path: Path):
    """The same command after each preemption: before the first checkpoint (started
    again), mid-run (resumed exactly), after completion (left as it is)."""
    args = [*FAST, "eval.every=1000", "checkpoint.every=500", "trainer.log_every=250"]
    args += ["trainer.total_steps=3000"]
    straight, run_dir = tmp_path / "straight", tmp_path / "run"
    ok(rl_run(*args, f"hydra.run.dir={straight}", cwd=tmp_path))
    command = [*args, f"hydra.run.dir={run_dir}", "resume=auto"]
    for moment in ("before-first-checkpoint", "mid-run"):
        process = start_rl_run(*command, cwd=tmp_path)
        if moment == "before-first-checkpoint":
            ready = lambda: (run_dir / ".hydra" / "config.yaml").exists()  # noqa: E731
        else:
            ready = lambda: len(list(run_dir.glob("checkpoints/step_*.pt"))) >= 2  # noqa: E731
        assert wait_until(ready, process, 120), process.communicate()
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=120)
    ok(rl_run(*command, cwd=tmp_path))
    assert_same_run(straight, run_dir, 3000)
    finished = tree_digest(run_dir)
    again = ok(rl_run(*command, cwd=tmp_path))
    assert "already has 3000 of 3000 steps" in again.stderr
    assert tree_digest(run_dir) == finished  # a completed run is left as it is


def test_resume_auto_needs_the_run_directory(tmp_path: Path):
    result = rl_run(*SHORT, "resume=auto", cwd=tmp_path)
    assert result.returncode == 2 and "resume=auto: give the run's directory" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_requeued_sweep_skips_finished_jobs_and_resumes_the_interrupted_ones(tmp_path: Path):
    """The same sweep command after two preemptions: one in job 1 mid-run, one in job 2
    before its first checkpoint. Nothing is lost and no job runs twice."""
    args = ["-m", *FAST, "seed=0,1,2", "trainer.total_steps=3000", "eval.every=1000"]
    args += ["checkpoint.every=500"]
    straight, sweep_dir = tmp_path / "straight", tmp_path / "sweep"
    ok(rl_run(*args, f"hydra.sweep.dir={straight}", cwd=tmp_path))
    jobs = [f"{seed}_seed={seed}" for seed in range(3)]
    command = [*args, f"hydra.sweep.dir={sweep_dir}", "resume=auto"]
    mid_run = sweep_dir / jobs[1] / "checkpoints" / "step_0000001000.pt"
    started = sweep_dir / jobs[2] / ".hydra" / "config.yaml"
    for preempted_when in (mid_run.exists, started.exists):
        process = start_rl_run(*command, cwd=tmp_path)
        assert wait_until(preempted_when, process, 120), process.communicate()
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=120)
        if preempted_when == mid_run.exists:
            assert not (sweep_dir / jobs[2]).exists()
            finished = tree_digest(sweep_dir / jobs[0])
    assert not list((sweep_dir / jobs[2]).glob("checkpoints/*.pt"))  # before its first
    result = ok(rl_run(*command, cwd=tmp_path))
    assert result.stderr.count("already has 3000 of 3000 steps") == 2  # jobs 0 and 1
    assert tree_digest(sweep_dir / jobs[0]) == finished
    for job in jobs:
        assert_same_run(straight / job, sweep_dir / job, 3000)
    assert {row["status"] for row in index_rows(sweep_dir).values()} == {"completed"}
    assert sorted(index_rows(sweep_dir)) == jobs


@pytest.mark.parametrize(
    ("stop", "status"),
    [("ctrl-c", 130), ("sigterm to the driver", 143)],  # a terminal's; `timeout`'s, docker's
)
def test_a_stopped_joblib_sweep_checkpoints_every_running_job_and_starts_no_other(
    tmp_path: Path, stop: str, status: int
):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", *FAST, "seed=0,1,2", "checkpoint.every=500", "eval.every=100000"]
    args += ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep_dir}"]
    process = start_rl_run(*args, "trainer.total_steps=100000", cwd=tmp_path, own_group=True)
    running = [sweep_dir / f"{seed}_seed={seed}" for seed in (0, 1)]
    mid_run = lambda: all(list(job.glob("checkpoints/step_*.pt")) for job in running)  # noqa: E731
    try:
        assert wait_until(mid_run, process, 120), process.communicate()
        if stop == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == status, stderr
    assert "waiting for 2 running job(s) to save a checkpoint" in stderr
    rows = index_rows(sweep_dir)
    assert sorted(rows) == ["0_seed=0", "1_seed=1"]  # the third job never started
    assert not (sweep_dir / "2_seed=2").exists()
    stopped_at = {}
    for job in running:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "interrupted" == rows[job.name]["status"]
        stopped_at[job] = job / "checkpoints" / f"step_{summary['env_steps']:010d}.pt"
        assert stopped_at[job].exists() and not list(job.glob("checkpoints/.*.tmp"))
    if stop == "ctrl-c":  # the same command again goes on from where each job stopped
        further = max(checkpoint_step(path) or 0 for path in stopped_at.values()) + 500
        ok(rl_run(*args, f"trainer.total_steps={further}", "resume=auto", cwd=tmp_path))
        for job, checkpoint in stopped_at.items():
            assert f"resuming {job} from {checkpoint.name}" in (job / "train.log").read_text()
        assert {row["status"] for row in index_rows(sweep_dir).values()} == {"completed"}


def test_the_pre_flight_of_a_sweep_makes_each_distinct_env_once(tmp_path: Path):
    """Three jobs pass the checks with one env; the fourth asks for a memory no machine
    has, so the sweep is refused before any job runs."""
    log = tmp_path / "makes.log"
    args = [
        "-m",
        "algo=td3",
        "env=gym",
        "env.id=fake_envs:CountedMakes-v0",
        f"+env.kwargs.log={log}",
    ]
    result = rl_run(*args, "buffer.capacity=1000,10000000000000", "seed=0,1,2", cwd=tmp_path)
    assert result.returncode == 2 and "buffer.capacity" in result.stderr, result.stderr
    assert "seed=0" in result.stderr and "buffer.capacity=10000000000000" in result.stderr
    assert log.read_text().count("made") == 1


def test_a_continued_sweep_reads_step_counts_as_papers_write_them(tmp_path: Path):
    args = ["-m", "algo=q_learning", "env=maze", "eval.every=100", "trainer.total_steps=6e2,8e2"]
    command = [*args, f"hydra.sweep.dir={tmp_path / 'sweep'}", "resume=auto"]
    ok(rl_run(*command, cwd=tmp_path))
    assert sorted(index_rows(tmp_path / "sweep")) == [
        "0_trainer.total_steps=600",
        "1_trainer.total_steps=800",
    ]
    assert ok(rl_run(*command, cwd=tmp_path)).stderr.count("already has") == 2


def test_a_continued_sweep_with_a_job_in_use_elsewhere_runs_no_job(tmp_path: Path):
    """Every job's lock is checked before any job runs: exit 2 means nothing written."""
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "algo=q_learning", "env=maze", "eval.every=100", "seed=0,1"]
    ok(rl_run(*args, "trainer.total_steps=600", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path))
    busy = sweep_dir / "1_seed=1"
    holder = start_rl_run(f"resume={busy}", "trainer.total_steps=100000000", cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not (busy / ".rl-run.lock").exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        before = tree_digest(sweep_dir / "0_seed=0")
        command = [*args, "trainer.total_steps=1200", f"hydra.sweep.dir={sweep_dir}"]
        result = rl_run(*command, "resume=auto", cwd=tmp_path)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert f"would continue {busy}" in lines[0]
        assert f"in use by another rl-run (pid {holder.pid})" in lines[0]
        assert tree_digest(sweep_dir / "0_seed=0") == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=60)


def test_a_job_refused_in_a_joblib_worker_fails_the_sweep_and_its_row_says_why(
    tmp_path: Path,
):
    """The refusal happens in the worker process; the driver reads it from the index."""
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "algo=q_learning", "env=maze", "eval.every=100", "seed=0,1"]
    ok(rl_run(*args, "trainer.total_steps=600", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path))
    damaged = sweep_dir / "1_seed=1" / "metrics.jsonl"
    lines = damaged.read_text().splitlines(keepends=True)
    damaged.write_text("".join([*lines[:2], "garbage{\n", *lines[3:]]))
    before = tree_digest(sweep_dir / "1_seed=1")
    result = rl_run(
        *args,
        "trainer.total_steps=800",
        f"hydra.sweep.dir={sweep_dir}",
        "resume=auto",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert "rl-run: 1 of 2 sweep jobs failed" in result.stderr
    assert f"failed job {sweep_dir / '1_seed=1'}: resume: {damaged}: line 3" in result.stderr
    rows = index_rows(sweep_dir)
    assert rows["0_seed=0"]["status"] == "completed" and rows["0_seed=0"]["env_steps"] == 800
    assert rows["1_seed=1"]["status"] == "refused" and "line 3" in rows["1_seed=1"]["error"]
    after = tree_digest(sweep_dir / "1_seed=1")
    # the refused run stays as it was; its train.log gains the refusal
    assert {**after, "train.log": None} == {**before, "train.log": None}
    assert "job refused" in (sweep_dir / "1_seed=1" / "train.log").read_text()


def test_resume_auto_for_a_sweep_needs_its_directory(tmp_path: Path):
    result = rl_run("-m", *SHORT, "seed=0,1", "resume=auto", cwd=tmp_path)
    assert result.returncode == 2 and "resume=auto: give the sweep's directory" in result.stderr


def test_an_optuna_search_returns_the_best_of_its_trials(tmp_path: Path):
    args = ["-m", "+sweep=dqn_cartpole_optuna", "hydra.sweeper.n_trials=3"]
    ok(rl_run(*args, *FAST, "trainer.total_steps=1000", "eval.every=500", cwd=tmp_path))
    [sweep_dir] = (tmp_path / "outputs" / "multirun").glob("*/*")  # the default place
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    rows = index_rows(sweep_dir).values()
    assert len(rows) == 3 and best["best_value"] == max(row["objective"] for row in rows)
    winner = next(row for row in rows if row["objective"] == best["best_value"])
    for key, value in best["best_params"].items():
        assert f"{key}={value}" in winner["overrides"]
    assert study_trials(sweep_dir) == [row["objective"] for row in rows]


def study_trials(sweep_dir: Path) -> list[float]:
    """The values of the completed trials in the study's SQLite file, in trial order."""
    import optuna

    study = optuna.load_study(study_name="dqn_cartpole", storage=f"sqlite:///{sweep_dir}/optuna.db")
    return [trial.value for trial in study.trials if trial.state.name == "COMPLETE"]


def test_an_optuna_search_continues_from_its_study_file(tmp_path: Path):
    """resume=auto on the search's directory: the new trials join the stored study (and
    its best), and the first command's trials are left as they are."""
    sweep_dir = tmp_path / "sweep"  # given relative, as a user types it
    args = ["-m", "+sweep=dqn_cartpole_optuna", *FAST, "trainer.total_steps=1000"]
    args += ["eval.every=500", "hydra.sweep.dir=sweep"]
    ok(rl_run(*args, "hydra.sweeper.n_trials=2", cwd=tmp_path))
    first = {job: tree_digest(sweep_dir / job) for job in index_rows(sweep_dir)}
    more = ["hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.seed=1", "resume=auto"]
    ok(rl_run(*args, *more, cwd=tmp_path))
    rows = index_rows(sweep_dir)
    assert len(rows) == 4 and {job: tree_digest(sweep_dir / job) for job in first} == first
    assert sorted(study_trials(sweep_dir)) == sorted(row["objective"] for row in rows.values())
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(row["objective"] for row in rows.values())


def test_the_td3_search_preset_runs_a_trial(tmp_path: Path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "+sweep=td3_pendulum_optuna", "hydra.sweeper.n_trials=1", *FAST]
    args += ["trainer.total_steps=400", "eval.every=400", f"hydra.sweep.dir={sweep_dir}"]
    ok(rl_run(*args, cwd=tmp_path))
    [row] = index_rows(sweep_dir).values()
    assert row["status"] == "completed" and any("algo.tau=" in o for o in row["overrides"])


def test_submitits_local_executor_runs_the_jobs(tmp_path: Path):
    sweep_dir = tmp_path / "sweep"
    args = [
        "-m",
        *SHORT,
        "seed=0,1",
        "hydra/launcher=submitit_local",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    ok(rl_run(*args, cwd=tmp_path))
    rows = index_rows(sweep_dir)
    assert sorted(rows) == ["0_seed=0", "1_seed=1"]
    assert {row["status"] for row in rows.values()} == {"completed"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, head: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while head.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the Ray head did not open port {port} (exit {head.poll()})")


@pytest.fixture
def ray_head(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Ray head on loopback, as `ray start --head` makes one, with token authentication
    (Ray's default). Its address is given explicitly; it is stopped afterwards."""
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    assert ray_cli, "the ray extra is not installed"
    # Short: Ray's socket paths live under its temp dir and must fit in 107 bytes.
    home = Path(tempfile.mkdtemp(prefix="rlr-ray-", dir="/tmp"))
    token = home / "token"
    token.write_text(secrets.token_hex(32))
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    port = free_port()
    command = [ray_cli, "start", "--head", "--block", f"--port={port}"]
    command += ["--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false"]
    command += ["--disable-usage-stats", f"--temp-dir={home / 'ray'}"]
    # Its own session: the head and every process it starts are stopped together.
    head = subprocess.Popen(command, env=os.environ.copy(), start_new_session=True)
    try:
        wait_for_port(port, head, 120)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=60)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.xdist_group("ray")  # one Ray head at a time (make test runs 2 workers)
def test_a_sweep_runs_on_an_existing_ray_cluster(ray_head: str, tmp_path: Path):
    """The driver runs in one directory and the cluster's workers in another: the jobs
    still write into the sweep directory the driver claimed."""
    args = ["-m", *SHORT, "seed=0,1", "hydra/launcher=ray"]
    args += [f"+hydra.launcher.ray.init.address={ray_head}"]
    result = ok(rl_run(*args, cwd=tmp_path))
    port = ray_head.rsplit(":", 1)[1]  # Ray names the node by its address, not loopback
    assert "Connecting to existing Ray cluster at address: " in result.stderr
    assert f":{port}..." in result.stderr
    [sweep_dir] = (tmp_path / "outputs" / "multirun").glob("*/*")
    rows = index_rows(sweep_dir)
    assert sorted(rows) == ["0_seed=0", "1_seed=1"]
    assert {row["status"] for row in rows.values()} == {"completed"}
    for job, row in rows.items():
        summary = json.loads((sweep_dir / job / "summary.json").read_text())
        assert row["objective"] == summary["final_eval_return_mean"]
        assert job.split("_")[1] in row["overrides"]  # seed=N


@pytest.mark.xdist_group("ray")  # one Ray head at a time (make test runs 2 workers)
def test_a_cluster_that_asks_for_a_token_says_so(ray_head: str, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    args = ["-m", *SHORT, "seed=0,1", "hydra/launcher=ray"]
    result = rl_run(*args, f"+hydra.launcher.ray.init.address={ray_head}", cwd=tmp_path)
    assert result.returncode == 2
    # One line, asked once: not Ray's 20 s of C++ warnings before its own refusal.
    [line] = result.stderr.splitlines()
    assert line.startswith(f"rl-run: error: hydra.launcher.ray.init.address: {ray_head} refused")
    assert "set RAY_AUTH_MODE=token" in line
    assert not (tmp_path / "outputs").exists()


def test_the_slurm_launcher_composes(tmp_path: Path):
    shown = ok(rl_run(*SHORT, "hydra/launcher=submitit_slurm", "--cfg", "hydra", cwd=tmp_path))
    assert "submitit_folder: ${hydra.sweep.dir}/.submitit/%j" in shown.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("first", "again", "mentions"),
    [
        (["seed=0,1"], ["seed=1,2"], "seed differs"),  # job 0 would be seed 1's
        (["algo.lr=0.1,0.5"], ["algo.lr=0.5,0.1"], "algo.lr differs"),  # relabelled results
        (["seed=0,1"], ["seed=0,1", "env.kwargs.goal=7"], "env.kwargs.goal: cannot change"),
        # seed no longer swept: job 0 would be named 0_algo.lr=0.1, beside 0_algo.lr=0.1,seed=0
        (["seed=0,1", "algo.lr=0.1,0.2"], ["seed=0", "algo.lr=0.1,0.2"], "beside job 0's"),
    ],
)
def test_a_continued_sweep_with_other_jobs_is_refused_untouched(
    tmp_path: Path, first: list[str], again: list[str], mentions: str
):
    sweep_dir = tmp_path / "sweep"
    ok(rl_run("-m", *SHORT, *first, f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path))
    before = tree_digest(sweep_dir)
    result = rl_run(
        "-m", *SHORT, *again, f"hydra.sweep.dir={sweep_dir}", "resume=auto", cwd=tmp_path
    )
    assert result.returncode == 2 and mentions in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert tree_digest(sweep_dir) == before


def test_resume_auto_refuses_a_directory_that_holds_no_sweep(tmp_path: Path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    args = ["-m", *SHORT, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'mine'}", "resume=auto"]
    result = rl_run(*args, cwd=tmp_path)
    assert result.returncode == 2 and "holds files but no sweep" in result.stderr
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_a_search_whose_settings_no_trial_can_run_is_refused_up_front(tmp_path: Path):
    args = ["-m", "+sweep=dqn_cartpole_optuna", "trainer.total_steps=1000"]
    result = rl_run(*args, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert result.returncode == 2 and "algo.learning_starts" in result.stderr
    assert not (tmp_path / "sweep").exists()


def test_a_launcher_whose_plugin_is_missing_names_the_extra_that_brings_it():
    # Hydra's own error for an option it cannot find, as it raises it without the plugin
    from hydra.errors import MissingConfigException

    from rl_runner.config.compose import one_line

    error = MissingConfigException(
        "Could not find 'hydra/launcher/joblib'", "hydra/launcher/joblib", ["basic", "ray"]
    )
    assert one_line(error) == (
        "cannot find config 'hydra/launcher/joblib' (available: basic, ray); "
        "it is a Hydra plugin's: pip install 'rl-runner[sweep]'"
    )
