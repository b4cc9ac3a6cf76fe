"""The shared pieces of the actor-critic agents, checked against plain references."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from rl_runner.agents.common import UpdateSchedule, mean_metrics
from rl_runner.agents.off_policy_actor_critic import ActionScaler, gaussian_exploration
from rl_runner.agents.sac import SAC
from rl_runner.buffers.replay import ReplayBuffer
from rl_runner.config.algorithms import SACConfig
from rl_runner.networks.ensemble import MLPEnsemble, NumpyEnsembleMember

CPU = torch.device("cpu")


def test_action_scaler_maps_each_dimension_to_its_own_bounds():
    low, high = np.array([-2, 0, 10], np.float32), np.array([2, 1, 30], np.float32)
    space = gym.spaces.Box(low, high, dtype=np.float32)
    scaler = ActionScaler(space)
    policy = np.array([[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    env = scaler.to_env(policy)
    np.testing.assert_allclose(env, [[-2, 0, 10], [0, 0.5, 20], [2, 1, 30]])
    assert env.dtype == np.float32
    np.testing.assert_allclose(scaler.to_policy(env), policy, atol=1e-6)


def test_exploration_noise_stays_inside_the_policy_range():
    rng = np.random.default_rng(0)
    actions = gaussian_exploration(np.full((1000, 2), 5.0), 0.5, rng)
    assert actions.min() >= -1 and actions.max() <= 1 and (actions < 1).any()


def test_each_ensemble_member_is_an_ordinary_mlp_with_a_joining_input():
    torch.manual_seed(0)
    ensemble = MLPEnsemble(5, [16, 8], 1, "relu", members=3, join_features=2, join_layer=1)
    obs, action = torch.randn(7, 5), torch.randn(7, 2)
    out = ensemble(obs, action)
    assert out.shape == (3, 7, 1)
    for k in range(3):
        w = [weight[k] for weight in ensemble.weights]
        b = [bias[k, 0] for bias in ensemble.biases]
        h = torch.relu(obs @ w[0] + b[0])
        h = torch.relu(torch.cat([h, action], dim=1) @ w[1] + b[1])
        torch.testing.assert_close(out[k], h @ w[2] + b[2])
    torch.testing.assert_close(ensemble(obs, action, first=1), out[:1])


def test_detached_weights_pass_gradients_to_the_input_only():
    ensemble = MLPEnsemble(3, [8], 1, "tanh", members=2, join_features=1)
    action = torch.zeros(4, 1, requires_grad=True)
    ensemble(torch.randn(4, 3), action, detach_weights=True).sum().backward()
    assert action.grad is not None and action.grad.abs().sum() > 0
    assert all(p.grad is None for p in ensemble.parameters())


def test_numpy_actor_matches_the_torch_ensemble():
    actor = MLPEnsemble(4, [32, 32], 2, "relu")
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    expected = actor(torch.from_numpy(obs))[0].detach().numpy()
    np.testing.assert_allclose(NumpyEnsembleMember(actor)(obs), expected, rtol=1e-5, atol=1e-6)


def test_update_schedule_acts_randomly_then_learns_every_train_freq_steps():
    schedule = UpdateSchedule(random_steps=3, learning_starts=4, train_freq=2, gradient_steps=5)
    due = []
    for _ in range(8):
        random_now = schedule.acting_randomly
        schedule.observed(1)
        due.append((random_now, schedule.updates_due(stored=schedule.env_steps, batch_size=1)))
    assert due == [
        (True, 0),
        (True, 0),
        (True, 0),
        (False, 5),
        (False, 0),
        (False, 5),
        (False, 0),
        (False, 5),
    ]


def test_a_burst_reports_the_mean_loss_not_the_last():
    burst = [
        {"loss/critic": torch.tensor(1.0)},
        {"loss/critic": torch.tensor(3.0), "loss/actor": 2.0},
    ]
    metrics = mean_metrics(burst)
    assert float(metrics["loss/critic"]) == 2.0 and float(metrics["loss/actor"]) == 2.0


def test_sac_log_probability_is_the_tanh_gaussian_density():
    torch.manual_seed(0)
    actor = MLPEnsemble(3, [16], 4, "relu")
    critic = MLPEnsemble(3, [16], 1, "relu", members=2, join_features=2)
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    buffer = ReplayBuffer(10, (3,), np.float32, (2,), np.float32, seed=0, device=CPU)
    agent = SAC(SACConfig(), actor, critic, buffer, ActionScaler(space), 4, 0, CPU)
    obs = torch.randn(6, 3)
    state = agent.generator.get_state()
    actions, log_prob = agent._sample(obs)
    agent.generator.set_state(state)
    mean, log_std = actor(obs)[0].chunk(2, dim=-1)
    noise = torch.randn(mean.shape, generator=agent.generator)
    base = torch.distributions.Normal(mean, log_std.exp())
    squashed = torch.distributions.TransformedDistribution(
        base, [torch.distributions.TanhTransform(cache_size=1)]
    )
    expected_actions = torch.tanh(mean + log_std.exp() * noise)
    torch.testing.assert_close(actions, expected_actions)
    torch.testing.assert_close(
        log_prob, squashed.log_prob(expected_actions).sum(-1), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("members", [1, 2])
def test_a_critic_update_is_one_optimiser_step_over_every_member(members: int):
    from rl_runner.agents.off_policy_actor_critic import OnlineTarget

    pair = OnlineTarget(MLPEnsemble(3, [8], 1, "relu", members=members, join_features=1))
    assert pair.parameters.param.numel() == sum(p.numel() for p in pair.online.parameters())
    before = pair.target.weights[0].detach().clone()
    with torch.no_grad():
        pair.online.weights[0].add_(1.0)
    pair.update_target(0.5)
    torch.testing.assert_close(pair.target.weights[0], before + 0.5)
    assert isinstance(pair.parameters.param, nn.Parameter)


DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("device", DEVICES)
def test_the_update_noise_state_loads_on_the_cpu_whatever_the_device(device: str):
    """A CUDA run's checkpoint renders (on the CPU) and resumes with device=cpu: the
    noise generator is a CPU one everywhere, moved draws and all."""

    def sac(on: torch.device) -> SAC:
        torch.manual_seed(0)
        actor = MLPEnsemble(3, [16], 4, "relu").to(on)
        critic = MLPEnsemble(3, [16], 1, "relu", members=2, join_features=2).to(on)
        space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        buffer = ReplayBuffer(10, (3,), np.float32, (2,), np.float32, seed=0, device=on)
        return SAC(SACConfig(), actor, critic, buffer, ActionScaler(space), 4, 0, on)

    trained = sac(torch.device(device))
    drawn = trained.standard_normal(torch.Size([5, 2]))
    assert drawn.device.type == device
    on_cpu = sac(CPU)
    on_cpu.load_state_dict(trained.state_dict())
    torch.testing.assert_close(
        on_cpu.standard_normal(torch.Size([5, 2])),
        trained.standard_normal(torch.Size([5, 2])).cpu(),
        rtol=0,
        atol=0,
    )
