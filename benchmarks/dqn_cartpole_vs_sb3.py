"""Our DQN against Stable-Baselines3's on CartPole-v1, same settings, same machine, one run.

RL Zoo's tuned CartPole-v1 DQN settings for both, one torch thread, runs alternating
(ours, SB3, ours, SB3, ...) so machine noise hits both alike. Prints each run's
training steps/s and its final greedy return over the same 10 evaluation seeds,
then the speed ratio.

    make bench                      # seeds 0-4
    python benchmarks/dqn_cartpole_vs_sb3.py --seeds 0 1 --steps 20000
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import evaluate, train_ours

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


def our_overrides(seed: int, steps: int) -> list[str]:
    return [
        f"seed={seed}",
        "threads=1",
        "device=cpu",
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


def run_ours(seed: int, steps: int, eval_seeds: list[int]) -> tuple[float, float]:
    run = train_ours(our_overrides(seed, steps))
    seconds, agent = run.seconds, run.agent
    score = evaluate(
        lambda obs: int(agent.act(obs[None], explore=False).actions[0]), "CartPole-v1", eval_seeds
    )
    return steps / seconds, score


def run_sb3(seed: int, steps: int, eval_seeds: list[int]) -> tuple[float, float]:
    import gymnasium as gym
    from stable_baselines3 import DQN

    model = DQN(
        "MlpPolicy",
        gym.make(ENV_ID),
        learning_rate=ZOO["lr"],
        batch_size=ZOO["batch_size"],
        buffer_size=ZOO["buffer_size"],
        learning_starts=ZOO["learning_starts"],
        gamma=ZOO["gamma"],
        target_update_interval=ZOO["target_update_interval"],
        train_freq=ZOO["train_freq"],
        gradient_steps=ZOO["gradient_steps"],
        exploration_fraction=ZOO["exploration_fraction"],
        exploration_final_eps=ZOO["exploration_final_eps"],
        max_grad_norm=ZOO["max_grad_norm"],
        policy_kwargs={"net_arch": ZOO["net_arch"]},
        seed=seed,
        device="cpu",
        verbose=0,
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
    args = parser.parse_args()
    torch.set_num_threads(1)
    eval_seeds = [100 + k for k in range(10)]

    print(f"DQN CartPole-v1, {args.steps} steps, RL Zoo settings, 1 torch thread")
    print(f"{'seed':>4} {'ours sps':>9} {'sb3 sps':>9} {'ratio':>6} {'ours ret':>9} {'sb3 ret':>8}")
    ratios, ours_returns, sb3_returns = [], [], []
    for seed in args.seeds:
        ours_sps, ours_return = run_ours(seed, args.steps, eval_seeds)
        sb3_sps, sb3_return = run_sb3(seed, args.steps, eval_seeds)
        ratios.append(ours_sps / sb3_sps)
        ours_returns.append(ours_return)
        sb3_returns.append(sb3_return)
        print(
            f"{seed:>4} {ours_sps:>9.0f} {sb3_sps:>9.0f} {ratios[-1]:>5.2f}x "
            f"{ours_return:>9.1f} {sb3_return:>8.1f}",
            flush=True,
        )
    print(
        f"median speed ratio {statistics.median(ratios):.2f}x (min {min(ratios):.2f}x); "
        f"mean final return ours {statistics.mean(ours_returns):.1f}, "
        f"sb3 {statistics.mean(sb3_returns):.1f}"
    )


if __name__ == "__main__":
    main()
