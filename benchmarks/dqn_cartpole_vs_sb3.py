"""Our DQN against Stable-Baselines3's and SBX's (JAX) on CartPole-v1, same settings, one run.

RL Zoo's tuned CartPole-v1 DQN settings for all, one CPU thread each, runs alternating
(ours, SB3, SBX, ours, ...) so machine noise hits all alike. Prints each run's
whole-run training steps/s (SBX's JIT compile included, as a user waits for it) and
its final greedy return over the same 10 evaluation seeds, then the speed ratios.
SBX's DQN has no gradient-norm clipping; SB3 and ours clip at 10.

    make bench                      # seeds 0-4, every installed peer
    python benchmarks/dqn_cartpole_vs_sb3.py --seeds 0 1 --steps 20000 --peers sbx
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import evaluate, installed_peers, peer_algorithm, print_median_ratios, train_ours

ENV_ID = "CartPole-v1"
ZOO = {
    "lr": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "net_arch": [256, 256],
    "max_grad_norm": 10.0,  # SB3's DQN default
}


def our_overrides(seed: int, steps: int, device: str = "cpu") -> list[str]:
    return [
        f"seed={seed}",
        "threads=1",
        f"device={device}",
        f"trainer.total_steps={steps}",
        f"trainer.log_every={steps}",
        f"eval.every={steps}",  # one evaluation, at the end
        f"checkpoint.every={steps}",  # one checkpoint, at the end
        f"algo.lr={ZOO['lr']}",
        "algo.optimizer=adam",
        f"algo.gamma={ZOO['gamma']}",
        f"algo.random_steps={ZOO['learning_starts']}",  # SB3 acts randomly until learning starts
        f"algo.learning_starts={ZOO['learning_starts']}",
        f"algo.train_freq={ZOO['train_freq']}",
        f"algo.gradient_steps={ZOO['gradient_steps']}",
        f"algo.target_update_every={ZOO['target_update_interval']}",
        "algo.target_tau=1.0",
        "algo.epsilon.schedule=linear",
        "algo.epsilon.start=1.0",
        f"algo.epsilon.end={ZOO['exploration_final_eps']}",
        f"algo.epsilon.decay_steps={int(ZOO['exploration_fraction'] * steps)}",
        "algo.loss=huber",
        "algo.double_dqn=false",
        f"algo.max_grad_norm={ZOO['max_grad_norm']}",
        "algo.grad_clip_value=null",
        f"network.hidden_sizes=[{','.join(map(str, ZOO['net_arch']))}]",
        "network.activation=relu",
        f"buffer.capacity={ZOO['buffer_size']}",
        f"buffer.batch_size={ZOO['batch_size']}",
    ]


def run_ours(
    seed: int, steps: int, eval_seeds: list[int], device: str = "cpu"
) -> tuple[float, float]:
    run = train_ours(our_overrides(seed, steps, device))
    seconds, agent = run.seconds, run.agent
    score = evaluate(
        lambda obs: int(agent.act(obs[None], explore=False).actions[0]), "CartPole-v1", eval_seeds
    )
    return steps / seconds, score


def run_peer(
    peer: str, seed: int, steps: int, eval_seeds: list[int], device: str = "cpu"
) -> tuple[float, float]:
    import gymnasium as gym

    settings = {
        "learning_rate": ZOO["lr"],
        "batch_size": ZOO["batch_size"],
        "buffer_size": ZOO["buffer_size"],
        "learning_starts": ZOO["learning_starts"],
        "gamma": ZOO["gamma"],
        "target_update_interval": ZOO["target_update_interval"],
        "train_freq": ZOO["train_freq"],
        "gradient_steps": ZOO["gradient_steps"],
        "exploration_fraction": ZOO["exploration_fraction"],
        "exploration_final_eps": ZOO["exploration_final_eps"],
        "policy_kwargs": {"net_arch": ZOO["net_arch"]},
    }
    if peer == "sb3":
        settings["max_grad_norm"] = ZOO["max_grad_norm"]
    model = peer_algorithm(peer, "DQN")(
        "MlpPolicy", gym.make(ENV_ID), seed=seed, device=device, verbose=0, **settings
    )
    started = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - started
    score = evaluate(
        lambda obs: int(model.predict(obs, deterministic=True)[0]), "CartPole-v1", eval_seeds
    )
    return steps / seconds, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--peers", nargs="+", default=["sb3", "sbx"], choices=["sb3", "sbx"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    eval_seeds = [100 + k for k in range(10)]
    peers = installed_peers(args.peers)

    print(f"DQN CartPole-v1, {args.steps} steps, RL Zoo settings, 1 CPU thread")
    header = ["seed", "ours sps", *(f"{p} sps" for p in peers), *(f"/{p}" for p in peers)]
    header += ["ours ret", *(f"{p} ret" for p in peers)]
    print(" ".join(f"{column:>9}" for column in header))
    ratios: dict[str, list[float]] = {peer: [] for peer in peers}
    returns: dict[str, list[float]] = {name: [] for name in ["ours", *peers]}
    for seed in args.seeds:
        ours_speed, score = run_ours(seed, args.steps, eval_seeds)
        speeds = {"ours": ours_speed}
        returns["ours"].append(score)
        for peer in peers:
            speeds[peer], score = run_peer(peer, seed, args.steps, eval_seeds)
            returns[peer].append(score)
            ratios[peer].append(speeds["ours"] / speeds[peer])
        row = [f"{seed:>9}", *(f"{speeds[name]:>9.0f}" for name in ["ours", *peers])]
        row += [f"{ratios[peer][-1]:>8.2f}x" for peer in peers]
        row += [f"{returns[name][-1]:>9.1f}" for name in ["ours", *peers]]
        print(" ".join(row), flush=True)
    print_median_ratios("dqn", ratios)
    print(
        "mean final return: "
        + ", ".join(f"{name} {statistics.mean(values):.1f}" for name, values in returns.items())
    )


if __name__ == "__main__":
    main()
