"""Deep Q-Network (Mnih et al., 2015), optionally Double DQN (van Hasselt et al., 2016).

for every env step:
    a = random with probability epsilon(step), else argmax_a Q(s, a)
    store (s, a, r, s', terminated) in the replay memory
    every train_freq steps (once learning_starts steps are stored), gradient_steps times:
        sample a batch; y = r + gamma * (1 - terminated) * max_a' Q_target(s', a')
            (Double DQN: y uses Q_target(s', argmax_a' Q(s', a')))
        minimise loss(Q(s, a), y)       (Huber or MSE)
    every target_update_every steps (or episodes): Q_target <- tau * Q + (1 - tau) * Q_target
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from rl_runner.agents.base import Decision, Metrics, Transition
from rl_runner.agents.common import (
    UpdateSchedule,
    check_no_action_join,
    epsilon_at,
    finished_episodes,
    linear_schedule,
    make_optimizer,
    mean_metrics,
    optimise,
    reapply_hyperparameters,
    replay_memory,
)
from rl_runner.buffers.replay import ReplayBuffer
from rl_runner.config.algorithms import DQNConfig, ScheduleUnit, TDLoss
from rl_runner.config.schema import CNNConfig
from rl_runner.config.settings import Settings
from rl_runner.envs.batch import VectorEnv
from rl_runner.envs.spaces import flat_observation_size, image_shape
from rl_runner.networks.cnn import ConvNetwork, copy_buffers
from rl_runner.networks.flat import FlatParameters
from rl_runner.networks.mlp import NumpyMLP, mlp
from rl_runner.networks.policy_graph import Float32Input, Greedy, frozen
from rl_runner.seeding import generator_state, restore_generator_state


def network_input(obs: np.ndarray, device: torch.device) -> torch.Tensor:
    """Observations as a network reads them: images stay bytes, the rest float32."""
    tensor = torch.as_tensor(obs, device=device)
    return tensor if tensor.dtype == torch.uint8 else tensor.float()


def learning_rate_at(config: DQNConfig, env_steps: int) -> float:
    if config.lr_decay_steps is None:
        return config.lr
    return linear_schedule(config.lr, config.lr_end, config.lr_decay_steps, env_steps)


class DQN:
    def __init__(
        self,
        config: DQNConfig,
        q_network: nn.Module,
        buffer: ReplayBuffer,
        batch_size: int,
        num_actions: int,
        seed: int,
        device: torch.device,
    ) -> None:
        self.config = config
        self.device = device
        # Eval mode except for the loss's forward pass: acting, evaluation and targets use
        # BatchNorm's running statistics (a CNN's; an MLP has no mode-dependent layer).
        self.q_network = q_network.to(device).eval()
        self.target_network = copy.deepcopy(self.q_network).requires_grad_(False)
        self._online = FlatParameters(self.q_network)
        self._target = FlatParameters(self.target_network, with_grad=False)
        self.optimizer = make_optimizer(
            config.optimizer.value,
            [self._online.param],
            lr=config.lr,
            weight_decay=config.weight_decay,
            amsgrad=config.amsgrad,
            eps=config.adam_eps,
        )
        self.buffer = buffer
        self.batch_size = batch_size
        self.num_actions = num_actions
        self.rng = np.random.default_rng(seed)  # exploration draws
        self.schedule = UpdateSchedule(
            config.random_steps, config.learning_starts, config.train_freq, config.gradient_steps
        )
        self.updates = 0
        self.episodes = 0  # finished training episodes (schedules may count them)
        self._since_target_update = 0  # in target_update_unit
        self._loss = F.smooth_l1_loss if config.loss is TDLoss.huber else F.mse_loss
        # Built after flattening: the numpy views must see the flat buffer.
        self._numpy_q = NumpyMLP(self.q_network) if NumpyMLP.supports(self.q_network) else None

    # acting ------------------------------------------------------------------
    def act(self, obs: np.ndarray, explore: bool, masks: np.ndarray | None = None) -> Decision:
        """Masks are not used: DQN acts over every action (an illegal one is the env's
        to handle)."""
        return Decision(self._epsilon_greedy(obs) if explore else self._greedy(obs))

    def _epsilon_greedy(self, obs: np.ndarray) -> np.ndarray:
        count = len(obs)
        if self.schedule.acting_randomly:
            return self.rng.integers(self.num_actions, size=count)
        explore_mask = self.rng.random(count) < self.epsilon
        if explore_mask.all():  # skip the network when every action is random
            return self.rng.integers(self.num_actions, size=count)
        actions = self._greedy(obs)
        if explore_mask.any():
            actions[explore_mask] = self.rng.integers(
                self.num_actions, size=int(explore_mask.sum())
            )
        return actions

    def _greedy(self, obs: np.ndarray) -> np.ndarray:
        if self._numpy_q is not None:
            return self._numpy_q(obs).argmax(axis=1)
        with torch.inference_mode():
            q_values = self.q_network(network_input(obs, self.device))
        return q_values.argmax(dim=1).cpu().numpy()

    def policy_graph(self) -> nn.Module:
        """The greedy policy as one module (rl-export): observations to action indices."""
        return nn.Sequential(Float32Input(), frozen(self.q_network), Greedy())

    # learning ----------------------------------------------------------------
    def observe(self, step: Transition) -> None:
        ended = step.terminated | step.truncated
        self.buffer.add(step.obs, step.actions, step.rewards, step.next_obs, step.terminated, ended)
        self.schedule.observed(len(step.obs))
        finished = finished_episodes(step.terminated, step.truncated)
        self.episodes += finished
        by_episode = self.config.target_update_unit is ScheduleUnit.episodes
        self._since_target_update += finished if by_episode else len(step.obs)

    @property
    def env_steps(self) -> int:
        return self.schedule.env_steps

    @property
    def epsilon(self) -> float:
        return epsilon_at(self.config.epsilon, self.env_steps, self.episodes)

    @property
    def converged(self) -> bool:
        return False

    def update(self) -> Metrics:
        config = self.config
        metrics: Metrics = {}
        due = self.schedule.updates_due(len(self.buffer), self.batch_size)
        if due:
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate_at(config, self.env_steps)
            metrics = mean_metrics([self._gradient_step() for _ in range(due)])
        # one target update per target_update_every units, the remainder carried over, so
        # several envs stepping together keep the documented rate
        periods = self._since_target_update // config.target_update_every
        self._since_target_update -= periods * config.target_update_every
        for _ in range(periods):
            self._target.update_towards(self._online, config.target_tau)
            copy_buffers(self.target_network, self.q_network, config.target_tau)
        return metrics

    def _gradient_step(self) -> Metrics:
        config = self.config
        batch = self.buffer.sample(self.batch_size)
        with torch.no_grad():
            next_q_target = self.target_network(batch.next_obs)
            if config.double_dqn:
                next_actions = self.q_network(batch.next_obs).argmax(dim=1, keepdim=True)
                next_q = next_q_target.gather(1, next_actions).squeeze(1)
            else:
                next_q = next_q_target.amax(dim=1)
            td_target = batch.rewards + config.gamma * (1.0 - batch.terminated) * next_q
        self.q_network.train()
        q = self.q_network(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
        self.q_network.eval()
        loss = self._loss(q, td_target)
        optimise(loss, self._online, self.optimizer, config.max_grad_norm, config.grad_clip_value)
        self.updates += 1
        return {"loss/td": loss.detach(), "train/q_mean": q.detach().mean()}

    # reporting and state -----------------------------------------------------
    def diagnostics(self) -> dict[str, float]:
        return {
            "train/epsilon": self.epsilon,
            "train/learning_rate": learning_rate_at(self.config, self.env_steps),
        }

    @property
    def counters(self) -> dict[str, int]:
        return {"env_steps": self.env_steps, "updates": self.updates}

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        state = {
            "q_network": self.q_network.state_dict(),
            "target_network": self.target_network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": generator_state(self.rng),
            "counters": {
                **self.schedule.state_dict(),
                "updates": self.updates,
                "episodes": self.episodes,
                "since_target_update": self._since_target_update,
            },
        }
        if include_replay:
            state["replay"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q_network.load_state_dict(state["q_network"])
        self.target_network.load_state_dict(state["target_network"])
        self.optimizer.load_state_dict(state["optimizer"])
        config = self.config
        reapply_hyperparameters(self.optimizer, None, config.weight_decay, config.adam_eps)
        restore_generator_state(self.rng, state["rng"])
        counters = state["counters"]
        self.schedule.load_state_dict(counters)
        self.updates = counters["updates"]
        self.episodes = counters.get(
            "episodes", 0
        )  # not in checkpoints written before it was counted
        self._since_target_update = counters.get(
            "since_target_update", counters.get("steps_since_target_update", 0)
        )  # the older name: checkpoints written before targets could count episodes
        if "replay" in state:
            self.buffer.load_state_dict(state["replay"])


def q_network_and_observations(
    settings: Settings, envs: VectorEnv, num_actions: int
) -> tuple[nn.Module, tuple[int, ...], npt.DTypeLike]:
    """The Q-network the network group describes, and the shape and dtype the replay
    memory stores observations in (images as the env's bytes)."""
    network = settings.network
    space = envs.single_observation_space
    if isinstance(network, CNNConfig):
        shape = image_shape(settings, space)
        return ConvNetwork(shape, network, num_actions), shape, np.dtype(space.dtype)
    check_no_action_join(network)
    obs_size = flat_observation_size(settings, space)
    q_network = mlp(obs_size, network.hidden_sizes, num_actions, network.activation.value)
    return q_network, (obs_size,), np.float32


def build(settings: Settings, envs: VectorEnv, device: torch.device) -> DQN:
    num_actions = int(envs.single_action_space.n)  # type: ignore[attr-defined]
    q_network, obs_shape, obs_dtype = q_network_and_observations(settings, envs, num_actions)
    replay = replay_memory(settings, envs.num_envs, obs_shape, obs_dtype, (), np.int64, device)
    return DQN(
        settings.algo,
        q_network,
        replay,
        batch_size=settings.buffer.batch_size,
        num_actions=num_actions,
        seed=settings.run.seed,
        device=device,
    )
