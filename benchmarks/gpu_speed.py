"""On a GPU: our DQN, TD3, SAC and PPO against SB3's on the same device (steps/s), and
whether a resume there is bit for bit.

One short invocation, sized for the few minutes a lent GPU machine gives (about 6
minutes at --scale 1): the settings of dqn_cartpole_vs_sb3.py, actor_critic_vs_sb3.py
and ppo_vs_sb3.py (their functions, with the device changed), one run each, then for
DQN and TD3 a run of 2N steps against N steps and a resume to 2N, their final
checkpoints compared tensor by tensor. torch keeps one CPU thread, as in the CPU
benchmarks; CUDA kernels are deterministic here for a fixed device type (cuBLAS's
default workspace), which the resume check tests rather than assumes.

    python benchmarks/gpu_speed.py                               # device=cuda
    python benchmarks/gpu_speed.py --device cpu --scale 0.05     # the script itself, here
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import actor_critic_vs_sb3 as actor_critic
import dqn_cartpole_vs_sb3 as dqn
import ppo_vs_sb3 as ppo
import torch
from common import installed_peers

RL_RUN = str(Path(sys.executable).with_name("rl-run"))
RESUME_RUNS = {
    "dqn": ["algo=dqn", "env=cartpole", "algo.learning_starts=200", "algo.random_steps=200"],
    "td3": ["algo=td3", "env=pendulum", "algo.learning_starts=200", "algo.random_steps=200"],
}


def speeds(device: str, scale: float, peers: list[str]) -> list[tuple[str, float, list[float]]]:
    """(task, our steps/s, each peer's steps/s), one run each."""
    rows = []
    steps = max(int(50_000 * scale), 2000)
    ours, _ = dqn.run_ours(0, steps, [100], device)
    theirs = [dqn.run_peer(peer, 0, steps, [100], device)[0] for peer in peers]
    rows.append(("dqn CartPole-v1", ours, theirs))
    steps = max(int(5000 * scale), 1500)
    warm_up = max(steps * 2 // 5, actor_critic.RANDOM_STEPS + 200)
    for algo in ("td3", "sac"):
        ours = actor_critic.run_ours(algo, steps, warm_up, "auto", device)
        theirs = [actor_critic.run_peer(peer, algo, steps, warm_up, device) for peer in peers]
        rows.append((f"{algo} {actor_critic.ENV_ID}", ours, theirs))
    steps = max(int(ppo.TASKS["cartpole"]["steps"] * scale), 2048)
    ours = ppo.run_ours("cartpole", steps, (), device)
    theirs = [ppo.run_peer(peer, "cartpole", steps, device) for peer in peers]
    rows.append(("ppo CartPole-v1", ours, theirs))
    return rows


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where two checkpoint trees first differ (a tensor's values, a key, a value)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        same = a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu())
        return None if same else where
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where} (keys)"
        for key in a:
            found = first_difference(a[key], b[key], f"{where}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return f"{where} (length)"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{where}[{index}]")
            if found is not None:
                return found
        return None
    return None if a == b else where


def resume_is_exact(algo: str, device: str, steps: int, work: Path) -> str:
    """'exact', or where the resumed run's final checkpoint first differs."""
    common = [*RESUME_RUNS[algo], f"device={device}", "threads=1"]
    common += [f"checkpoint.every={steps}", f"eval.every={steps}", "eval.episodes=2"]
    straight, resumed = work / f"{algo}_straight", work / f"{algo}_resumed"
    for command in (
        [*common, f"trainer.total_steps={2 * steps}", f"hydra.run.dir={straight}"],
        [*common, f"trainer.total_steps={steps}", f"hydra.run.dir={resumed}"],
        [f"resume={resumed}", f"trainer.total_steps={2 * steps}"],
    ):
        subprocess.run([RL_RUN, *command], cwd=work, check=True, capture_output=True)
    name = f"checkpoints/step_{2 * steps:010d}.pt"
    states = [torch.load(run / name, weights_only=False) for run in (straight, resumed)]
    found = first_difference(states[0]["agent"], states[1]["agent"], "agent")
    found = found or first_difference(states[0]["envs"], states[1]["envs"], "envs")
    return "exact" if found is None else f"differs at {found}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scale", type=float, default=1.0, help="run lengths, 1 = the CPU's")
    parser.add_argument("--peers", nargs="+", default=["sb3"], choices=["sb3", "sbx"])
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_speed.py: no CUDA device here; --device cpu runs the script on the CPU")
    torch.set_num_threads(1)
    peers = installed_peers(args.peers)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"device {args.device} ({name}), torch {torch.__version__}, scale {args.scale}")
    columns = ["ours sps", *(f"{peer} sps" for peer in peers), *(f"/{peer}" for peer in peers)]
    print(f"{'task':24}" + "".join(f"{column:>11}" for column in columns))
    for task, ours, theirs in speeds(args.device, args.scale, peers):
        cells = [f"{speed:11.0f}" for speed in [ours, *theirs]]
        cells += [f"{ours / speed:10.2f}x" for speed in theirs]
        print(f"{task:24}" + "".join(cells), flush=True)
    steps = max(int(1000 * args.scale), 400)
    with tempfile.TemporaryDirectory() as work:
        for algo in RESUME_RUNS:
            verdict = resume_is_exact(algo, args.device, steps, Path(work))
            print(f"resume {algo}: {steps} + {steps} steps against {2 * steps}: {verdict}")


if __name__ == "__main__":
    main()
