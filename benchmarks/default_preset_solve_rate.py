"""Solve rate and wall time of the default DQN preset on CartPole-v1 over several seeds.

Trains `rl-run algo=dqn env=cartpole` (the shipped defaults, 50k steps) once per
seed and reports, per seed, the first evaluation step at which the greedy return
reached 475 (CartPole-v1's solved threshold), the best and final evaluation
returns, and the training wall time; then the solve rate and median wall time.

    python benchmarks/default_preset_solve_rate.py            # seeds 0-4
    python benchmarks/default_preset_solve_rate.py --seeds 0 1 --eval-every 2500
"""

from __future__ import annotations

import argparse
import statistics

from common import train_ours

SOLVED = 475.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--eval-every", type=int, default=5000)
    parser.add_argument(
        "--stop-at", type=float, help="also pass trainer.stop_at_eval_return (e.g. 475)"
    )
    args = parser.parse_args()
    overrides = [f"eval.every={args.eval_every}"]
    if args.stop_at is not None:
        overrides.append(f"trainer.stop_at_eval_return={args.stop_at}")

    print(f"default preset (algo=dqn env=cartpole), overrides: {' '.join(overrides)}")
    print(f"{'seed':>4} {'solved at':>10} {'best':>7} {'final':>7} {'seconds':>8}")
    solved_seeds, seconds_list = 0, []
    for seed in args.seeds:
        run = train_ours([f"seed={seed}", *overrides])
        seconds, summary, evaluations = run.seconds, run.summary, run.evaluations
        solved_at = next(
            (row["step"] for row in evaluations if row["eval/return_mean"] >= SOLVED), None
        )
        solved_seeds += solved_at is not None
        seconds_list.append(seconds)
        print(
            f"{seed:>4} {solved_at if solved_at is not None else '-':>10} "
            f"{summary['best_eval_return_mean']:>7.1f} {summary['final_eval_return_mean']:>7.1f} "
            f"{seconds:>8.1f}",
            flush=True,
        )
    print(
        f"solved (greedy return >= {SOLVED:.0f}) in {solved_seeds}/{len(args.seeds)} seeds; "
        f"median wall time {statistics.median(seconds_list):.1f} s"
    )


if __name__ == "__main__":
    main()
