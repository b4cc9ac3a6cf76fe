"""Training environments in subprocesses, one worker process per env, stepped in parallel.

The same protocol as the in-process `EnvBatch` (see `batch.py`): same-step autoreset
inside the worker, and each env's state captured by the worker with the same snapshot
rules, handed over the pipe, so a checkpoint of async envs is the one sync envs write.

No worker outlives its run: a worker ignores the terminal's Ctrl-C and the SIGTERM a
scheduler sends the whole process group (the trainer handles those, checkpoints
through its workers, then closes them), exits when its pipe closes, and is killed by
the kernel the moment its parent dies, SIGKILL included (Linux's parent-death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

import gymnasium as gym
import numpy as np

from rl_runner.envs.batch import (
    BatchStep,
    action_masks,
    autoreset_step,
    batch_step,
    check_snapshot_count,
    seeded_reset,
)
from rl_runner.envs.factory import EnvFactory
from rl_runner.envs.snapshot import env_state, restore_env_state, skipped_state

_PR_SET_PDEATHSIG = 1
CLOSE_TIMEOUT_SECONDS = 5.0


class WorkerError(RuntimeError):
    """An env failed inside its worker; the message names the env and the error."""


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only; other
    systems rely on the pipe closing)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _serve(env: gym.Env, command: str, argument: Any) -> Any:
    if command == "step":
        return autoreset_step(env, argument)
    if command == "reset":
        return seeded_reset(env, argument)
    if command == "state":
        return env_state(env, exact=argument)
    if command == "restore":
        restore_env_state(env, argument)
        return None
    if command == "spaces":
        return env.observation_space, env.action_space
    raise ValueError(f"unknown worker command {command!r}")


def _worker(factory: EnvFactory, connection: Connection, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    env = factory()
    try:
        while True:
            try:
                command, argument = connection.recv()
            except EOFError:  # the parent closed its end or died
                return
            if command == "close":
                return
            try:
                connection.send(("ok", _serve(env, command, argument)))
            except Exception as error:  # any env code: report it to the trainer
                connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        env.close()


class SubprocessEnvBatch:
    """`num_envs` copies of one environment, each in its own worker process; env k is
    seeded with seed + k through its first reset, as in `EnvBatch`."""

    def __init__(self, factory: EnvFactory, num_envs: int, seed: int, exact: bool = True) -> None:
        self.seed = seed
        self.exact = exact
        # fork: a worker starts in milliseconds, without importing torch and Gymnasium again
        context = multiprocessing.get_context("fork")
        self._connections: list[Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        try:
            for index in range(num_envs):
                ours, theirs = context.Pipe()
                process = context.Process(
                    target=_worker,
                    args=(factory, theirs, os.getpid()),
                    name=f"rl-runner-env-{index}",
                    daemon=True,
                )
                process.start()
                theirs.close()
                self._connections.append(ours)
                self._processes.append(process)
            self.single_observation_space, self.single_action_space = self._call("spaces", [None])[
                0
            ]
        except BaseException:
            self.close()
            raise

    @property
    def num_envs(self) -> int:
        return len(self._connections)

    def _call(self, command: str, arguments: list[Any]) -> list[Any]:
        """Send one command to each of the first len(arguments) workers, then collect
        their answers (the workers run in parallel meanwhile)."""
        connections = self._connections[: len(arguments)]
        for connection, argument in zip(connections, arguments, strict=True):
            connection.send((command, argument))
        answers, failures = [], []
        for index, connection in enumerate(connections):
            try:
                status, value = connection.recv()
            except EOFError:
                status, value = "error", "the worker process died"
            if status == "error":
                failures.append(f"env {index}: {value}")
            answers.append(value)
        if failures:
            raise WorkerError(f"{command} failed in a worker ({'; '.join(failures)})")
        return answers

    def reset(self) -> tuple[np.ndarray, np.ndarray | None]:
        first = self._call("reset", [self.seed + index for index in range(self.num_envs)])
        return np.stack([obs for obs, _ in first]), action_masks([info for _, info in first])

    def step(self, actions: np.ndarray) -> BatchStep:
        return batch_step(self._call("step", list(actions)))

    def state_dict(self) -> list[Any]:
        return self._call("state", [self.exact] * self.num_envs)

    def load_state_dict(self, state: list[Any]) -> None:
        check_snapshot_count(state, self.num_envs)
        if skipped_state(state):
            self.reset()  # what the snapshot lacks takes the values a reset gives it
        self._call("restore", state)

    def close(self) -> None:
        """Stop every worker (at once where it does not answer); safe to call twice."""
        for connection in self._connections:
            with contextlib.suppress(OSError):  # a worker already gone
                connection.send(("close", None))
        for process in self._processes:
            process.join(CLOSE_TIMEOUT_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        for connection in self._connections:
            connection.close()
        self._connections, self._processes = [], []
