"""`rl-render` as a user runs it: greedy episodes of a run's checkpoint as GIF / MP4
files in the run directory, one frame per step plus the first."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

import imageio.v3 as iio
import pytest
from conftest import FAST, ok, read_jsonl, rl_run
from PIL import Image
from test_algorithms import quick, small_env

from rl_runner.registry import ALGORITHMS

RL_RENDER = shutil.which("rl-render", path=str(Path(sys.executable).parent)) or "rl-render"
EPISODE_LINE = re.compile(r"^episode (\d+): return (-?[\d.]+), length (\d+), (.+)$")


def rl_render(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([RL_RENDER, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def played(result: subprocess.CompletedProcess) -> list[tuple[float, int, Path]]:
    """(return, length, file) of each episode line rl-render printed."""
    rows = [EPISODE_LINE.match(line) for line in result.stdout.splitlines()]
    return [(float(m[2]), int(m[3]), Path(m[4])) for m in rows if m]


def test_a_maze_episode_becomes_a_gif_of_every_step(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["algo=q_learning", "env=maze", "trainer.total_steps=2000", "eval.every=500"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    [(total, length, gif)] = played(ok(rl_render(str(run_dir), cwd=tmp_path)))
    assert (total, length) == (1.0, 6)  # the shortest path, greedily
    assert gif == run_dir / "renders" / "best_episode0.gif"
    with Image.open(gif) as image:
        assert image.n_frames == length + 1 and image.size == (193, 193 + 16)  # a caption band


def test_cartpole_episodes_replay_the_evaluations_seeds(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [*FAST, "trainer.total_steps=3000", "eval.every=1000", "eval.episodes=3"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    result = ok(rl_render(str(run_dir), "--episodes", "2", cwd=tmp_path))
    episodes = played(result)
    best = max(read_jsonl(run_dir / "evaluations.jsonl"), key=lambda row: row["eval/return_mean"])
    # best.pt replays the evaluation that made it best, episode for episode
    assert [total for total, _, _ in episodes] == best["returns"][:2]
    for _, length, gif in episodes:
        with Image.open(gif) as image:
            assert image.n_frames == length + 1


def test_mp4_of_the_latest_checkpoint(tmp_path: Path):
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            *FAST,
            "trainer.total_steps=1000",
            "eval.every=1000",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    result = ok(rl_render(str(run_dir), "--checkpoint", "latest", "--format", "mp4", cwd=tmp_path))
    [(_, length, video)] = played(result)
    assert video.name == "step_0000001000_episode0.mp4"
    frames = iio.imread(video)
    assert frames.shape[0] == length + 1 and frames.shape[1] % 16 == frames.shape[2] % 16 == 0


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_algorithm_renders_on_its_small_env(tmp_path: Path, algo: str):
    run_dir = tmp_path / "run"
    args = [f"algo={algo}", small_env(algo), *quick(algo), "trainer.total_steps=500"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    [(total, length, gif)] = played(ok(rl_render(str(run_dir), "--fps", "50", cwd=tmp_path)))
    best = max(read_jsonl(run_dir / "evaluations.jsonl"), key=lambda row: row["eval/return_mean"])
    assert total == pytest.approx(best["returns"][0], abs=0.005)  # as printed, 2 decimals
    with Image.open(gif) as image:
        assert image.n_frames == length + 1


@pytest.mark.parametrize("checkpoint", ["best", "latest"])
def test_a_normalised_run_of_several_envs_renders_with_its_statistics(
    tmp_path: Path, checkpoint: str
):
    """rl-render plays one env: the per-env running returns of the reward normaliser
    (training state, like the rollout) are not its to load; the statistics are."""
    run_dir = tmp_path / "run"
    args = ["algo=ppo", "env=pendulum", *quick("ppo"), "trainer.total_steps=512"]
    args += ["algo.normalize_observations=true", "algo.normalize_rewards=true"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    result = ok(rl_render(str(run_dir), "--checkpoint", checkpoint, cwd=tmp_path))
    [(total, _, _)] = played(result)
    if checkpoint == "best":  # the same policy and statistics as its evaluation
        best = max(read_jsonl(run_dir / "evaluations.jsonl"), key=lambda r: r["eval/return_mean"])
        assert total == pytest.approx(best["returns"][0], abs=0.005)


def test_a_pixel_dqn_run_renders_its_screen(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["+experiment=dqn_pixels_tutorial", "trainer.total_steps=150", "buffer.batch_size=8"]
    args += ["algo.learning_starts=50", "eval.every=150", "eval.episodes=1"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    [(_, length, gif)] = played(ok(rl_render(str(run_dir), cwd=tmp_path)))
    with Image.open(gif) as image:
        assert image.n_frames == length + 1 and image.size == (600, 400 + 16)


def test_a_mujoco_run_renders_headless(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [
        "algo=td3",
        "env=hopper",
        "trainer.total_steps=300",
        "algo.random_steps=100",
        "algo.learning_starts=100",
        "eval.every=300",
        "eval.episodes=1",
    ]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    [(_, length, gif)] = played(ok(rl_render(str(run_dir), cwd=tmp_path)))
    with Image.open(gif) as image:
        assert image.n_frames == length + 1


def test_a_checkpoint_of_another_kind_of_run_is_refused(tmp_path: Path):
    runs = {}
    for algo in ("q_learning", "sarsa"):
        runs[algo] = tmp_path / algo
        args = [f"algo={algo}", "env=maze", "trainer.total_steps=200", "eval.every=200"]
        ok(rl_run(*args, f"hydra.run.dir={runs[algo]}", cwd=tmp_path))
    foreign = runs["sarsa"] / "checkpoints" / "best.pt"
    result = rl_render(str(runs["q_learning"]), "--checkpoint", str(foreign), cwd=tmp_path)
    assert result.returncode == 2 and "belongs to" in result.stderr
    assert not (runs["q_learning"] / "renders").exists()


@pytest.mark.parametrize(
    ("arguments", "mentions"),
    [
        (["{tmp}"], "is not a run directory"),
        (["{run}", "--checkpoint", "nope.pt"], "--checkpoint: nope.pt"),
        (["{run}", "--episodes", "0"], "must be between 1 and 100, got 0"),
        (["{run}", "--episodes", "7600"], "must be between 1 and 100, got 7600"),
        (["{run}", "--episodes", "abc"], "must be between 1 and 100, got abc"),
        (["{run}", "--fps", "fast"], "must be a number, got 'fast'"),
        (["{run}", "--fps", "1e-9"], "between 0.1 and 100"),
        (["{run}", "--checkpoint", "{run}/.hydra/config.yaml"], "not an rl-runner checkpoint"),
        (["{run}", "--format", "avi"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, arguments: list[str], mentions: str):
    run_dir = tmp_path / "run"
    ok(
        rl_run(
            "algo=q_learning",
            "env=maze",
            "trainer.total_steps=200",
            "eval.every=200",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    filled = [a.format(tmp=tmp_path, run=run_dir) for a in arguments]
    result = rl_render(*filled, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("rl-render: error: ") and mentions in line
    assert not (run_dir / "renders").exists() or not any((run_dir / "renders").iterdir())


def test_help_states_the_episode_bound(tmp_path: Path):
    help_text = " ".join(ok(rl_render("--help", cwd=tmp_path)).stdout.split())
    assert "--episodes EPISODES episodes to play, one file each (1-100, default 1)" in help_text


def copied_run(run_dir: Path, destination: Path) -> Path:
    """A copy of a shared run, so that its renders stay this test's."""
    return Path(shutil.copytree(run_dir, destination, ignore=shutil.ignore_patterns("renders")))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_keeps_the_episodes_written_and_no_partial_file(
    finished_run: Path, tmp_path: Path, stop: signal.Signals
):
    run_dir = copied_run(finished_run, tmp_path / "run")
    process = subprocess.Popen(
        [RL_RENDER, str(run_dir), "--episodes", "100"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # episode 0 is written; later ones are under way
    process.send_signal(stop)
    rest, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + stop, stderr
    [line] = stderr.strip().splitlines()
    printed = [Path(m[4]) for m in map(EPISODE_LINE.match, (first + rest).splitlines()) if m]
    kept_text = rf"rl-render: stopped by {stop.name}; kept the (\d+ episodes|episode) .*"
    said = re.fullmatch(kept_text, line)
    assert said, line
    count = 1 if said[1] == "episode" else int(said[1].split()[0])
    # the episodes written before the stop, each whole: no partial file of the one after
    kept = [run_dir / "renders" / f"best_episode{episode}.gif" for episode in range(count)]
    assert 1 <= count < 100 and sorted((run_dir / "renders").iterdir()) == sorted(kept)
    assert set(printed) <= set(kept) and f"{kept[-1].name} in {kept[-1].parent})" in line
    for gif in kept:
        with Image.open(gif) as image:
            image.seek(image.n_frames - 1)  # every frame decodes


def output_on_a_terminal(command: list[str], cwd: Path) -> tuple[int, str]:
    """Exit status and what `command` wrote to stderr when that is a terminal."""
    reader, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(reader, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(reader)
    return process.wait(timeout=60), b"".join(chunks).decode()


def test_a_terminal_shows_the_episode_progress_and_a_pipe_does_not(
    finished_run: Path, tmp_path: Path
):
    run_dir = copied_run(finished_run, tmp_path / "run")
    status, shown = output_on_a_terminal([RL_RENDER, str(run_dir)], cwd=tmp_path)
    assert status == 0
    piped = ok(rl_render(str(run_dir), cwd=tmp_path))
    assert piped.stderr == ""  # no bar where stderr is a pipe (a CI log)
    [(_, length, _)] = played(piped)  # the same greedy episode
    # the bar's total is CartPole-v1's time limit; it stops at the episode's length
    assert re.search(rf"\b{length}/500 \[", shown), shown
