"""Our TD3 and SAC against Stable-Baselines3's and SBX's (JAX) on HalfCheetah-v5: steps/s.

Identical settings for all: 256-256 MLPs, batch 256, one gradient step per env step,
TD3's policy delay 2, 1,000 uniformly random steps before learning starts, Adam 3e-4,
tau 0.005, gamma 0.99, Gaussian exploration noise 0.1 (TD3), learnt entropy
temperature (SAC), one CPU thread, no evaluation while timing. Runs alternate
(ours, SB3, SBX, ours, ...) so machine noise hits all alike; steps/s is measured past
a warm-up (the random phase, the first updates, SBX's JIT compile). `--precisions` adds our run at
each `algo.matmul_precision` (auto picks medium where the CPU has bfloat16
instructions: bfloat16 products with AMX; on AMD Zen 5, which has AVX-512 BF16 but no
AMX, medium measured exact float32 products from oneDNN's kernels, faster than MKL's).

    python benchmarks/actor_critic_vs_sb3.py                    # 3 rounds, both algorithms
    python benchmarks/actor_critic_vs_sb3.py --algos td3 --rounds 1 --precisions auto highest
"""

from __future__ import annotations

import argparse
import time

import torch
from common import installed_peers, peer_algorithm, print_median_ratios, train_ours

ENV_ID = "HalfCheetah-v5"
RANDOM_STEPS = 1000
SHARED = {"lr": 3e-4, "batch_size": 256, "tau": 0.005, "gamma": 0.99, "buffer_size": 100_000}


def our_overrides(algo: str, steps: int, precision: str, device: str = "cpu") -> list[str]:
    overrides = [
        f"algo={algo}",
        "env=halfcheetah",
        "seed=0",
        "threads=1",
        f"device={device}",
        f"trainer.total_steps={steps}",
        "trainer.log_every=500",
        f"eval.every={steps}",  # one evaluation, after the timed windows
        "eval.episodes=1",
        f"checkpoint.every={steps}",
        f"algo.random_steps={RANDOM_STEPS}",
        f"algo.learning_starts={RANDOM_STEPS}",
        f"algo.actor_lr={SHARED['lr']}",
        f"algo.critic_lr={SHARED['lr']}",
        f"algo.tau={SHARED['tau']}",
        f"algo.gamma={SHARED['gamma']}",
        "algo.train_freq=1",
        "algo.gradient_steps=1",
        f"algo.matmul_precision={precision}",
        "network.hidden_sizes=[256,256]",
        f"buffer.capacity={SHARED['buffer_size']}",
        f"buffer.batch_size={SHARED['batch_size']}",
    ]
    if algo == "td3":
        overrides += ["algo.policy_delay=2", "algo.exploration_noise=0.1"]
    return overrides


def run_ours(algo: str, steps: int, warm_up: int, precision: str, device: str = "cpu") -> float:
    return train_ours(our_overrides(algo, steps, precision, device)).steps_per_second_after(warm_up)


def run_peer(peer: str, algo: str, steps: int, warm_up: int, device: str = "cpu") -> float:
    import gymnasium as gym
    import numpy as np
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    class Timer(BaseCallback):
        started = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps == warm_up:
                self.started = time.perf_counter()
            return True

    env = gym.make(ENV_ID)
    common = {
        "learning_rate": SHARED["lr"],
        "batch_size": SHARED["batch_size"],
        "tau": SHARED["tau"],
        "gamma": SHARED["gamma"],
        "buffer_size": SHARED["buffer_size"],
        "learning_starts": RANDOM_STEPS,
        "train_freq": 1,
        "gradient_steps": 1,
        "policy_kwargs": {"net_arch": [256, 256]},
        "seed": 0,
        "device": device,
        "verbose": 0,
    }
    if algo == "td3":
        dimensions = env.action_space.shape[0]
        noise = NormalActionNoise(np.zeros(dimensions), 0.1 * np.ones(dimensions))
        model = peer_algorithm(peer, "TD3")(
            "MlpPolicy", env, policy_delay=2, action_noise=noise, **common
        )
    else:
        model = peer_algorithm(peer, "SAC")("MlpPolicy", env, **common)
    timer = Timer()
    model.learn(total_timesteps=steps, callback=timer)
    return (steps - warm_up) / (time.perf_counter() - timer.started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algos", nargs="+", default=["td3", "sac"], choices=["td3", "sac"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5000, help="env steps per run")
    parser.add_argument("--warm-up", type=int, default=2000, help="steps before timing")
    parser.add_argument("--precisions", nargs="+", default=["auto"])
    parser.add_argument("--peers", nargs="+", default=["sb3", "sbx"], choices=["sb3", "sbx"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    peers = installed_peers(args.peers)
    columns = [f"ours({p})" for p in args.precisions] + [f"{peer} sps" for peer in peers]
    columns += [f"/{peer}" for peer in peers]
    print("algo  round  " + "  ".join(f"{c:>15}" for c in columns))
    for algo in args.algos:
        ratios: dict[str, list[float]] = {peer: [] for peer in peers}
        for round_index in range(args.rounds):
            ours = [run_ours(algo, args.steps, args.warm_up, p) for p in args.precisions]
            theirs = [run_peer(peer, algo, args.steps, args.warm_up) for peer in peers]
            for peer, speed in zip(peers, theirs, strict=True):
                ratios[peer].append(ours[0] / speed)
            row = [f"{value:15.1f}" for value in [*ours, *theirs]]
            row += [f"{ratios[peer][-1]:14.2f}x" for peer in peers]
            print(f"{algo:4}  {round_index:5}  " + "  ".join(row), flush=True)
        print_median_ratios(algo, ratios, f"ours({args.precisions[0]})")


if __name__ == "__main__":
    main()
