"""Bad input: one clear line, a non-zero exit, no stray run dir, no change to a run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import rl_run, tree_digest


def assert_rejected(tmp_path: Path, *args: str, mentions: str) -> str:
    result = rl_run(*args, cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rl-run: error: ")
    assert mentions in lines[0], lines[0]
    assert not (tmp_path / "outputs").exists(), "a stray run directory was created"
    return lines[0]


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["algo=nope"], "algo/nope"),
        (["env=mars"], "env/mars"),
        (["algo.no_such_key=1"], "no_such_key"),
        (["trainer.total_steps=many"], "trainer.total_steps"),
        (["algo.loss=cubic"], "cubic"),
        (["algo.lr=-1"], "algo.lr"),
        (["buffer.batch_size=0"], "buffer.batch_size"),
        (["env.id=NoSuchEnv-v0"], "NoSuchEnv-v0"),
        (["env=gym", "env.id=Pendulum-v1"], "discrete action space"),
        (["device=cuda:3"], "device"),
    ],
)
def test_bad_config_is_one_line_and_leaves_nothing(tmp_path: Path, args: list[str], mentions: str):
    assert_rejected(tmp_path, *args, mentions=mentions)


def test_resume_of_a_missing_directory(tmp_path: Path):
    assert_rejected(tmp_path, f"resume={tmp_path / 'gone'}", mentions="not a directory")
    assert not (tmp_path / "gone").exists()


def test_resume_cannot_be_swept(tmp_path: Path, finished_run: Path):
    assert_rejected(tmp_path, "-m", f"resume={finished_run}", mentions="one at a time")


def test_resume_of_a_directory_that_is_not_a_run(tmp_path: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert_rejected(tmp_path, f"resume={plain}", mentions="not a run directory")
    assert list(plain.iterdir()) == []


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    return copy


def test_resume_with_a_truncated_checkpoint_changes_nothing(tmp_path: Path, run_copy: Path):
    newest = run_copy / "checkpoints" / "step_0000003000.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    before = tree_digest(run_copy)
    line = assert_rejected(
        tmp_path, f"resume={run_copy}", "trainer.total_steps=4000", mentions="corrupt or truncated"
    )
    assert "step_0000003000.pt" in line
    assert "the previous one is step_0000002000.pt" in line
    assert tree_digest(run_copy) == before


def test_resume_with_a_garbage_checkpoint_changes_nothing(tmp_path: Path, run_copy: Path):
    (run_copy / "checkpoints" / "step_0000003000.pt").write_bytes(b"not a checkpoint")
    before = tree_digest(run_copy)
    assert_rejected(
        tmp_path, f"resume={run_copy}", "trainer.total_steps=4000", mentions="corrupt or truncated"
    )
    assert tree_digest(run_copy) == before


@pytest.mark.parametrize(
    ("overrides", "mentions"),
    [
        (["network=mlp"], "network"),  # a group option cannot change under a checkpoint
        (["seed=9"], "seed"),
        (["network.hidden_sizes=[64,64]", "trainer.total_steps=4000"], "does not fit"),
        (["algo.gamma=2"], "algo.gamma"),
    ],
)
def test_bad_resume_overrides_change_nothing(
    tmp_path: Path, run_copy: Path, overrides: list[str], mentions: str
):
    before = tree_digest(run_copy)
    assert_rejected(tmp_path, f"resume={run_copy}", *overrides, mentions=mentions)
    assert tree_digest(run_copy) == before


def test_new_run_into_an_existing_run_dir_is_refused(tmp_path: Path, run_copy: Path):
    before = tree_digest(run_copy)
    assert_rejected(tmp_path, f"hydra.run.dir={run_copy}", mentions="already holds a run")
    assert tree_digest(run_copy) == before


def test_cleanup_removes_only_a_directory_holding_nothing_but_hydra_files(tmp_path, monkeypatch):
    from rl_runner.train import _remove_if_only_bookkeeping

    monkeypatch.chdir(tmp_path)
    fresh = tmp_path / "outputs" / "day" / "run"
    (fresh / ".hydra").mkdir(parents=True)
    (fresh / "train.log").write_text("")
    _remove_if_only_bookkeeping(fresh)
    assert not (tmp_path / "outputs").exists()  # the empty date folders went too

    for extra in ("metrics.jsonl", "notes.txt"):
        kept = tmp_path / "outputs" / extra.replace(".", "_")
        (kept / ".hydra").mkdir(parents=True)
        (kept / extra).write_text("x")
        _remove_if_only_bookkeeping(kept)
        assert (kept / extra).exists()
