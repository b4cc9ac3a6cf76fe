"""`rl-render`: watch a trained agent. Plays greedy episodes from a run's checkpoint and
writes each as an animated GIF (or MP4) into the run directory's `renders/` folder.

    rl-render outputs/2026-11-26/10-00-00_q_learning_maze_seed0       # best.pt, 1 episode
    rl-render RUN_DIR --episodes 3 --checkpoint latest --format mp4

Episode k resets with the run's evaluation seed + k, the seeds its evaluations used, so
the first episode is the one `evaluations.jsonl` scored first. Each episode's return and
length are printed. Works for every algorithm and every env that renders `rgb_array`
(MuJoCo needs a headless OpenGL backend: MUJOCO_GL=egl, the default here, with the
libegl1 package, or MUJOCO_GL=osmesa with libosmesa6). A GIF merges identical
consecutive frames (their durations add); each frame is captioned with its step and
the return so far, which keeps them distinct: one frame per step, plus the first.
On a terminal a progress bar follows each episode's steps. Ctrl-C or SIGTERM stops it:
the episodes already written stay, the one in progress is not written (exit 130/143).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl_runner.errors import ConfigError
from rl_runner.progress import Progress
from rl_runner.rundir import (
    SAVED_CONFIG,
)
from rl_runner.tools.cli import OneLineParser, Stopped, stop_on_signals, tool_description
from rl_runner.tools.restore import check_owner, load_chosen, restored_agent
from rl_runner.video import RENDER_MODE, gif_bytes, render_failure

if TYPE_CHECKING:
    from rl_runner.config.settings import Settings

RENDERS_DIR = "renders"
# One episode is one file: a bound keeps a typo (--episodes 7600) from filling the disk.
MAX_EPISODES = 100
CAPTION_PIXELS = 16
MP4_HINT = "MP4 needs imageio with its ffmpeg plugin: pip install 'rl-runner[video]'"


class Player:
    """A run's agent, restored from a checkpoint, acting greedily in a rendering env."""

    def __init__(self, settings: Settings, state: dict[str, Any], checkpoint: Path) -> None:
        # Imported here: `rl-render --help` and its argument errors need none of this.
        from rl_runner.build import configure_torch
        from rl_runner.envs.factory import configured_env_factory, render_headless
        from rl_runner.evaluator import episode_step_cap

        configure_torch(1)
        render_headless()
        self.env = configured_env_factory(settings.env, render_mode=RENDER_MODE)()
        self.max_episode_steps = episode_step_cap(self.env, settings.run.eval.max_episode_steps)
        self.seed = settings.eval_seed
        self.agent = restored_agent(settings, state, checkpoint, self.env)

    def play(self, episode: int, progress: Progress) -> tuple[list[np.ndarray], float, int]:
        """Frames (the first observation's, then one per step, each captioned with its
        step and the return so far), the return and the length; `progress` follows the
        steps."""
        from rl_runner.envs.batch import action_masks

        obs, info = self.env.reset(seed=self.seed + episode)
        frames = [captioned(self._frame(), f"episode {episode}  step 0")]
        total, length, done = 0.0, 0, False
        while not done:
            masks = action_masks([info])  # None where the env reports no legal moves
            action = self.agent.act(np.asarray(obs)[None], explore=False, masks=masks).actions[0]
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            length += 1
            progress.advance(length)
            caption = f"episode {episode}  step {length}  return {total:.2f}"
            frames.append(captioned(self._frame(), caption))
            done = terminated or truncated or length >= self.max_episode_steps
        return frames, total, length

    def _frame(self) -> np.ndarray:
        frame = self.env.render()
        if not isinstance(frame, np.ndarray):
            raise ConfigError(f"{self.env.spec.id if self.env.spec else self.env} renders no image")
        return frame

    def close(self) -> None:
        self.env.close()


def captioned(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame under a white band with `text`. Besides telling the viewer where they
    are, it keeps every frame distinct: a GIF merges identical consecutive frames, and
    two steps can draw the same picture (a cart that moved less than a pixel)."""
    from PIL import Image, ImageDraw

    band = np.full((CAPTION_PIXELS, frame.shape[1], 3), 255, dtype=np.uint8)
    image = Image.fromarray(np.concatenate([band, frame[..., :3]], axis=0))
    ImageDraw.Draw(image).text((4, 3), text, fill=(0, 0, 0))
    return np.asarray(image)


def write_gif(frames: list[np.ndarray], path: Path, fps: float) -> None:
    path.write_bytes(gif_bytes(frames, fps))


def write_mp4(frames: list[np.ndarray], path: Path, fps: float) -> None:
    try:
        import imageio.v3 as iio
    except ImportError as error:
        raise ConfigError(MP4_HINT) from error
    # Sizes padded (edge pixels repeated) to multiples of the codec's 16-pixel blocks,
    # which ffmpeg would otherwise resize to, with a warning.
    height, width = frames[0].shape[:2]
    padding = ((0, -height % 16), (0, -width % 16), (0, 0))
    try:
        video = np.stack([np.pad(f, padding, mode="edge") for f in frames])
        iio.imwrite(path, video, extension=".mp4", fps=fps)
    except (ImportError, RuntimeError) as error:  # the ffmpeg plugin missing or failing
        raise ConfigError(f"{MP4_HINT} ({error})") from error


WRITERS: dict[str, Callable[[list[np.ndarray], Path, float], None]] = {
    "gif": write_gif,
    "mp4": write_mp4,
}


def write_atomic(frames: list[np.ndarray], path: Path, file_format: str, fps: float) -> None:
    """Written beside, then renamed: a failed write never replaces a good file."""
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")  # ffmpeg reads the suffix
    try:
        WRITERS[file_format](frames, partial, fps)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def render(run_dir: Path, args: argparse.Namespace, written: list[Path]) -> None:
    """Play and write the episodes, printing a line for each; each file joins `written`
    once it is complete, so that a stop can say what it kept."""
    from rl_runner.config.resume import load_saved_config

    if not (run_dir / SAVED_CONFIG).is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {SAVED_CONFIG})")
    _, settings = load_saved_config(run_dir, context="")
    checkpoint, state = load_chosen(run_dir, args.checkpoint)
    check_owner(run_dir, settings, checkpoint)
    player = Player(settings, state, checkpoint)
    try:
        output_dir = run_dir / RENDERS_DIR
        output_dir.mkdir(exist_ok=True)
        for episode in range(args.episodes):
            frames, total, length = play_episode(player, episode)
            path = output_dir / f"{checkpoint.stem}_episode{episode}.{args.format}"
            write_atomic(frames, path, args.format, args.fps)
            written.append(path)
            # flushed: a caller reading a pipe sees each episode as it is written
            print(f"episode {episode}: return {total:.2f}, length {length}, {path}", flush=True)
    finally:
        player.close()


def play_episode(player: Player, episode: int) -> tuple[list[np.ndarray], float, int]:
    # The bar goes to stderr: shown where that is a terminal, whatever stdout is.
    progress = Progress(player.max_episode_steps, 0, interactive=stderr_is_terminal())
    try:
        return player.play(episode, progress)
    except ConfigError:
        raise
    except Exception as error:  # the env's renderer: no OpenGL, a missing package
        raise ConfigError(
            f"cannot play or render the run's env ({render_failure(error)})"
        ) from error
    finally:
        progress.close()


def stderr_is_terminal() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()  # stderr may be closed (2>&-)


def kept_files(written: list[Path]) -> str:
    """What a stop leaves, for its one line."""
    if not written:
        return "no episode was written"
    if len(written) == 1:
        return f"kept the episode already written ({written[0].name} in {written[0].parent})"
    names = f"{written[0].name} to {written[-1].name}"
    return f"kept the {len(written)} episodes already written ({names} in {written[0].parent})"


def _episodes(text: str) -> int:
    value = int(text) if text.strip().lstrip("+-").isdigit() else None
    if value is None or not 1 <= value <= MAX_EPISODES:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_EPISODES}, got {text}")
    return value


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    # GIF frame times are whole hundredths of a second
    if not 0.1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 0.1 and 100, got {text}")
    return value


def main(arguments: list[str] | None = None) -> int:
    stop_on_signals()  # first: before pygame's SDL would take SIGTERM over
    written: list[Path] = []
    try:
        return _main(arguments, written)
    except Stopped as stop:
        print(stop.line("rl-render", kept_files(written)), file=sys.stderr)
        return stop.exit_code


def _main(arguments: list[str] | None, written: list[Path]) -> int:
    parser = OneLineParser(prog="rl-render", description=tool_description(__doc__))
    parser.add_argument("run_dir", type=Path, help="a run directory")
    parser.add_argument(
        "--checkpoint",
        default="best",
        help="best (default: best.pt, else the newest), latest, or a checkpoint file",
    )
    parser.add_argument(
        "--episodes",
        type=_episodes,
        default=1,
        help=f"episodes to play, one file each (1-{MAX_EPISODES}, default 1)",
    )
    parser.add_argument("--format", choices=sorted(WRITERS), default="gif")
    parser.add_argument("--fps", type=_fps, default=30.0, help="frames per second (0.1-100)")
    args = parser.parse_args(arguments)
    try:
        render(args.run_dir, args, written)
    except ConfigError as error:
        print(f"rl-render: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"rl-render: error: cannot write {where}{error.strerror or error}", file=sys.stderr)
        return 4
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
