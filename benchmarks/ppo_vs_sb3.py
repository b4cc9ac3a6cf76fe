"""Our PPO against Stable-Baselines3's and SBX's (JAX): whole-run steps/s at identical settings,
and the wall time of 8 MuJoCo envs stepped in this process (sync) or in 8 workers (async).

Settings (one torch thread, CPU, no evaluation while timing):
- cartpole: RL Zoo's tuned CartPole-v1 preset (8 envs, 32 steps, batch 256, 20
  epochs, lr 1e-3 and clip 0.2 annealed, gamma 0.98, GAE 0.8): `rl-run algo=ppo
  env=cartpole`'s own settings.
- halfcheetah: CleanRL's ppo_continuous_action.py on HalfCheetah-v5 (1 env, 2048
  steps, 10 epochs of minibatches of 64, lr 3e-4 annealed, 64-64 tanh, observations
  and rewards normalised and clipped at 10): `rl-run algo=ppo env=halfcheetah`'s.
Runs alternate (ours, SB3, SBX, ours, ...) so machine noise hits all alike; SBX's
whole run includes its JIT compile.

    python benchmarks/ppo_vs_sb3.py                       # 3 rounds, both tasks, then sync/async
    python benchmarks/ppo_vs_sb3.py --tasks cartpole --rounds 1 --no-vectorization
"""

from __future__ import annotations

import argparse
import time

import torch
from common import installed_peers, peer_algorithm, print_median_ratios, train_ours

TASKS = {
    "cartpole": {"steps": 50_000, "env": "cartpole", "id": "CartPole-v1"},
    "halfcheetah": {"steps": 20_480, "env": "halfcheetah", "id": "HalfCheetah-v5"},
}


def our_overrides(
    task: str, steps: int, extra: tuple[str, ...] = (), device: str = "cpu"
) -> list[str]:
    return [
        "algo=ppo",
        f"env={TASKS[task]['env']}",
        "seed=0",
        "threads=1",
        f"device={device}",
        f"trainer.total_steps={steps}",
        "trainer.log_every=1024",
        f"eval.every={steps}",  # one evaluation, after the timed windows
        "eval.episodes=1",
        f"checkpoint.every={steps}",
        *extra,
    ]


def run_ours(task: str, steps: int, extra: tuple[str, ...] = (), device: str = "cpu") -> float:
    return train_ours(our_overrides(task, steps, extra, device)).steps_per_second_after(0)


def run_peer(peer: str, task: str, steps: int, device: str = "cpu") -> float:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    def linear(start: float):  # SB3 schedules take the remaining progress (1 -> 0)
        return lambda remaining: remaining * start

    if task == "cartpole":
        env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
        settings = {
            "n_steps": 32,
            "batch_size": 256,
            "gae_lambda": 0.8,
            "gamma": 0.98,
            "n_epochs": 20,
            "learning_rate": linear(1e-3),
            "clip_range": linear(0.2),
        }
    else:
        env = VecNormalize(make_vec_env(TASKS[task]["id"], n_envs=1, seed=0), clip_obs=10.0)
        settings = {
            "n_steps": 2048,
            "batch_size": 64,
            "n_epochs": 10,
            "learning_rate": linear(3e-4),
            "gae_lambda": 0.95,
            "clip_range_vf": 0.2,
        }
    model = peer_algorithm(peer, "PPO")(
        "MlpPolicy", env, seed=0, device=device, verbose=0, **settings
    )
    started = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - started)


def compare(task: str, rounds: int, peers: list[str]) -> None:
    steps = TASKS[task]["steps"]
    ratios: dict[str, list[float]] = {peer: [] for peer in peers}
    for round_index in range(rounds):
        ours = run_ours(task, steps)
        theirs = [run_peer(peer, task, steps) for peer in peers]
        for peer, speed in zip(peers, theirs, strict=True):
            ratios[peer].append(ours / speed)
        row = [f"{speed:9.0f}" for speed in [ours, *theirs]]
        row += [f"{ratios[peer][-1]:8.2f}x" for peer in peers]
        print(f"{task:11}  {round_index:5}  " + "  ".join(row), flush=True)
    print_median_ratios(f"{task} ({steps} steps per run)", ratios)


def vectorization(rounds: int) -> None:
    """8 HalfCheetah envs, 8 x 256 steps per rollout, sync against async."""
    steps = 8 * 256 * 5
    for round_index in range(rounds):
        rates = {}
        for mode in ("sync", "async"):
            extra = ("env.num_envs=8", f"env.vectorization_mode={mode}", "algo.n_steps=256")
            rates[mode] = run_ours("halfcheetah", steps, extra)
        speed_up = rates["async"] / rates["sync"]
        print(
            f"8 envs  {round_index:5}  sync {rates['sync']:7.0f} steps/s  "
            f"async {rates['async']:7.0f} steps/s  async/sync {speed_up:.2f}x",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-vectorization", action="store_true", help="skip sync vs async")
    parser.add_argument("--peers", nargs="+", default=["sb3", "sbx"], choices=["sb3", "sbx"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    peers = installed_peers(args.peers)
    columns = ["ours sps", *(f"{peer} sps" for peer in peers), *(f"/{peer}" for peer in peers)]
    print("task         round  " + "  ".join(f"{column:>9}" for column in columns))
    for task in args.tasks:
        compare(task, args.rounds, peers)
    if not args.no_vectorization:
        vectorization(args.rounds)


if __name__ == "__main__":
    main()
