"""Wall time of a 4-seed sweep of short DQN runs: one job after another (Hydra's basic
launcher) against joblib's local processes (hydra/launcher=joblib, n_jobs=2) and a
local Ray instance (hydra/launcher=ray, which Ray starts and stops inside each sweep:
its start-up is part of the figure), from one invocation, alternating, so machine
noise hits all alike. Each job uses one torch thread (`threads=1`, the default) and
holds one Ray CPU, so two jobs fill a 2-core machine.

    python benchmarks/sweep_wall_time.py                 # 2 rounds
    python benchmarks/sweep_wall_time.py --steps 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RL_RUN = [sys.executable, "-m", "rl_runner.train"]
LAUNCHERS = {
    "serial": [],
    "joblib (n_jobs=2)": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "ray (local, 2 CPUs)": ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2"],
}


def sweep_seconds(launcher: list[str], steps: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        command = [*RL_RUN, "-m", "seed=0,1,2,3", f"trainer.total_steps={steps}"]
        command += [f"eval.every={steps}", *launcher, f"hydra.sweep.dir={Path(directory) / 's'}"]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10_000, help="env steps per job")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {name: [] for name in LAUNCHERS}
    for round_index in range(args.rounds):
        for name, launcher in LAUNCHERS.items():
            seconds[name].append(sweep_seconds(launcher, args.steps))
            print(f"round {round_index}: {name:19} {seconds[name][-1]:6.1f} s", flush=True)
    serial = statistics.median(seconds["serial"])
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:19} median {median:6.1f} s   {median / serial:.2f}x serial")


if __name__ == "__main__":
    main()
