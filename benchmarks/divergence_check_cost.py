"""What the divergence check costs a run: the check itself, timed on the values it
reads (a training row's 0-d tensors), times the number of checks in a default run,
against that run's measured training time.

    python benchmarks/divergence_check_cost.py
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import torch

from rl_runner.trainer import Trainer

DEFAULT_STEPS, LOG_EVERY, EVAL_EVERY, CHECKPOINT_EVERY = 50_000, 1_000, 5_000, 10_000
DEFAULT_RUN_SECONDS = 28.7  # median wall time of the default preset (README)
CALLS = 100_000


def main() -> None:
    # A training row as the trainer logs it: the update's 0-d tensors, then floats.
    metrics = {
        "loss/td": torch.tensor(0.25),
        "train/q_mean": torch.tensor(3.5),
        "train/epsilon": 0.04,
        "train/learning_rate": 2.3e-3,
        "train/episodes": 812.0,
        "time/sps": 1850.0,
    }
    # The check needs only the checkpointer (for its error message); no env or agent.
    trainer = SimpleNamespace(checkpointer=None, env_steps=0)
    started = time.perf_counter()
    for _ in range(CALLS):
        Trainer._check_finite(trainer, metrics)  # type: ignore[arg-type]
    per_call = (time.perf_counter() - started) / CALLS
    checks = (
        DEFAULT_STEPS // LOG_EVERY + DEFAULT_STEPS // EVAL_EVERY + DEFAULT_STEPS // CHECKPOINT_EVERY
    )
    total = per_call * checks
    print(f"one check: {per_call * 1e6:.2f} us; {checks} checks in a default 50k-step run")
    print(
        f"cost per run: {total * 1e3:.3f} ms of {DEFAULT_RUN_SECONDS} s "
        f"({100 * total / DEFAULT_RUN_SECONDS:.5f}% of the run)"
    )


if __name__ == "__main__":
    main()
