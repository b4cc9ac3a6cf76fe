"""The one place that turns a composed config into objects."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from omegaconf import OmegaConf

from rl_runner.checkpoint import Checkpointer, holds_replay
from rl_runner.config.schema import CNNConfig
from rl_runner.config.settings import GROUPS, Settings, flat_config
from rl_runner.envs.batch import EnvBatch, VectorEnv
from rl_runner.envs.factory import configured_env_factory
from rl_runner.envs.maze import MazeEnv
from rl_runner.envs.snapshot import UnsupportedEnvState, env_state, skipped_state
from rl_runner.envs.spaces import check_spaces, frame_stacks, observation_mismatch
from rl_runner.envs.workers import SubprocessEnvBatch
from rl_runner.errors import ConfigError
from rl_runner.evaluator import Evaluator, env_time_limit
from rl_runner.registry import algorithm
from rl_runner.rundir import CHECKPOINT_DIR
from rl_runner.seeding import seed_global_rngs
from rl_runner.tracking import check_tracking, make_tracker
from rl_runner.trainer import Schedule, Trainer
from rl_runner.video import check_renders, recording

log = logging.getLogger("rl_runner")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available")
    return device


def configure_torch(threads: int) -> None:
    torch.set_num_threads(threads)
    # Subnormal floats (Adam moments of dead units decay into them) slow CPU math
    # several-fold; flushing them to zero changes nothing a learning curve can see.
    torch.set_flush_denormal(True)


@dataclass
class EnvProbe:
    """What the checks learn by making an env, resetting and stepping it: the same for
    every job of a sweep that makes the same env, so a sweep makes each env once."""

    observation_space: gym.Space
    action_space: gym.Space
    snapshot_refusal: str | None  # why an exact checkpoint could not hold its state
    uncapturable: list[str]  # what an inexact one lacks
    warned: bool = False  # checkpoint.exact=false has said so


# (id, entry point, keyword arguments, time limit, Atari preprocessing): what makes one env
EnvProbes = dict[tuple[str, str | None, str, int | None, str], EnvProbe]


def check_buildable(settings: Settings, probes: EnvProbes | None = None) -> None:
    """What only the environment can tell (can it be made, can the algorithm act in
    it, can its state be checkpointed) and the device, checked before a run directory
    is touched. `probes` keeps each env's probe for the next job that makes it."""
    resolve_device(settings.run.device)
    check_tracking(settings.run.tracking)
    cpus = os.cpu_count() or 1
    if settings.run.threads > cpus:
        raise ConfigError(
            f"threads: {settings.run.threads} is more than this machine's {cpus} CPUs"
        )
    probes = {} if probes is None else probes
    env_config = settings.env
    key = (
        env_config.id,
        env_config.entry_point,
        repr(env_config.kwargs),
        env_config.max_episode_steps,
        repr(env_config.atari),
    )
    if key not in probes:
        probes[key] = _probe_env(settings)
    probe = probes[key]
    check_spaces(settings, probe.observation_space, probe.action_space)
    _check_memory(settings, probe.observation_space, probe.action_space)
    _check_snapshot(settings, probe)
    check_renders(env_config, settings.run.eval.video)


def _probe_env(settings: Settings) -> EnvProbe:
    env = configured_env_factory(settings.env, training=True)()
    try:
        _try_one_step(settings, env)
        _check_maze_goal_in_time(env)
        try:
            env_state(env)
            refusal = None
        except UnsupportedEnvState as error:
            refusal = str(error)
        uncapturable = skipped_state([env_state(env, exact=False)])
        return EnvProbe(env.observation_space, env.action_space, refusal, uncapturable)
    finally:
        env.close()


def _check_snapshot(settings: Settings, probe: EnvProbe) -> None:
    """Refuse state a checkpoint could not capture, or (checkpoint.exact=false) say
    once, before the run, what its checkpoints will lack."""
    if settings.run.checkpoint.exact and probe.snapshot_refusal is not None:
        raise ConfigError(probe.snapshot_refusal)
    if not settings.run.checkpoint.exact and probe.uncapturable and not probe.warned:
        probe.warned = True
        print(
            f"rl-run: checkpoint.exact=false: checkpoints of {settings.env.id} will lack "
            f"{', '.join(probe.uncapturable)}; a resume is not the exact continuation",
            file=sys.stderr,
        )


def _check_maze_goal_in_time(env: gym.Env) -> None:
    """A maze whose time limit cuts every episode before its shortest path ends: no
    episode could ever reach the goal, so nothing could be learnt."""
    maze, limit = env.unwrapped, env_time_limit(env)
    if not isinstance(maze, MazeEnv) or limit is None:
        return
    shortest = maze.shortest_path_length()
    if limit < shortest:
        raise ConfigError(
            f"env.max_episode_steps: {limit} is below the maze's shortest path from start "
            f"{maze.start} to goal {maze.goal} ({shortest} moves): no episode could reach "
            f"the goal; set it to {shortest} or more"
        )


def _try_one_step(settings: Settings, env: gym.Env) -> None:
    """A reset and a step, so that settings an env only reads then (keyword arguments of
    the wrong type, say) and state it makes then are checked before the run starts."""
    key = "env.kwargs" if settings.env.kwargs else "env.id"
    try:
        first, _ = env.reset(seed=settings.run.seed)
        env.action_space.seed(settings.run.seed)
        second = env.step(env.action_space.sample())[0]
    except Exception as error:  # any env code: report it, do not start
        raise ConfigError(
            f"{key}: {settings.env.id} failed its first reset and step "
            f"({type(error).__name__}: {' '.join(str(error).split())[:200]})"
        ) from error
    for where, obs in (("reset", first), ("step", second)):
        mismatch = observation_mismatch(env.observation_space, obs)
        if mismatch is not None:
            raise ConfigError(
                f"{key}: {settings.env.id}'s first {where} returned an observation {mismatch}"
            )


def _available_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _memory_free_now() -> int | None:
    """Linux's MemAvailable (free memory plus what the kernel can reclaim), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _warn_if_memory_is_short(settings: Settings, observation_space: gym.Space) -> None:
    """A replay memory that fits this machine but not what is free now (other jobs, a
    sweep's parallel runs) fills up over the run: say so before it is killed for it."""
    replay_bytes = _replay_bytes(settings, observation_space)
    free = _memory_free_now()
    if free is not None and replay_bytes > free:
        log.warning(
            "buffer.capacity: the replay memory will fill %.1f GiB, more than the %.1f GiB "
            "free now; the run may be killed for memory as it fills",
            replay_bytes / 2**30,
            free / 2**30,
        )


def _check_table_memory(
    settings: Settings, observation_space: gym.Space, action_space: gym.Space
) -> None:
    """Refuse a tabular agent's table that could never fit (a fine discretisation)."""
    if algorithm(settings.algo.name).observations != "discrete":
        return
    cells = int(getattr(observation_space, "n", 0)) * int(getattr(action_space, "n", 0))
    # float64 values plus, for the policy gradient, each env's episode counts
    table_bytes = cells * 8 * (2 + settings.env.num_envs)
    if table_bytes > _available_memory():
        raise ConfigError(
            f"env.kwargs: {settings.env.id}'s {observation_space.n} states x "  # type: ignore[attr-defined]
            f"{action_space.n} actions need a {table_bytes / 2**30:.1f} GiB table, more than "  # type: ignore[attr-defined]
            f"this machine's {_available_memory() / 2**30:.1f} GiB (a discretised env: fewer bins)"
        )


def _replay_bytes(settings: Settings, observation_space: gym.Space) -> int:
    """What the replay memory allocates: images are stored as the env's bytes, other
    observations as float32; an image's successor is the next row's image, and a frame
    stack's frames are stored once each (agents/common.py's replay_memory)."""
    capacity = getattr(settings.buffer, "capacity", 0)
    shape = observation_space.shape or (1,)
    obs_bytes = 1 if observation_space.dtype == np.uint8 else 4
    if frame_stacks(settings):
        stored = int(np.prod(shape[1:]))
    elif isinstance(settings.network, CNNConfig):
        stored = int(np.prod(shape))
    else:
        stored = 2 * int(np.prod(shape))
    # an action, a reward, a terminal flag and an episode-end flag: 8 + 4 + 4 + 1 bytes
    return capacity * (stored * obs_bytes + 17)


def _network_bytes(settings: Settings, observation_space: gym.Space) -> int:
    """Online and target networks, gradients and two optimiser moments, in float32,
    counted by their fully connected layers (a convolution's weights are small)."""
    network = settings.network
    shape = observation_space.shape or (1,)
    if isinstance(network, CNNConfig):
        side = min(network.output_size(size) for size in shape[-2:])
        inputs = network.channels[-1] * max(side, 1) ** 2
    else:
        inputs = int(np.prod(shape))
    sizes = [inputs, *getattr(network, "hidden_sizes", [])]
    return 5 * 4 * sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))


def _check_memory(
    settings: Settings, observation_space: gym.Space, action_space: gym.Space
) -> None:
    """Refuse a replay memory, network or table that could never fit, before allocating it."""
    _check_table_memory(settings, observation_space, action_space)
    replay_bytes = _replay_bytes(settings, observation_space)
    network_bytes = _network_bytes(settings, observation_space)
    available = _available_memory()
    if replay_bytes + network_bytes > available:
        raise ConfigError(
            f"buffer.capacity / network.hidden_sizes: the replay memory "
            f"({replay_bytes / 2**30:.1f} GiB) and networks ({network_bytes / 2**30:.1f} GiB) "
            f"need more than this machine's {available / 2**30:.1f} GiB"
        )


# -- the run --------------------------------------------------------------------
def make_training_envs(settings: Settings) -> VectorEnv:
    """The training envs, in this process or in worker processes (env.vectorization_mode)."""
    env = settings.env
    factory = configured_env_factory(env, training=True)
    adapter = SubprocessEnvBatch if env.vectorization_mode == "async" else EnvBatch
    return adapter(factory, env.num_envs, settings.run.seed, settings.run.checkpoint.exact)


def build_trainer(settings: Settings, run_dir: Path, checkpoint: dict[str, Any] | None) -> Trainer:
    """Objects for a run; `checkpoint` (already loaded) restores a resumed one.

    Nothing is written to `run_dir` until every object is built and restored, so a
    bad config or an incompatible checkpoint leaves an existing run untouched. The
    trainer closes its envs when its run ends; here they are closed if building fails.
    """
    run = settings.run
    configure_torch(run.threads)
    device = resolve_device(run.device)
    seed_global_rngs(run.seed)
    envs = make_training_envs(settings)
    evaluator: Evaluator | None = None
    try:
        entry = algorithm(settings.algo.name)
        _warn_if_memory_is_short(settings, envs.single_observation_space)
        agent = entry.builder()(settings, envs, device)
        env_config = settings.env
        evaluator = Evaluator(
            configured_env_factory(env_config),
            run.eval.episodes,
            settings.eval_seed,
            run.eval.max_episode_steps,
            video=recording(env_config, run.eval.video),
        )
        if evaluator.env_limit is None and run.eval.max_episode_steps is None:
            log.warning(
                "%s has no time limit: evaluation episodes end at %d steps at the latest "
                "(set eval.max_episode_steps, or env.max_episode_steps for training too)",
                settings.env.id,
                evaluator.max_episode_steps,
            )
        trainer = Trainer(
            agent,
            envs,
            evaluator,
            Checkpointer(run_dir / CHECKPOINT_DIR, run.checkpoint.keep_last),
            _schedule(settings),
            run_dir,
            _config_markdown(settings),
            learning_rate_keys=entry.learning_rates,
            clips_gradients="max_grad_norm" in {field.name for field in fields(entry.schema)},
            hparams=_hparams(settings),
            tracker=partial(make_tracker, run.tracking, run_dir, _hparams(settings)),
        )
        if checkpoint is not None:
            _restore(trainer, checkpoint, settings)
    except BaseException:
        envs.close()
        if evaluator is not None:
            evaluator.close()
        raise
    return trainer


def _schedule(settings: Settings) -> Schedule:
    run = settings.run
    return Schedule(
        total_steps=run.trainer.total_steps,
        log_every=run.trainer.log_every,
        stop_at_eval_return=run.trainer.stop_at_eval_return,
        eval_every=run.eval.every,
        checkpoint_every=run.checkpoint.every,
        checkpoint_replay=run.checkpoint.replay,
        video_every=run.eval.video.every,
    )


def _restore(trainer: Trainer, checkpoint: dict[str, Any], settings: Settings) -> None:
    try:
        trainer.load_state_dict(checkpoint)
    except (KeyError, ValueError, RuntimeError) as err:
        detail = " ".join(str(err).split())  # torch's messages span lines
        if len(detail) > 240:
            detail = detail[:240] + "..."
        raise ConfigError(f"resume: the checkpoint does not fit this config ({detail})") from err
    skipped = skipped_state(checkpoint["envs"])
    if skipped:
        log.warning(
            "resume: the checkpoint lacks the envs' %s (checkpoint.exact=false), so training "
            "is not the exact continuation of the run",
            ", ".join(skipped),
        )
    if not holds_replay(checkpoint):
        memory = algorithm(settings.algo.name).memory
        if memory is not None:
            log.warning(
                "resume: the checkpoint holds no %s (checkpoint.replay=false, or not the "
                "newest checkpoint); training continues with an empty one, so it is not the "
                "exact continuation of the run",
                memory,
            )


def _config_tree(settings: Settings) -> dict[str, Any]:
    """The run's settings as plain nested dicts: run-wide keys, then each group read."""
    groups = {group: getattr(settings, group) for group in GROUPS}
    tree = {"run": settings.run, **{name: node for name, node in groups.items() if node}}
    plain = OmegaConf.to_container(OmegaConf.structured(tree), enum_to_str=True)
    assert isinstance(plain, dict)
    return {str(key): value for key, value in plain.items()}


def _hparams(settings: Settings) -> dict[str, Any]:
    """The settings by the keys a user writes them with: `seed`, `algo.lr`, ..."""
    tree = _config_tree(settings)
    return flat_config({**tree.pop("run"), **tree})


def _config_markdown(settings: Settings) -> str:
    yaml = OmegaConf.to_yaml(OmegaConf.create(_config_tree(settings)))
    # TensorBoard renders text as markdown; indenting keeps the YAML verbatim.
    return "\n".join("    " + line for line in yaml.splitlines())
