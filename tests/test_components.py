"""Unit checks of the pieces the loop is made of (no Hydra, no subprocess)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rl_runner.agents.base import Transition
from rl_runner.agents.common import epsilon_at
from rl_runner.agents.dqn import DQN, learning_rate_at
from rl_runner.buffers.replay import ReplayBuffer
from rl_runner.checkpoint import Checkpointer, load_checkpoint
from rl_runner.config.algorithms import (
    DQNConfig,
    EpsilonConfig,
    EpsilonSchedule,
    ScheduleUnit,
)
from rl_runner.config.compose import compose_settings
from rl_runner.envs.batch import EnvBatch
from rl_runner.envs.factory import env_factory
from rl_runner.envs.snapshot import env_state, restore_env_state
from rl_runner.errors import CheckpointError, ConfigError
from rl_runner.evaluator import Evaluator
from rl_runner.networks.flat import FlatParameters
from rl_runner.networks.mlp import NumpyMLP, mlp
from rl_runner.registry import ALGORITHMS

CPU = torch.device("cpu")


def make_buffer(capacity: int = 5) -> ReplayBuffer:
    return ReplayBuffer(capacity, (2,), np.float32, (), np.int64, seed=0, device=CPU)


def add(buffer: ReplayBuffer, value: float, count: int = 1) -> None:
    obs = np.full((count, 2), value, dtype=np.float32)
    buffer.add(obs, np.arange(count), np.full(count, value, np.float32), obs + 1, np.zeros(count))


def test_replay_ring_buffer_overwrites_the_oldest_and_round_trips():
    buffer = make_buffer()
    for value in range(7):
        add(buffer, float(value))
    assert len(buffer) == 5 and buffer.position == 2
    stored = sorted(buffer.state_dict()["storage"]["rewards"].tolist())
    assert stored == [2.0, 3.0, 4.0, 5.0, 6.0]
    add(buffer, 10.0, count=4)  # a batch that wraps around the end
    assert sorted(buffer.state_dict()["storage"]["rewards"].tolist()) == [6.0, 10, 10, 10, 10]

    copy = make_buffer()
    copy.load_state_dict(buffer.state_dict())
    first, second = buffer.sample(16), copy.sample(16)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(first.next_obs, first.obs + 1)


def test_a_full_memory_is_checkpointed_from_its_own_tensors_without_a_copy():
    """A copy would double a full memory in RAM at every checkpoint (1M Atari frames are
    6.6 GiB); a part-filled memory's rows are copied, so its empty rows are not saved."""
    buffer = make_buffer()
    add(buffer, 1.0, count=3)
    part = buffer.state_dict()["storage"]
    assert part["obs"].untyped_storage().nbytes() == 3 * 2 * 4  # 3 rows of 2 float32
    add(buffer, 2.0, count=2)
    state = buffer.state_dict()
    full = state["storage"]
    assert all(full[name].data_ptr() == buffer._tensors[name].data_ptr() for name in full)
    copy = make_buffer()
    copy.load_state_dict(state)
    assert torch.equal(copy.sample(8).obs, buffer.sample(8).obs)


def test_epsilon_schedules_start_decay_and_settle():
    linear = EpsilonConfig(EpsilonSchedule.linear, 1.0, 0.1, 100)
    assert epsilon_at(linear, 0, 0) == 1.0
    assert epsilon_at(linear, 50, 0) == pytest.approx(0.55)
    assert epsilon_at(linear, 10_000, 0) == pytest.approx(0.1)
    tutorial = EpsilonConfig(EpsilonSchedule.exponential, 0.9, 0.05, 1000)
    assert epsilon_at(tutorial, 1000, 0) == pytest.approx(0.05 + 0.85 * np.exp(-1))


def test_episode_schedules_follow_finished_episodes_not_steps():
    episodes = ScheduleUnit.episodes
    # seed 003's maze: 0.5, halved after every episode
    halving = EpsilonConfig(EpsilonSchedule.geometric, 0.5, 0.0, factor=0.5, unit=episodes)
    assert [epsilon_at(halving, 10_000, k) for k in range(4)] == [0.5, 0.25, 0.125, 0.0625]
    # seed 003's CartPole: 0.5 / (episode + 1), here floored at 0.01
    inverse = EpsilonConfig(EpsilonSchedule.inverse, 0.5, 0.01, unit=episodes)
    assert [epsilon_at(inverse, 0, k) for k in (0, 1, 4, 1000)] == [0.5, 0.25, 0.1, 0.01]
    steps = EpsilonConfig(EpsilonSchedule.inverse, 0.5, 0.0)
    assert epsilon_at(steps, 1, 100) == 0.25  # counts steps by default


def test_learning_rate_decays_linearly_then_holds():
    assert learning_rate_at(DQNConfig(lr=1e-3), 10**6) == 1e-3  # no decay configured
    decaying = DQNConfig(lr=1e-3, lr_end=1e-4, lr_decay_steps=1000)
    assert learning_rate_at(decaying, 0) == 1e-3
    assert learning_rate_at(decaying, 500) == pytest.approx(5.5e-4)
    assert learning_rate_at(decaying, 5000) == pytest.approx(1e-4)


def test_schema_value_checks_name_the_field():
    with pytest.raises(ConfigError, match=r"^algo\.gamma: "):
        DQNConfig(gamma=1.5)
    with pytest.raises(ConfigError, match=r"^algo\.epsilon\.decay_steps: "):
        EpsilonConfig(decay_steps=0)


# Physics in plain attributes, tuples of numpy scalars (MountainCar), text arrays
# (FrozenLake's map), numpy text scalars (Blackjack), MuJoCo physics whose rewards read
# quantities the last step derived (Ant's torso position).
SNAPSHOT_ENVS = ["CartPole-v1", "MountainCar-v0", "FrozenLake-v1", "Blackjack-v1", "Ant-v5"]
SNAPSHOT_ENVS += ["fake_envs:NoisySpace-v0"]  # noise from a seeded space of its own


@pytest.mark.parametrize("env_id", SNAPSHOT_ENVS)
def test_env_snapshot_restores_the_exact_continuation(env_id: str, tmp_path: Path):
    def rollout(env: gym.Env, steps: int) -> list:
        out = []
        for _ in range(steps):
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            out.append((np.asarray(obs).tolist(), reward, terminated, truncated))
            if terminated or truncated:
                out.append(np.asarray(env.reset()[0]).tolist())
        return out

    env = gym.make(env_id, disable_env_checker=True)
    env.reset(seed=3)
    env.action_space.seed(3)
    rollout(env, 37)
    torch.save(env_state(env), tmp_path / "env.pt")  # through a file, as in a checkpoint
    expected = rollout(env, 150)
    # never reset, its action space never seeded: the snapshot carries everything
    other = gym.make(env_id, disable_env_checker=True)
    restore_env_state(other, torch.load(tmp_path / "env.pt", weights_only=True))
    assert rollout(other, 150) == expected


def test_env_batch_resets_finished_episodes_in_the_same_step():
    envs = EnvBatch(env_factory("CartPole-v1", {}, 5), num_envs=2, seed=0)
    envs.reset()
    for _ in range(4):
        step = envs.step(np.array([0, 1]))
        assert not step.truncated.any()
    step = envs.step(np.array([0, 1]))
    assert step.truncated.all()  # the 5-step limit truncates; it does not terminate
    assert not np.array_equal(step.final_obs, step.next_obs)


def test_evaluator_uses_the_same_seeds_every_time():
    evaluator = Evaluator(env_factory("CartPole-v1", {}, None), episodes=4, seed=100)
    rng = np.random.default_rng(0)
    fixed_policy = lambda obs, masks: (obs[:, 2] > 0).astype(np.int64)  # noqa: E731
    first, second = evaluator.run(fixed_policy), evaluator.run(fixed_policy)
    assert np.array_equal(first.returns, second.returns)
    assert len(set(first.returns.tolist())) > 1  # different seeds, different episodes
    random_policy = lambda obs, masks: rng.integers(2, size=len(obs))  # noqa: E731
    assert evaluator.run(random_policy).returns.shape == (4,)


def test_flat_parameters_are_the_module_parameters_and_gradients():
    network = mlp(3, [8], 2, "relu")
    before = [p.detach().clone() for p in network.parameters()]
    flat = FlatParameters(network)
    for p, original in zip(network.parameters(), before, strict=True):
        assert torch.equal(p, original)
    network(torch.randn(5, 3)).sum().backward()
    assert flat.grad.abs().sum() > 0
    assert torch.equal(flat.grad[: 8 * 3], network[0].weight.grad.view(-1))
    flat.clip_grad_norm_(1e-3)
    assert torch.linalg.vector_norm(flat.grad) == pytest.approx(1e-3, rel=1e-3)


def test_numpy_forward_matches_torch_and_follows_weight_updates():
    network = mlp(4, [16, 16], 3, "tanh")
    FlatParameters(network)
    numpy_network = NumpyMLP(network)
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_allclose(numpy_network(x), network(torch.from_numpy(x)).detach(), atol=1e-5)
    with torch.no_grad():
        network[0].weight.add_(1.0)
    np.testing.assert_allclose(numpy_network(x), network(torch.from_numpy(x)).detach(), atol=1e-5)


def test_dqn_agent_state_round_trips_through_a_checkpoint(tmp_path: Path):
    def agent() -> DQN:
        torch.manual_seed(0)
        buffer = ReplayBuffer(100, (4,), np.float32, (), np.int64, seed=0, device=CPU)
        config = DQNConfig(learning_starts=8, train_freq=1)
        return DQN(config, mlp(4, [16], 2, "relu"), buffer, 8, 2, seed=0, device=CPU)

    trained = agent()
    obs = np.zeros((1, 4), dtype=np.float32)
    for step in range(20):
        trained.observe(
            Transition(
                obs + step,
                np.array([step % 2]),
                np.ones(1, np.float32),
                obs + step + 1,
                np.array([False]),
                np.array([False]),
            )
        )
        trained.update()
    checkpointer = Checkpointer(tmp_path, keep_last=1)
    path = checkpointer.save({"agent": trained.state_dict()}, 20)
    restored = agent()
    restored.load_state_dict(load_checkpoint(path)["agent"])
    assert restored.updates == trained.updates == 13
    for a, b in zip(trained.q_network.parameters(), restored.q_network.parameters(), strict=True):
        assert torch.equal(a, b)
    batch = np.random.default_rng(1).standard_normal((32, 4)).astype(np.float32)
    assert np.array_equal(
        trained.act(batch, explore=True).actions, restored.act(batch, explore=True).actions
    )
    assert trained.update().keys() == restored.update().keys()
    for a, b in zip(trained.q_network.parameters(), restored.q_network.parameters(), strict=True):
        assert torch.equal(a, b)


def test_checkpointer_keeps_the_last_k_and_rejects_foreign_files(tmp_path: Path):
    checkpointer = Checkpointer(tmp_path, keep_last=2)
    for step in (10, 20, 30):
        checkpointer.save({"value": torch.tensor(step)}, step)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step_0000000020.pt",
        "step_0000000030.pt",
    ]
    assert checkpointer.latest() == tmp_path / "step_0000000030.pt"
    torch.save({"value": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an rl-runner checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_truncation_bootstraps_and_the_stored_successor_is_the_final_observation():
    """Gymnasium semantics: a time-limit cut is not terminal, and the transition that
    ends an episode stores the observation the action led to, not the reset one."""
    envs = EnvBatch(env_factory("CartPole-v1", {}, 5), num_envs=1, seed=0)
    buffer = ReplayBuffer(100, (4,), np.float32, (), np.int64, seed=0, device=CPU)
    agent = DQN(DQNConfig(learning_starts=10**6), mlp(4, [8], 2, "relu"), buffer, 4, 2, 0, CPU)
    obs, _ = envs.reset()
    for _ in range(5):  # alternate pushes: the pole stays up, the 5-step limit truncates
        actions = np.array([agent.env_steps % 2])
        step = envs.step(actions)
        agent.observe(
            Transition(obs, actions, step.rewards, step.final_obs, step.terminated, step.truncated)
        )
        obs = step.next_obs
    assert step.truncated[0] and not step.terminated[0]
    stored = buffer.state_dict()["storage"]
    assert stored["terminated"].tolist() == [0.0] * 5
    assert torch.equal(stored["next_obs"][4], torch.from_numpy(step.final_obs[0]))
    assert not np.array_equal(step.final_obs, obs)  # the loop carries on from a reset
    assert torch.equal(stored["obs"][1:], stored["next_obs"][:4])


@pytest.mark.parametrize("num_envs", [1, 3])
def test_a_shared_next_observation_is_the_true_successor(num_envs: int):
    """Images stored once: every sampled transition's next observation is the one the
    env gave, across episode ends and the ring's wrap, and after a checkpoint."""

    def make() -> ReplayBuffer:
        return ReplayBuffer(
            capacity=50,
            obs_shape=(2,),
            obs_dtype=np.uint8,
            action_shape=(),
            action_dtype=np.int64,
            seed=0,
            device=torch.device("cpu"),
            share_next_obs=True,
            num_envs=num_envs,
        )

    buffer, rng = make(), np.random.default_rng(0)
    truth = {}
    obs = rng.integers(0, 256, (num_envs, 2), dtype=np.uint8)
    for _ in range(80):
        final = rng.integers(0, 256, (num_envs, 2), dtype=np.uint8)
        ended = rng.random(num_envs) < 0.2
        reset = rng.integers(0, 256, (num_envs, 2), dtype=np.uint8)
        buffer.add(obs, np.zeros(num_envs), np.zeros(num_envs), final, ended, ended)
        truth.update({bytes(o): bytes(f) for o, f in zip(obs, final, strict=True)})
        obs = np.where(ended[:, None], reset, final)
    assert len(buffer) == 50 - num_envs and buffer.size == 50
    restored = make()
    restored.load_state_dict(buffer.state_dict())
    for memory in (buffer, restored):
        batch = memory.sample(256)
        for o, n in zip(batch.obs.numpy(), batch.next_obs.numpy(), strict=True):
            assert truth[bytes(o)] == bytes(n)
    assert torch.equal(buffer.sample(8).next_obs, restored.sample(8).next_obs)


CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONFIGS / "algo_env").glob("*.yaml")))
def test_every_algorithm_env_preset_is_picked_by_its_pair_and_validates(preset: str):
    """configs/algo_env/<algo>_<env>.yaml applies to `algo=<algo> env=<env>`."""
    envs = {p.stem for p in (CONFIGS / "env").glob("*.yaml")}
    [(algo, env)] = [
        (name, preset[len(name) + 1 :])
        for name in ALGORITHMS
        if preset.startswith(name + "_") and preset[len(name) + 1 :] in envs
    ]
    settings = compose_settings([f"algo={algo}", f"env={env}"])
    assert settings.algo.name == algo and settings.env.name == env
    try:
        without = compose_settings([f"algo={algo}", f"env={env}", "~algo_env"])
    except ConfigError:  # the pair needs it (a warm-up longer than the env's run)
        return
    assert settings != without  # the preset is what changed them


def test_a_stop_signal_after_the_trainer_stopped_cannot_cut_its_summary_short():
    """A sweep driver's stop (SIGUSR1) that follows the terminal's Ctrl-C can land after
    the trainer has checkpointed and left its handlers, while it writes its summary and
    the job's row. The start-up's handlers, restored there, raised: the job ended with
    neither written (once, under load, in the joblib stop test)."""
    import os
    import signal
    import time
    from types import SimpleNamespace

    from rl_runner.stopping import SWEEP_STOP_SIGNAL, install_startup_handlers
    from rl_runner.trainer import Trainer

    install_startup_handlers()  # as a sweep job has them while it is set up
    trainer = SimpleNamespace(_stop_signal=None)
    try:
        with Trainer._stop_on_signals(trainer):  # type: ignore[arg-type]
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # handled: the training loop would now checkpoint
        assert trainer._stop_signal == signal.SIGINT
        for late in (SWEEP_STOP_SIGNAL, signal.SIGINT, signal.SIGTERM):
            os.kill(os.getpid(), late)
            time.sleep(0.05)  # delivered, and nothing raised or ended the process
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for restored in (signal.SIGTERM, SWEEP_STOP_SIGNAL):
            signal.signal(restored, signal.SIG_DFL)
