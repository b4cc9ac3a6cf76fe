"""The tutorials' agents (seed 003, 004): env steps to solve each task, over seeds 0-4,
and training speed.

Solved means: the maze's greedy path is the shortest one (6 moves, eval length 6);
CartPole's greedy return reaches 195 (and 475 for REINFORCE, which gets there); on the
small DQN's reshaped CartPole, every evaluation episode lasts 195 steps. Each
run uses the tutorial preset with frequent evaluations (every `eval_every` steps, which
is the resolution of the step counts) and stops at its budget. Steps/s is the whole
run's: env steps, updates and evaluations. Pixel DQN is timed only (a short run): the
tutorial does not claim it solves CartPole, and it does not within this budget.

    python benchmarks/tutorial_solve_steps.py                 # about 10 minutes
    python benchmarks/tutorial_solve_steps.py --seeds 0 1 --tasks q_learning_maze
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from common import train_ours


@dataclass(frozen=True)
class Task:
    preset: str
    budget: int
    eval_every: int
    solved: dict[str, Callable[[dict], bool]]  # criterion name -> test on an eval row


MAZE = {"shortest path": lambda row: row["eval/length_mean"] == 6}
TASKS = {
    "q_learning_maze": Task("q_learning_maze_tutorial", 3000, 50, MAZE),
    "sarsa_maze": Task("sarsa_maze_tutorial", 3000, 50, MAZE),
    "tabular_pg_maze": Task("tabular_pg_maze_tutorial", 100_000, 100, MAZE),
    "q_learning_cartpole": Task(
        "q_learning_cartpole_tutorial",
        300_000,
        2500,
        {"return >= 195": lambda row: row["eval/return_mean"] >= 195},
    ),
    "reinforce_cartpole": Task(
        "reinforce_cartpole_tutorial",
        300_000,
        2500,
        {
            "return >= 195": lambda row: row["eval/return_mean"] >= 195,
            "return >= 475": lambda row: row["eval/return_mean"] >= 475,
        },
    ),
    "dqn_small_cartpole": Task(
        "dqn_cartpole_small_tutorial",
        100_000,
        1000,
        {"10/10 episodes >= 195": lambda row: row["eval/return_mean"] >= 1.0},
    ),
    "dqn_pixels": Task("dqn_pixels_tutorial", 1500, 1500, {}),
}


def first_step(evaluations: list[dict], solved: Callable[[dict], bool]) -> int | None:
    return next((row["step"] for row in evaluations if solved(row)), None)


def run(task: Task, seed: int) -> tuple[float, dict[str, int | None]]:
    overrides = [
        f"+experiment={task.preset}",
        f"seed={seed}",
        f"trainer.total_steps={task.budget}",
        f"eval.every={task.eval_every}",
        f"trainer.log_every={task.eval_every}",
        f"checkpoint.every={task.budget}",
        "trainer.stop_at_eval_return=null",
    ]
    ours = train_ours(overrides)
    steps_per_second = ours.summary["env_steps"] / ours.seconds
    return steps_per_second, {
        name: first_step(ours.evaluations, test) for name, test in task.solved.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    print(
        "task                  criterion        steps/s  "
        + "  ".join(f"seed {s:>3}" for s in args.seeds)
        + "  solved  median"
    )
    for name in args.tasks:
        task = TASKS[name]
        seeds = args.seeds if task.solved else args.seeds[:1]
        results = [run(task, seed) for seed in seeds]
        speed = statistics.median(rate for rate, _ in results)
        for criterion in task.solved or {"(timed only)": None}:
            steps = [found.get(criterion) for _, found in results]
            cells = "  ".join(f"{'-' if s is None else s:>8}" for s in steps)
            solved = [s for s in steps if s is not None]
            median = statistics.median(solved) if len(solved) == len(steps) and solved else "-"
            count = f"{len(solved)}/{len(steps)}"
            print(f"{name:21} {criterion:15} {speed:8.0f}  {cells}  {count}  {median}", flush=True)


if __name__ == "__main__":
    main()
