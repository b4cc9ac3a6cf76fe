"""`tracking=wandb`, read back from W&B's own offline files (`run-<id>.wandb` in the
run directory's wandb/): config, history equal to the run's JSONL files (W&B's step =
env steps), the video, status, artifacts; a killed and resumed run as one W&B run whose
sessions hold every step once; a sweep as one W&B group; no login and a server that is down,
each as a run would meet them (W&B missing: test_tracking.py)."""

from __future__ import annotations

import json
import signal
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FAST, ok, read_jsonl, rl_run, start_rl_run, wait_until
from test_tracking import free_port

pytest.importorskip("wandb")
from rl_runner.tracking.wandb_files import history, records, session_files  # noqa: E402

SHORT = [*FAST, "trainer.total_steps=3000", "eval.every=1000", "checkpoint.every=1000"]
OFFLINE = ["tracking=wandb", "tracking.mode=offline"]


@pytest.fixture(autouse=True)
def own_wandb_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B's caches, staged artifacts and settings in the test's folder, and no login
    or mode from the machine's environment."""
    for name in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc login either


def run_id(run_dir: Path) -> str:
    return str(json.loads((run_dir / ".tracking.json").read_text())["run_id"])


def rows_by_step(run_dir: Path) -> dict[int, dict[str, Any]]:
    """Every session's history, by W&B's step; a step in two sessions fails."""
    steps: dict[int, dict[str, Any]] = {}
    for path in session_files(run_dir, run_id(run_dir)):
        for row in history(path):
            assert row["_step"] not in steps, f"step {row['_step']} sent twice"
            steps[row["_step"]] = row
    return steps


def means_by_step(path: Path, key: str) -> dict[int, float]:
    """A JSONL file's values of `key` by step; several at one step (episodes ending
    together) by their mean, as W&B keeps one value per step."""
    seen: dict[int, list[float]] = defaultdict(list)
    for row in read_jsonl(path):
        if key in row:
            seen[row["step"]].append(row[key])
    return {step: sum(values) / len(values) for step, values in seen.items()}


def assert_matches_own_files(run_dir: Path) -> None:
    steps = rows_by_step(run_dir)
    own = {row["step"] for row in read_jsonl(run_dir / "metrics.jsonl")}
    assert sorted(steps) == sorted(own)
    for key in ("eval/return_mean", "eval/return_std"):
        sent = {step: row[key] for step, row in steps.items() if key in row}
        assert sent == pytest.approx(means_by_step(run_dir / "evaluations.jsonl", key))
    for key in ("train/episode_return", "loss/td", "time/sps"):
        sent = {step: row[key] for step, row in steps.items() if key in row}
        assert sent == pytest.approx(means_by_step(run_dir / "metrics.jsonl", key))


def kinds(run_dir: Path, kind: str) -> list[Any]:
    """The records of one kind (run, summary, artifact, exit) over the run's sessions."""
    return [
        getattr(record, kind)
        for path in session_files(run_dir, run_id(run_dir))
        for record in records(path)
        if record.WhichOneof("record_type") == kind
    ]


def summary_values(run_dir: Path) -> dict[str, Any]:
    values = {}
    for summary in kinds(run_dir, "summary"):
        for item in summary.update:
            values[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return values


def test_an_offline_wandb_run_matches_its_own_files(tmp_path: Path):
    run_dir = tmp_path / "run"
    result = ok(
        rl_run(*SHORT, *OFFLINE, "eval.video.every=3", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    )
    [folder] = [path.parent for path in session_files(run_dir, run_id(run_dir))]
    folders = run_dir / "wandb" / f"offline-run-*-{run_id(run_dir)}"
    assert f"`wandb sync {folders}` sends it" in result.stdout
    assert_matches_own_files(run_dir)
    run = kinds(run_dir, "run")[-1]  # the last record of the run: its final tags
    assert run.display_name == "run" and run.project == "rl-runner" and run.run_group == ""
    assert list(run.tags) == ["completed"]
    config = {
        item.key: json.loads(item.value_json) for item in kinds(run_dir, "run")[0].config.update
    }
    saved = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert config["algo.lr"] == saved["algo"]["lr"] and config["seed"] == 0
    assert config["env.id"] == "CartPole-v1"
    summary = summary_values(run_dir)
    assert summary["status"] == "completed" and summary["run_dir"] == str(run_dir)
    [video] = [row for row in rows_by_step(run_dir).values() if "eval/video/path" in row]
    assert video["_step"] == 3000 and video["eval/video/_type"] == "video-file"
    assert (folder / "files" / video["eval/video/path"]).read_bytes() == (
        run_dir / "videos" / "eval_step_0000003000.gif"
    ).read_bytes()
    [artifact] = kinds(run_dir, "artifact")
    assert artifact.name == f"results-{run_id(run_dir)}"
    contents = sorted(entry.path for entry in artifact.manifest.contents)
    assert contents == ["best.pt", "manifest.json", "plots/curves.png", "summary.json"]
    assert [record.exit_code for record in kinds(run_dir, "exit")] == [0]


def test_a_killed_and_resumed_wandb_run_holds_each_step_once(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [*FAST, "eval.every=1000", "checkpoint.every=1000", *OFFLINE]
    process = start_rl_run(
        *args, "trainer.total_steps=100000", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )

    def reached() -> bool:  # past W&B's first block of records, which a kill keeps
        steps = [int(path.stem.split("_")[1]) for path in run_dir.glob("checkpoints/step_*.pt")]
        return max(steps, default=0) >= 15000

    try:
        assert wait_until(reached, process, 120), process.communicate()
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    newest = max(int(path.stem.split("_")[1]) for path in run_dir.glob("checkpoints/step_*.pt"))
    ok(rl_run(f"resume={run_dir}", f"trainer.total_steps={newest + 2000}", cwd=tmp_path))
    assert len(session_files(run_dir, run_id(run_dir))) == 2  # one W&B run, two sessions
    assert_matches_own_files(run_dir)  # what the kill lost, the resume sent
    assert summary_values(run_dir)["status"] == "completed"


def test_a_wandb_sweep_is_one_group(tmp_path: Path):
    sweep_dir = tmp_path / "sweep"
    ok(rl_run("-m", *SHORT, "seed=0,1", *OFFLINE, f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path))
    jobs = sorted(path for path in sweep_dir.iterdir() if (path / ".tracking.json").is_file())
    runs = [kinds(job, "run")[0] for job in jobs]
    assert [run.display_name for run in runs] == ["0_seed=0", "1_seed=1"]
    [group] = {run.run_group for run in runs}
    assert group.startswith("sweep-")
    assert len({run_id(job) for job in jobs}) == 2


def test_wandb_online_without_a_login_is_one_line_before_anything_is_written(tmp_path: Path):
    result = rl_run(*SHORT, "tracking=wandb", "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(
        "rl-run: error: tracking=wandb (tracking.mode=online) found no W&B login"
    )
    assert "tracking.mode=offline" in line
    assert not (tmp_path / "run").exists()


def test_a_wandb_server_that_is_down_leaves_the_run_completed(tmp_path: Path):
    run_dir = tmp_path / "run"
    server = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    login = {"WANDB_API_KEY": "x" * 40, "WANDB_INIT_TIMEOUT": "5"}
    result = ok(
        rl_run(
            *SHORT,
            "tracking=wandb",
            f"tracking.uri={server}",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
            extra_env=login,
        )
    )
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    said = [line for line in result.stdout.splitlines() if "tracking: W&B" in line]
    assert len(said) == 1 and f"W&B at {server} failed" in said[0]
    assert [row["step"] for row in read_jsonl(run_dir / "evaluations.jsonl")] == [1000, 2000, 3000]
