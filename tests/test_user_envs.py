"""An env of the user's own, as the README's "Your own environment" shows it: by the id
its module registers (`env.id=module:id`) or by its class (`env.entry_point`)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import torch
from conftest import FAST, ok, read_jsonl, rl_run, run_env
from test_render import RL_RENDER
from test_resume import assert_same_run

README = Path(__file__).resolve().parents[1] / "README.md"
SHORT = [*FAST, "eval.every=300", "checkpoint.every=300"]
# The README's commands put the working directory on the path, as a user's shell would.
WORKING_DIR_ON_PATH = {"PYTHONPATH": "."}


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def write_readme_example(directory: Path) -> str:
    """The section's Python block, saved under the file name its first line gives."""
    code = re.search(r"```python\n(.*?)```", readme_section("Your own environment"), re.DOTALL)
    assert code is not None, "the README's example module is gone"
    name = re.match(r"# (\w+)\.py", code[1])
    assert name is not None, "the example's first line names its file: # <module>.py"
    (directory / f"{name[1]}.py").write_text(code[1])
    return name[1]


def readme_rl_run_arguments(setting: str) -> list[str]:
    """The arguments of the section's `PYTHONPATH=. rl-run ...` command that sets `setting`."""
    block = re.search(r"```bash\n(.*?)```", readme_section("Your own environment"), re.DOTALL)
    assert block is not None
    for line in block[1].splitlines():
        words = shlex.split(line, comments=True)
        if words[:2] == ["PYTHONPATH=.", "rl-run"] and any(
            word.startswith(f"{setting}=") for word in words
        ):
            return words[2:]
    raise AssertionError(f"the README has no rl-run command with {setting}")


def innermost_env_state(run_dir: Path, step: int) -> dict:
    checkpoint = torch.load(run_dir / "checkpoints" / f"step_{step:010d}.pt", weights_only=True)
    [layers] = checkpoint["envs"]  # one training env
    return layers[-1]  # the env inside its wrappers


def episode_lengths(run_dir: Path) -> set[int]:
    rows = read_jsonl(run_dir / "metrics.jsonl")
    return {row["train/episode_length"] for row in rows if "train/episode_length" in row}


def rl_run_here(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """rl-run with the working directory on Python's path, as the README's commands run."""
    return ok(rl_run(*args, cwd=cwd, extra_env=WORKING_DIR_ON_PATH))


def test_the_readme_example_env_trains_resumes_and_renders(tmp_path: Path):
    module = write_readme_example(tmp_path)
    run_dir = tmp_path / "by_id"
    by_id = readme_rl_run_arguments("env.id")
    assert f"env.id={module}:user/Corridor-v0" in by_id
    rl_run_here(*by_id, *SHORT, "trainer.total_steps=300", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    rl_run_here(f"resume={run_dir}", "trainer.total_steps=600", cwd=tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["completed"] is True and summary["env_steps"] == 600
    # the state the README says the snapshot keeps: the env's own data and generator
    state = innermost_env_state(run_dir, 600)["attributes"]
    assert state["cell"][0] == "plain" and state["_np_random"][0] == "generator"
    assert episode_lengths(run_dir) and max(episode_lengths(run_dir)) <= 50  # its time limit
    rendered = subprocess.run(
        [RL_RENDER, str(run_dir)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=run_env(WORKING_DIR_ON_PATH),
    )
    assert rendered.returncode == 0, rendered.stderr
    assert (run_dir / "renders" / "best_episode0.gif").is_file()

    by_class = tmp_path / "by_entry_point"
    by_entry_point = readme_rl_run_arguments("env.entry_point")
    assert f"env.entry_point={module}:Corridor" in by_entry_point
    short_run = [*SHORT, "trainer.total_steps=300"]
    rl_run_here(*by_entry_point, *short_run, f"hydra.run.dir={by_class}", cwd=tmp_path)
    saved = (by_class / ".hydra" / "config.yaml").read_text()
    assert f"id: {module}/Corridor" in saved and f"entry_point: {module}:Corridor" in saved
    assert json.loads((by_class / "summary.json").read_text())["env_steps"] == 300


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
