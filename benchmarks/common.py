"""Helpers for the benchmarks: run our trainer in-process and evaluate any policy."""

from __future__ import annotations

import importlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rl_runner.build import build_trainer
from rl_runner.config.compose import compose_settings
from rl_runner.rundir import EVALUATIONS_FILE, METRICS_FILE, read_jsonl


@dataclass
class OurRun:
    seconds: float  # training wall time
    summary: dict
    agent: Any
    evaluations: list[dict]  # evaluations.jsonl rows
    metrics: list[dict]  # metrics.jsonl rows (time/sps per log window)

    def steps_per_second_after(self, warm_up: int) -> float:
        """Env steps per second over the log windows past `warm_up` steps (equal
        windows: the harmonic mean of their rates is total steps over total time)."""
        rates = [
            row["time/sps"] for row in self.metrics if "time/sps" in row and row["step"] > warm_up
        ]
        return len(rates) / sum(1.0 / rate for rate in rates)


def train_ours(overrides: list[str]) -> OurRun:
    """Train with `rl-run`'s config and trainer, in a temporary run directory."""
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(compose_settings(overrides), Path(run_dir), checkpoint=None)
        started = time.perf_counter()
        summary = trainer.run()
        seconds = time.perf_counter() - started
        evaluations = read_jsonl(Path(run_dir) / EVALUATIONS_FILE)
        metrics = read_jsonl(Path(run_dir) / METRICS_FILE)
    return OurRun(seconds, summary, trainer.agent, evaluations, metrics)


def evaluate(policy: Callable[[np.ndarray], int], env_id: str, seeds: list[int]) -> float:
    """Mean return of `policy` over one episode per seed (each reset with its seed)."""
    env = gym.make(env_id)
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


# The peers a benchmark runs beside ours: SB3 (torch) and SBX (JAX), which shares SB3's
# API. SBX is optional (`pip install -e '.[bench-sbx]'`): without it, it is left out.
PEER_MODULES = {"sb3": "stable_baselines3", "sbx": "sbx"}
PEER_EXTRAS = {"sb3": "bench", "sbx": "bench-sbx"}


def peer_algorithm(peer: str, name: str) -> Any:
    """An algorithm's class from a peer library, SBX's JAX held to one CPU thread (as
    torch is): its XLA flags must be set before JAX is first imported."""
    if peer == "sbx":
        os.environ.setdefault(
            "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    return getattr(importlib.import_module(PEER_MODULES[peer]), name)


def installed_peers(asked: list[str]) -> list[str]:
    """The asked peers whose library imports; a missing one is said and skipped."""
    found = []
    for peer in asked:
        try:
            importlib.import_module(PEER_MODULES[peer])
        except ImportError:
            print(f"{peer}: not installed, left out (pip install -e '.[{PEER_EXTRAS[peer]}]')")
            continue
        found.append(peer)
    return found


def print_median_ratios(label: str, ratios: dict[str, list[float]], ours: str = "ours") -> None:
    """One line per peer: the median (and minimum) of our speed over its, across rounds."""
    for peer, values in ratios.items():
        print(
            f"{label}: median speed ratio {statistics.median(values):.2f}x "
            f"(min {min(values):.2f}x) {ours} over {peer}"
        )
