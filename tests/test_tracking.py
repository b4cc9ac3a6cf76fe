"""`tracking=mlflow`, read back from MLflow's SQLite store with `MlflowClient`: params,
metrics equal to the run's own JSONL files, status and artifacts; a killed and resumed
run as one MLflow run without repeated steps; a sweep as a parent with a child per job;
a tracker that is down leaving the run completed; MLflow or W&B missing as one line."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import pytest
import yaml
from conftest import FAST, ok, read_jsonl, rl_run, run_env, start_rl_run, wait_until

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

SHORT = [*FAST, "trainer.total_steps=3000", "eval.every=1000", "checkpoint.every=1000"]


def client(work: Path) -> MlflowClient:
    """The default store: outputs/mlflow.db in the directory rl-run ran in."""
    return MlflowClient(tracking_uri=f"sqlite:///{work / 'outputs' / 'mlflow.db'}")


def runs(mlflow_client: MlflowClient) -> list:
    experiment = mlflow_client.get_experiment_by_name("rl-runner")
    assert experiment is not None
    return mlflow_client.search_runs([experiment.experiment_id])


def history(mlflow_client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in mlflow_client.get_metric_history(run_id, key))


def rows_of(path: Path, key: str) -> list[tuple[int, float]]:
    return sorted((row["step"], row[key]) for row in read_jsonl(path) if key in row)


def assert_matches_own_files(mlflow_client: MlflowClient, run_id: str, run_dir: Path) -> None:
    for key in ("eval/return_mean", "eval/return_std"):
        assert history(mlflow_client, run_id, key) == rows_of(run_dir / "evaluations.jsonl", key)
    for key in ("train/episode_return", "loss/td", "time/sps"):
        assert history(mlflow_client, run_id, key) == rows_of(run_dir / "metrics.jsonl", key)


def test_a_run_in_mlflow_matches_its_own_files(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [*SHORT, "tracking=mlflow", "eval.video.every=3"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    mlflow_client = client(tmp_path)
    [run] = runs(mlflow_client)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.tags["status"] == "completed"
    assert run.data.tags["run_dir"] == str(run_dir)
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert run.data.params["algo.lr"] == str(config["algo"]["lr"])
    assert run.data.params["seed"] == "0" and run.data.params["env.id"] == "CartPole-v1"
    assert_matches_own_files(mlflow_client, run.info.run_id, run_dir)
    artifacts = {item.path for item in mlflow_client.list_artifacts(run.info.run_id)}
    assert {"best.pt", "summary.json", "manifest.json", "plots"} <= artifacts
    plots = [item.path for item in mlflow_client.list_artifacts(run.info.run_id, "plots")]
    assert plots == ["plots/curves.png"]
    videos = [item.path for item in mlflow_client.list_artifacts(run.info.run_id, "videos")]
    assert videos == ["videos/eval_step_0000003000.gif"]  # the last evaluation, filmed
    saved = json.loads((run_dir / ".tracking.json").read_text())
    assert saved["run_id"] == run.info.run_id


def test_a_killed_and_resumed_run_is_one_mlflow_run_without_repeated_steps(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [*FAST, "eval.every=1000", "checkpoint.every=1000", "tracking=mlflow"]
    process = start_rl_run(
        *args, "trainer.total_steps=100000", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )

    def reached() -> bool:  # the MLflow run made (MLflow's store takes seconds to make)
        checkpoints = list(run_dir.glob("checkpoints/step_*.pt"))
        return (run_dir / ".tracking.json").exists() and len(checkpoints) >= 2

    try:
        assert wait_until(reached, process, 120), process.communicate()
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    newest = max(int(path.stem.split("_")[1]) for path in run_dir.glob("checkpoints/step_*.pt"))
    ok(rl_run(f"resume={run_dir}", f"trainer.total_steps={newest + 2000}", cwd=tmp_path))
    mlflow_client = client(tmp_path)
    [run] = runs(mlflow_client)  # the resume went on in the same MLflow run
    assert run.info.status == "FINISHED" and run.data.tags["status"] == "completed"
    for key in ("eval/return_mean", "train/episode_return", "loss/td"):
        steps = [m.step for m in mlflow_client.get_metric_history(run.info.run_id, key)]
        if key != "train/episode_return":  # several episodes may end at one step
            assert len(steps) == len(set(steps)), f"{key} repeats steps"
    assert_matches_own_files(mlflow_client, run.info.run_id, run_dir)


def test_a_sweep_is_one_parent_run_with_a_child_per_job(tmp_path: Path):
    sweep_dir = tmp_path / "sweep"
    ok(
        rl_run(
            "-m",
            *SHORT,
            "seed=0,1",
            "tracking=mlflow",
            f"hydra.sweep.dir={sweep_dir}",
            cwd=tmp_path,
        )
    )
    every = runs(client(tmp_path))
    [parent] = [run for run in every if run.data.tags.get("sweep") == "true"]
    children = [run for run in every if run is not parent]
    assert parent.data.tags["run_dir"] == str(sweep_dir)
    assert parent.info.status == "FINISHED" and parent.data.tags["status"] == "completed"
    assert sorted(run.info.run_name for run in children) == ["0_seed=0", "1_seed=1"]
    assert {run.data.tags["mlflow.parentRunId"] for run in children} == {parent.info.run_id}
    assert sorted(run.data.params["seed"] for run in children) == ["0", "1"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_tracker_that_is_down_leaves_the_run_completed(tmp_path: Path):
    run_dir = tmp_path / "run"
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = ok(
        rl_run(
            *SHORT,
            "tracking=mlflow",
            f"tracking.uri={uri}",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    said = [line for line in result.stdout.splitlines() if "tracking: MLflow" in line]
    assert len(said) == 1 and f"MLflow at {uri} failed" in said[0]
    assert "the run goes on without it" in said[0]
    assert [row["step"] for row in read_jsonl(run_dir / "evaluations.jsonl")] == [1000, 2000, 3000]


@pytest.mark.parametrize(
    ("module", "tracker", "options"),
    [("mlflow", "MLflow", ["tracking=mlflow"]), ("wandb", "W&B", ["tracking=wandb"])],
)
def test_a_tracker_missing_is_one_line_before_anything_is_written(
    tmp_path: Path, module: str, tracker: str, options: list[str]
):
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / f"{module}.py").write_text(f"raise ImportError('No module named {module}')\n")
    env = {"PYTHONPATH": f"{blocked}{os.pathsep}{run_env()['PYTHONPATH']}"}
    result = rl_run(*SHORT, *options, "hydra.run.dir=run", cwd=tmp_path, extra_env=env)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"rl-run: error: tracking={module} needs {tracker}: ")
    assert f"pip install 'rl-runner[{module}]'" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked"]


def test_tracking_turned_on_at_a_resume_sends_the_history_before_it(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(rl_run(*SHORT, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    ok(
        rl_run(
            f"resume={run_dir}", "trainer.total_steps=5000", "tracking.backend=mlflow", cwd=tmp_path
        )
    )
    mlflow_client = client(tmp_path)
    [run] = runs(mlflow_client)
    assert_matches_own_files(mlflow_client, run.info.run_id, run_dir)  # steps 1000 to 5000
    assert history(mlflow_client, run.info.run_id, "eval/return_mean")[0][0] == 1000


def test_a_relative_sqlite_uri_is_taken_from_the_working_directory(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            *SHORT,
            "tracking=mlflow",
            "tracking.uri=sqlite:///store.db",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    mlflow_client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store.db'}")
    [run] = runs(mlflow_client)
    assert run.info.status == "FINISHED"
    assert_matches_own_files(mlflow_client, run.info.run_id, run_dir)


def test_a_resume_changes_its_tracker_by_keys_not_by_the_group_option(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(rl_run(*SHORT, "tracking=mlflow", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    before = (run_dir / "summary.json").read_text()
    refused = rl_run(
        f"resume={run_dir}", "trainer.total_steps=4000", "tracking=wandb", cwd=tmp_path
    )
    assert refused.returncode == 2 and (run_dir / "summary.json").read_text() == before
    [line] = refused.stderr.splitlines()
    assert "tracking: a resumed run changes its tracker by keys" in line
    assert "tracking.backend=wandb" in line
    ok(rl_run(f"resume={run_dir}", "trainer.total_steps=4000", "tracking=mlflow", cwd=tmp_path))
    [run] = runs(client(tmp_path))  # the same tracker option as saved: the same MLflow run
    assert_matches_own_files(client(tmp_path), run.info.run_id, run_dir)
