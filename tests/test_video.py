"""`eval.video.every`: GIFs of evaluation episodes in `videos/` and TensorBoard, read
back: which evaluations are filmed (a resume films the same ones), the episode's frames
and its playing time, the frame cap."""

from __future__ import annotations

import io
from pathlib import Path

from conftest import FAST, ok, read_jsonl, rl_run
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

FPS = 25


def gif_frames_and_seconds(data: bytes) -> tuple[int, float]:
    """Frames in a GIF (identical neighbours merged, their times added) and its length."""
    image = Image.open(io.BytesIO(data))
    seconds = 0.0
    for index in range(image.n_frames):
        image.seek(index)
        seconds += image.info["duration"] / 1000
    return image.n_frames, seconds


def tensorboard_videos(run_dir: Path) -> dict[int, bytes]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    if "eval/video" not in events.Tags()["images"]:
        return {}
    return {event.step: event.encoded_image_string for event in events.Images("eval/video")}


def episode_zero_length(run_dir: Path, step: int) -> int:
    """CartPole pays 1 a step: episode 0's return is its length."""
    [row] = [row for row in read_jsonl(run_dir / "evaluations.jsonl") if row["step"] == step]
    return int(row["returns"][0])


def test_every_second_evaluation_and_the_last_are_filmed_and_a_resume_films_on(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [*FAST, "eval.every=1000", "eval.video.every=2", f"eval.video.fps={FPS}"]
    ok(rl_run(*args, "trainer.total_steps=5000", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    filmed = [2000, 4000, 5000]  # every second evaluation, and the last
    files = sorted((run_dir / "videos").iterdir())
    assert [path.name for path in files] == [f"eval_step_{step:010d}.gif" for step in filmed]
    assert sorted(tensorboard_videos(run_dir)) == filmed
    for step, path in zip(filmed, files, strict=True):
        data = path.read_bytes()
        assert tensorboard_videos(run_dir)[step] == data  # the same GIF in both places
        frames, seconds = gif_frames_and_seconds(data)
        length = episode_zero_length(run_dir, step)
        assert 2 <= frames <= length + 1  # the first observation's frame, then one a step
        assert abs(seconds - (length + 1) / FPS) < 0.05  # played at the env's speed
        assert Image.open(path).size[0] == 256  # shrunk to eval.video.size (600x400 drawn)

    ok(rl_run(f"resume={run_dir}", "trainer.total_steps=8000", cwd=tmp_path))
    filmed += [6000, 8000]
    assert sorted(p.name for p in (run_dir / "videos").iterdir()) == [
        f"eval_step_{step:010d}.gif" for step in filmed
    ]
    assert sorted(tensorboard_videos(run_dir)) == filmed


def test_a_long_episode_keeps_every_nth_frame_and_plays_as_long(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["algo=td3", "env=pendulum", "algo.random_steps=100", "algo.learning_starts=100"]
    args += ["eval.episodes=1", "eval.every=400", "eval.video.every=1", "eval.video.max_frames=20"]
    args += [f"eval.video.fps={FPS}", "eval.video.size=64", "trainer.total_steps=400"]
    ok(rl_run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path))
    data = (run_dir / "videos" / "eval_step_0000000400.gif").read_bytes()
    frames, seconds = gif_frames_and_seconds(data)
    # 201 frames of a 200-step episode, every 11th kept (ceil(201 / 20)), each shown 11 steps
    assert frames == 19 and abs(seconds - 19 * 11 / FPS) < 0.05
    assert max(Image.open(io.BytesIO(data)).size) == 64


def test_no_video_unless_asked(finished_run: Path):
    assert not (finished_run / "videos").exists()
    assert tensorboard_videos(finished_run) == {}
