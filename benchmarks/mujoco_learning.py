"""TD3 and SAC learning MuJoCo tasks with the shipped presets: evaluation return
against env steps, one run per (algorithm, env), several at once.

Each run is `rl-run algo=<a> env=<e> seed=<s>` with the preset's settings (TD3:
25k random steps; SAC: 5k; both 256-256, batch 256, 1M replay) except for its length,
evaluated every `--eval-every` steps over 10 episodes. `--time-limit` sends SIGTERM
to runs still going after that many seconds: they checkpoint and stop (resume them
later with the printed `resume=` command), and the table shows how far they got.
Prints the greedy return at each `--report` step and writes one `rl-plot` figure.

    python benchmarks/mujoco_learning.py --steps 200000                  # on this machine
    python benchmarks/mujoco_learning.py --device cuda --parallel 4 --time-limit 540
    python benchmarks/mujoco_learning.py --steps 20000 --envs pendulum algo.random_steps=1000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from rl_runner.rundir import EVALUATIONS_FILE, SUMMARY_FILE, read_jsonl

RL_RUN = [sys.executable, "-m", "rl_runner.train"]
RL_PLOT = [sys.executable, "-m", "rl_runner.tools.plot"]


def launch(algo: str, env: str, args: argparse.Namespace) -> tuple[str, Path, subprocess.Popen]:
    run_dir = args.out / f"{algo}_{env}_seed{args.seed}"
    command = [
        *RL_RUN,
        f"algo={algo}",
        f"env={env}",
        f"seed={args.seed}",
        f"device={args.device}",
        f"trainer.total_steps={args.steps}",
        "trainer.log_every=5000",
        f"eval.every={args.eval_every}",
        f"checkpoint.every={args.eval_every * 5}",
        f"hydra.run.dir={run_dir}",
        *args.overrides,
    ]
    log = open(args.out / f"{algo}_{env}.log", "w")  # noqa: SIM115 (closed with the process)
    return f"{algo} {env}", run_dir, subprocess.Popen(command, stdout=log, stderr=log)


def wait_all(running: list[tuple[str, Path, subprocess.Popen]], deadline: float | None) -> None:
    for _, _, process in running:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=remaining)
    for _, _, process in running:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # checkpoint and stop
    for _, _, process in running:
        process.wait()


def return_at(evaluations: list[dict], step: int) -> str:
    rows = [row for row in evaluations if row["step"] <= step]
    if not rows or rows[-1]["step"] < step:
        return "-"
    return f"{rows[-1]['eval/return_mean']:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algos", nargs="+", default=["td3", "sac"])
    parser.add_argument("--envs", nargs="+", default=["halfcheetah", "hopper"])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per batch")
    parser.add_argument("--report", type=int, nargs="+", default=[50_000, 100_000, 200_000])
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks/mujoco_learning"))
    parser.add_argument("overrides", nargs="*", help="more rl-run overrides for every run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(algo, env) for algo in args.algos for env in args.envs]
    finished = []
    for start in range(0, len(jobs), args.parallel):
        batch = [launch(algo, env, args) for algo, env in jobs[start : start + args.parallel]]
        deadline = None if args.time_limit is None else time.monotonic() + args.time_limit
        wait_all(batch, deadline)
        finished += batch
    header = "run                    steps  " + "  ".join(f"{s // 1000:>5}k" for s in args.report)
    print(header + "   best  wall s")
    for name, run_dir, _ in finished:
        if not (run_dir / SUMMARY_FILE).is_file():
            print(f"{name:20} did not run: see {args.out}/{name.replace(' ', '_')}.log")
            continue
        evaluations = read_jsonl(run_dir / EVALUATIONS_FILE)
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
        at = "  ".join(f"{return_at(evaluations, step):>6}" for step in args.report)
        best = summary["best_eval_return_mean"]
        print(
            f"{name:20} {summary['env_steps']:7}  {at}  {best:6.0f}  {summary['wall_seconds']:6.0f}"
        )
    figure = args.out / "learning_curves.png"
    plotted = [str(run_dir) for _, run_dir, _ in finished if (run_dir / SUMMARY_FILE).is_file()]
    subprocess.run([*RL_PLOT, *plotted, "-o", str(figure)], check=True)


if __name__ == "__main__":
    main()
