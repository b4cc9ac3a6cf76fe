"""The training loop: act, step, observe, update; evaluate, log and checkpoint on schedule."""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rl_runner.agents.base import Agent, Metrics, Transition
from rl_runner.checkpoint import Checkpointer
from rl_runner.envs.batch import BatchStep, VectorEnv, non_finite_output
from rl_runner.errors import Diverged, RunInterrupted, StorageError, TrainingFailed
from rl_runner.evaluator import Evaluator
from rl_runner.logger import RunLogger
from rl_runner.progress import FILE_ONLY, Progress
from rl_runner.rundir import (
    SUMMARY_FILE,
    json_number,
    read_run_id,
    read_summary,
    resume_command,
    write_json_atomic,
    write_run_id,
)
from rl_runner.seeding import global_rng_state, restore_global_rng_state
from rl_runner.stopping import (
    SWEEP_STOP_SIGNAL,
    ignore_stop_signals,
    raise_if_stopped_during_startup,
    stop_name,
)
from rl_runner.tracking import NoTracker, Tracker
from rl_runner.video import records

log = logging.getLogger("rl_runner")


@dataclass(frozen=True)
class Schedule:
    """When things happen, in environment steps."""

    total_steps: int
    log_every: int
    eval_every: int
    checkpoint_every: int
    stop_at_eval_return: float | None = None
    checkpoint_replay: bool = True  # the replay memory in the newest checkpoint
    video_every: int = 0  # a video of every n-th evaluation and the last (0: none)


def next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


class Trainer:
    def __init__(
        self,
        agent: Agent,
        envs: VectorEnv,
        evaluator: Evaluator,
        checkpointer: Checkpointer,
        schedule: Schedule,
        run_dir: Path,
        config_text: str,
        learning_rate_keys: tuple[str, ...] = ("algo.lr",),
        clips_gradients: bool = True,
        hparams: dict[str, Any] | None = None,
        tracker: Callable[[], Tracker] = NoTracker,
    ) -> None:
        """`config_text` is written to TensorBoard once, when the run starts fresh;
        `learning_rate_keys` (and algo.max_grad_norm where the algorithm `clips_gradients`)
        are named in the advice when training diverges."""
        self.agent = agent
        self.envs = envs
        self.evaluator = evaluator
        self.checkpointer = checkpointer
        self.schedule = schedule
        self.run_dir = run_dir
        self.config_text = config_text
        self.learning_rate_keys = learning_rate_keys
        self.clips_gradients = clips_gradients
        self.hparams = hparams or {}  # the settings, logged for HParams when the run ends
        self._make_tracker = tracker  # opened with the logs: a run that never starts has none
        self.tracker: Tracker = NoTracker()
        self.run_id = uuid.uuid4().hex  # a resume takes its checkpoint's
        self.logger: RunLogger  # opened by run(), after any restore
        # Loop state; everything here is in the checkpoint.
        self.env_steps = 0
        self.episodes = 0
        self.obs = np.zeros(0)  # the current observations, set by reset() or a restore
        self.masks: np.ndarray | None = None  # their legal actions, where the env says
        self.episode_returns = np.zeros(envs.num_envs)
        self.episode_lengths = np.zeros(envs.num_envs, dtype=np.int64)
        self.last_eval: float | None = None
        self.last_eval_step: int | None = None
        self.best_eval: float | None = None
        self.best_eval_step: int | None = None
        # a stop signal cut this step's evaluation short: the resume runs it first
        self.evaluation_pending = False
        self.last_log_step: int | None = None  # so a resume that only finishes logs once
        self.wall_seconds_before = 0.0
        # each quantity's value at its latest update, repeated in each log row
        self._latest_metrics: Metrics = {}
        self._best: dict[str, Any] | None = None  # what best.pt holds
        # Not saved: rebuilt from the above.
        self._resumed = False
        self._stop_signal: int | None = None

    # -- the loop -------------------------------------------------------------
    def run(self, on_logs_ready: Callable[[], None] | None = None) -> dict[str, Any]:
        """`_run`, then the envs closed however it ended (worker processes stopped)."""
        try:
            return self._run(on_logs_ready)
        finally:
            self.close()
            summary = read_summary(self.run_dir / SUMMARY_FILE) or {}
            self.tracker.finish(str(summary.get("status", "failed")))

    def close(self) -> None:
        """Close the training and evaluation envs (their worker processes stop)."""
        self.envs.close()
        self.evaluator.close()

    def _run(self, on_logs_ready: Callable[[], None] | None = None) -> dict[str, Any]:
        """Train to `total_steps` (or a stop signal); returns the summary.

        `on_logs_ready` runs once the logs are open (and, on resume, cut back to the
        checkpoint), before the first step: a resume records its changes there, so a
        resume that cannot even reopen its logs leaves the saved config as it was.
        Divergence and write failures end the run without a checkpoint after the
        fault (the newest one stays the last good one); summary.json says why.
        """
        started = time.perf_counter()
        raise_if_stopped_during_startup()  # before the first file of training is written
        if not self._resumed or read_run_id(self.run_dir) is None:
            write_run_id(self.run_dir, self.run_id)
        if self._resumed:
            self.checkpointer.remove_partial_writes()
            if self._best is not None:
                self.checkpointer.save_best(self._best)
        self.tracker = self._make_tracker()
        self.logger = RunLogger(
            self.run_dir,
            resume_step=self.env_steps if self._resumed else None,
            tracker=self.tracker,
        )
        if self._resumed:  # the logs are cut back to the checkpoint: what it may lack
            self.tracker.catch_up(self.env_steps)
        missing = self.logger.missing_on_resume
        if missing:
            log.warning(
                "%s %s missing: the log goes on from step %d; its rows before that are lost",
                " and ".join(missing),
                "was" if len(missing) == 1 else "were",
                self.env_steps,
            )
        if on_logs_ready is not None:
            try:
                on_logs_ready()
            except BaseException:
                self.logger.close()
                raise
        if not self._resumed:
            self.logger.log_text("config", self.config_text)
            self.obs, self.masks = self.envs.reset()
        progress = Progress(self.schedule.total_steps, self.env_steps)
        try:
            with self._stop_on_signals():
                self._train(progress, started)
                if self._stop_signal is None:
                    self._finish(started)
                # (again where this step's checkpoint predates its cut-short evaluation)
                stale = self.checkpointer.latest() != self._checkpoint_path()
                if self._stop_signal is not None and (stale or self.evaluation_pending):
                    self._checkpoint(started)
        except Diverged as error:
            log.error("%s", error, extra=FILE_ONLY)
            self._write_summary_if_possible(started, "diverged", str(error))
            raise
        except StorageError as error:
            stopped = StorageError(
                f"{error}; {self._kept()}; free space or fix permissions, then continue with: "
                f"{resume_command(self.run_dir)}"
            )
            log.error("%s", stopped, extra=FILE_ONLY)
            self._write_summary_if_possible(started, "failed", str(stopped))
            raise stopped from error
        except TrainingFailed as error:  # already one line that says what to do
            log.error("%s", error, extra=FILE_ONLY)
            self._write_summary_if_possible(started, "failed", str(error))
            raise
        except Exception as error:  # an env that fails mid-run, state it cannot snapshot
            failed = self._failure(error)
            log.error("%s\n%s", failed, traceback.format_exc(), extra=FILE_ONLY)
            self._write_summary_if_possible(started, "failed", str(failed))
            raise failed from error
        finally:
            progress.close()
            self.logger.close()
        if self._stop_signal is not None:
            self._write_summary(started, "interrupted")
            message = (
                f"{stop_name(self._stop_signal)} at step {self.env_steps}: checkpoint saved; "
                f"continue with: {resume_command(self.run_dir)}"
            )
            log.warning("%s", message, extra=FILE_ONLY)
            raise RunInterrupted(message, self._stop_signal)
        return self._write_summary(started, "completed")

    def _train(self, progress: Progress, started: float) -> None:
        """The loop, with logging, evaluation and checkpoints at their env-step multiples."""
        schedule = self.schedule
        next_log = next_multiple(self.env_steps, schedule.log_every)
        next_eval = next_multiple(self.env_steps, schedule.eval_every)
        next_checkpoint = next_multiple(self.env_steps, schedule.checkpoint_every)
        speed = _SpeedMeter(self.env_steps)
        if self.evaluation_pending and self._evaluate() is not None:
            self._checkpoint(started)  # this step's checkpoint, now with its evaluation
        while not self.done and self._stop_signal is None:
            self._step()
            if self.env_steps >= next_log:
                next_log = next_multiple(self.env_steps, schedule.log_every)
                self._log_training(speed.rate(self.env_steps))
                progress.advance(self.env_steps)
            if self.env_steps >= next_eval:
                next_eval = next_multiple(self.env_steps, schedule.eval_every)
                return_mean = self._evaluate()
                if return_mean is not None:
                    progress.evaluated(self.env_steps, return_mean, speed.last_rate)
            if self.env_steps >= next_checkpoint:
                next_checkpoint = next_multiple(self.env_steps, schedule.checkpoint_every)
                self._checkpoint(started)

    @property
    def reached_eval_target(self) -> bool:
        """The last evaluation reached `stop_at_eval_return` (derived, so a resume
        with a higher or no target carries on)."""
        target = self.schedule.stop_at_eval_return
        return target is not None and self.last_eval is not None and self.last_eval >= target

    @property
    def done(self) -> bool:
        """The run has all its steps, reached its evaluation target, or its agent
        converged (its own stopping rule)."""
        return (
            self.env_steps >= self.schedule.total_steps
            or self.reached_eval_target
            or self.agent.converged
        )

    def _step(self) -> None:
        obs = self.obs
        actions, extras = self.agent.act(obs, explore=True, masks=self.masks)
        step = self.envs.step(actions)
        self._check_env_output(step)
        self.agent.observe(
            Transition(
                obs,
                actions,
                step.rewards,
                step.final_obs,
                step.terminated,
                step.truncated,
                masks=self.masks,
                next_masks=step.final_masks,
                extras=extras,
            )
        )
        metrics = self.agent.update()
        if metrics:
            # per tag: a delayed actor's loss stays in the log between its updates
            self._latest_metrics.update(metrics)
        self.env_steps += len(actions)
        self.episode_returns += step.reported_rewards  # an Atari game's raw score
        self.episode_lengths += 1
        done = step.reported_ends  # an Atari game's end, not a life's
        if done.any():
            self._end_episodes(done)
        self.obs, self.masks = step.next_obs, step.next_masks

    def _end_episodes(self, done: np.ndarray) -> None:
        for index in np.flatnonzero(done):
            self.episodes += 1
            self.logger.log(
                {
                    "train/episode_return": self.episode_returns[index],
                    "train/episode_length": self.episode_lengths[index],
                },
                self.env_steps,
            )
        self.episode_returns[done] = 0.0
        self.episode_lengths[done] = 0

    def _finish(self, started: float) -> None:
        """The end of a run: a last evaluation and checkpoint unless this step had them."""
        if self.last_eval_step != self.env_steps and self._evaluate() is None:
            return  # a stop signal cut the last evaluation short: the resume finishes
        if self.last_log_step != self.env_steps:
            self._log_training(None)
        if self.checkpointer.latest() != self._checkpoint_path():
            self._checkpoint(started)
        results = {"hparam/final_return": self.last_eval, "hparam/best_return": self.best_eval}
        self.logger.log_hparams(
            self.hparams,
            {tag: float(value) for tag, value in results.items() if value is not None},
            self.env_steps,
        )

    # -- scheduled work ---------------------------------------------------------
    def _log_training(self, steps_per_second: float | None) -> None:
        metrics: dict[str, Any] = {**self._latest_metrics, **self.agent.diagnostics()}
        metrics["train/episodes"] = self.episodes
        if steps_per_second is not None:
            metrics["time/sps"] = steps_per_second
        values = self.logger.log(metrics, self.env_steps)
        self.last_log_step = self.env_steps
        self._check_finite(values)

    def _check_finite(self, values: Mapping[str, torch.Tensor | float]) -> None:
        """Stop at the first non-finite training quantity. Called where the values are
        read anyway (each log row) and before each evaluation and checkpoint, so a
        checkpoint is never written after the fault: the newest one is the last good one."""
        for tag, value in values.items():
            value = float(value)
            if not math.isfinite(value):
                good = self.checkpointer.latest()
                rates = " ".join(f"{key}=..." for key in self.learning_rate_keys)
                advice = (
                    f"the last good checkpoint is {good}; continue from it with a smaller "
                    f"learning rate: {resume_command(self.run_dir)} {rates}"
                    if good
                    else "no checkpoint was written; start again with a smaller "
                    f"{' / '.join(self.learning_rate_keys)}"
                    + (" or gradient clipping (algo.max_grad_norm)" if self.clips_gradients else "")
                )
                raise Diverged(
                    f"training diverged: {tag} is {value} at step {self.env_steps}; {advice}"
                )

    def _check_env_output(self, step: BatchStep) -> None:
        """Stop at a NaN or infinite reward or observation before the agent stores it:
        the env is the source (not the learning rate, as the loss check would say)."""
        problem = non_finite_output(step)
        if problem is not None:
            raise TrainingFailed(
                f"the env returned {problem} at step {self.env_steps}; the agent never saw "
                f"it; {self._kept()}; fix the env (its reward or observation), then continue "
                f"with: {resume_command(self.run_dir)}"
            )

    def _evaluate(self) -> float | None:
        """Evaluate, log, keep the best; returns the mean return, or None where a stop
        signal cut the evaluation short (nothing is logged; the resume evaluates)."""
        self._check_finite(self._latest_metrics)
        schedule = self.schedule
        final = self.env_steps >= schedule.total_steps
        result = self.evaluator.run(
            lambda obs, masks: self.agent.act(obs, explore=False, masks=masks).actions,
            stop=lambda: self._stop_signal is not None,
            record=records(self.env_steps, schedule.eval_every, schedule.video_every, final),
        )
        self.evaluation_pending = result is None
        if result is None:
            return None
        self.last_eval = result.return_mean
        self.last_eval_step = self.env_steps
        self.logger.log_evaluation(self.env_steps, result.metrics(), result.returns.tolist())
        if result.video is not None and self.evaluator.video is not None:
            # played at the env's speed: every stride-th frame is kept
            fps = self.evaluator.video.config.fps / result.video.stride
            self.logger.log_video(self.env_steps, result.video.frames, fps)
        if self.best_eval is None or result.return_mean > self.best_eval:
            self.best_eval = result.return_mean
            self.best_eval_step = self.env_steps
            # A copy: the live tensors change with the next update.
            self._best = copy.deepcopy(
                {
                    "agent": self.agent.state_dict(include_replay=False),
                    "env_steps": self.env_steps,
                    "eval_return_mean": result.return_mean,
                }
            )
            self.checkpointer.save_best(self._best)
        return result.return_mean

    def _checkpoint_path(self) -> Path:
        return self.checkpointer.directory / f"step_{self.env_steps:010d}.pt"

    def _checkpoint(self, started: float) -> None:
        self._check_finite(self._latest_metrics)
        # Logs first: a resume drops rows past the checkpoint, never misses rows before it.
        self.logger.flush()
        self.checkpointer.save(self.state_dict(time.perf_counter() - started), self.env_steps)
        self.tracker.send_through(self.env_steps)  # rows a resume keeps: never sent twice
        # The summary follows the checkpoints, so a killed run's summary is never stale.
        self._write_summary(started, "running")

    # -- state ----------------------------------------------------------------
    def state_dict(self, wall_seconds_this_session: float = 0.0) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            # best.pt's content as of this checkpoint: a resume rewrites best.pt from it, so
            # a best found in steps that a kill discarded does not outlive them
            "best": self._best,
            "agent": self.agent.state_dict(include_replay=self.schedule.checkpoint_replay),
            "envs": self.envs.state_dict(),
            "global_rng": global_rng_state(),
            "loop": {
                "env_steps": self.env_steps,
                "episodes": self.episodes,
                "obs": torch.from_numpy(np.array(self.obs)),
                "masks": None if self.masks is None else torch.from_numpy(self.masks.copy()),
                "episode_returns": torch.from_numpy(self.episode_returns.copy()),
                "episode_lengths": torch.from_numpy(self.episode_lengths.copy()),
                "last_eval": self.last_eval,
                "last_eval_step": self.last_eval_step,
                "best_eval": self.best_eval,
                "best_eval_step": self.best_eval_step,
                "evaluation_pending": self.evaluation_pending,
                "last_log_step": self.last_log_step,
                "wall_seconds": self.wall_seconds_before + wall_seconds_this_session,
                # the first log row after a resume repeats them, as a straight run would
                "latest_metrics": {
                    tag: float(value) for tag, value in self._latest_metrics.items()
                },
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        self.envs.load_state_dict(state["envs"])
        restore_global_rng_state(state["global_rng"])
        loop = state["loop"]
        self.env_steps = loop["env_steps"]
        self.episodes = loop["episodes"]
        self.obs = loop["obs"].numpy().copy()
        masks = loop.get("masks")
        self.masks = None if masks is None else masks.numpy().copy()
        self.episode_returns = loop["episode_returns"].numpy().copy()
        self.episode_lengths = loop["episode_lengths"].numpy().copy()
        self.last_eval = loop["last_eval"]
        self.last_eval_step = loop["last_eval_step"]
        self.best_eval = loop["best_eval"]
        self.best_eval_step = loop["best_eval_step"]
        self.evaluation_pending = loop.get("evaluation_pending", False)
        self.last_log_step = loop.get("last_log_step")
        self.wall_seconds_before = loop["wall_seconds"]
        self._latest_metrics = dict(loop.get("latest_metrics", {}))
        self._best = state.get("best")
        # a checkpoint from before identities: the run's own file, or the new one
        self.run_id = state.get("run_id") or read_run_id(self.run_dir) or self.run_id
        self._resumed = True

    def _write_summary(
        self, started: float, status: str, error: str | None = None
    ) -> dict[str, Any]:
        """summary.json: `status` is running (as of the newest checkpoint), completed,
        interrupted, diverged or failed."""
        wall_seconds = self.wall_seconds_before + time.perf_counter() - started
        summary: dict[str, Any] = {
            "status": status,
            "completed": status == "completed",
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            **{f"agent_{name}": value for name, value in self.agent.counters.items()},
            "final_eval_return_mean": self.last_eval,
            "best_eval_return_mean": self.best_eval,
            "best_eval_step": self.best_eval_step,
            "reached_eval_target": self.reached_eval_target,
            "converged": self.agent.converged,
            "wall_seconds": round(wall_seconds, 3),
        }
        if error is not None:
            summary["error"] = error
        write_json_atomic(
            self.run_dir / SUMMARY_FILE,
            {k: json_number(v) if isinstance(v, float) else v for k, v in summary.items()},
        )
        return summary

    def _kept(self) -> str:
        newest = self.checkpointer.latest()
        return f"the newest checkpoint {newest.name} is intact" if newest else "no checkpoint yet"

    def _failure(self, error: Exception) -> TrainingFailed:
        detail = " ".join(str(error).split())[:300]
        return TrainingFailed(
            f"training failed at step {self.env_steps}: {type(error).__name__}: {detail}; "
            f"{self._kept()}; the traceback is in train.log"
        )

    def _write_summary_if_possible(self, started: float, status: str, error: str) -> None:
        # The disk that failed the run may refuse this too; the error is reported anyway.
        with contextlib.suppress(StorageError):
            self._write_summary(started, status, error)

    # -- stopping cleanly ---------------------------------------------------------
    @contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM (or a sweep driver's stop) finish the current step, then
        checkpoint and stop. A second SIGINT interrupts at once; the driver's stop, which
        follows a Ctrl-C that reached this process too, never does."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be installed from the main thread
            return

        def request_stop(signum: int, _frame: object) -> None:
            if self._stop_signal is None:
                self._stop_signal = signum
            elif signum == signal.SIGINT:
                raise KeyboardInterrupt

        stop_signals = (signal.SIGINT, signal.SIGTERM, SWEEP_STOP_SIGNAL)
        previous = {sig: signal.signal(sig, request_stop) for sig in stop_signals}
        try:
            yield
        finally:
            if self._stop_signal is not None:
                # Stopping: the checkpoint is saved and the process ends. A late signal
                # (a sweep driver's stop that follows the terminal's Ctrl-C) must not
                # cut the summary and the job's row short, as the start-up's would.
                ignore_stop_signals()
            else:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)


class _SpeedMeter:
    """Environment steps per second between consecutive calls."""

    def __init__(self, step: int) -> None:
        self._step = step
        self._time = time.perf_counter()
        self.last_rate: float | None = None  # none until the first log window ends

    def rate(self, step: int) -> float:
        now = time.perf_counter()
        self.last_rate = (step - self._step) / max(now - self._time, 1e-9)
        self._step, self._time = step, now
        return self.last_rate
