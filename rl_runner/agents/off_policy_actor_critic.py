"""What DDPG, TD3 and SAC share, written once: actions scaled to [-1, 1], the replay
memory of normalised actions, the update schedule, online/target network pairs,
optimisers, and the checkpoint of named parts.

Each algorithm file (`ddpg.py`, `td3.py`, `sac.py`) subclasses `ActorCriticAgent`
once and writes what makes it that algorithm: how it explores and its gradient step.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rl_runner.agents.base import Decision, Metrics, Transition
from rl_runner.agents.common import (
    UpdateSchedule,
    make_optimizer,
    matmul_precision,
    mean_metrics,
    optimise,
    reapply_hyperparameters,
    replay_memory,
    resolve_matmul_precision,
)
from rl_runner.buffers.replay import ReplayBatch, ReplayBuffer
from rl_runner.config.algorithms import ActorCriticConfig
from rl_runner.config.schema import CNNConfig, MLPConfig
from rl_runner.config.settings import Settings
from rl_runner.envs.batch import VectorEnv
from rl_runner.envs.spaces import network_input_shape
from rl_runner.networks.cnn import ConvEnsemble
from rl_runner.networks.ensemble import MLPEnsemble, NumpyEnsembleMember
from rl_runner.networks.flat import FlatParameters
from rl_runner.networks.policy_graph import (
    FirstColumns,
    FirstMember,
    Float32Input,
    SquashedToBounds,
)
from rl_runner.seeding import generator_state, restore_generator_state


class ActionScaler:
    """Policy actions in [-1, 1] to the env's bounds and back, per dimension (bounds
    may differ between dimensions)."""

    def __init__(self, space: gym.spaces.Box) -> None:
        low, high = space.low.astype(np.float64), space.high.astype(np.float64)
        self.centre = (high + low) / 2
        self.half_range = (high - low) / 2
        self.dtype = space.dtype
        self.dimensions = int(space.shape[0])

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        return (self.centre + self.half_range * actions).astype(self.dtype)

    def to_policy(self, actions: np.ndarray) -> np.ndarray:
        # A zero-width dimension (low == high) has one action, stored as 0.
        safe_half_range = np.where(self.half_range > 0, self.half_range, 1.0)
        return ((actions - self.centre) / safe_half_range).astype(np.float32)


# An MLP ensemble over flat observations, or one over a CNN's features of images.
ActorCriticNetwork = MLPEnsemble | ConvEnsemble


class OnlineTarget:
    """A network and its slowly following target copy, both on flat parameters."""

    def __init__(self, network: ActorCriticNetwork) -> None:
        self.online = network
        self.target = copy.deepcopy(network).requires_grad_(False)
        self.parameters = FlatParameters(self.online)
        self._target_parameters = FlatParameters(self.target, with_grad=False)

    def update_target(self, tau: float) -> None:
        self._target_parameters.update_towards(self.parameters, tau)


class ActorCriticAgent:
    """Acting, storing, scheduling and checkpointing for an off-policy actor-critic.

    Subclasses give the actor's raw output its meaning, `_explore(raw)` and
    `_exploit(raw)` (to [-1, 1] actions, with and without exploration), and write
    `_gradient_step(batch)`.
    """

    critics = 2  # members of the critic ensemble
    actor_outputs_per_dimension = 1  # SAC's actor gives a mean and a log-std
    uses_actor_target = True  # SAC learns without one

    def __init__(
        self,
        config: ActorCriticConfig,
        actor: ActorCriticNetwork,
        critic: ActorCriticNetwork,
        buffer: ReplayBuffer,
        scaler: ActionScaler,
        batch_size: int,
        seed: int,
        device: torch.device,
    ) -> None:
        self.config = config
        self.device = device
        self.actor = OnlineTarget(actor.to(device)) if self.uses_actor_target else None
        self._actor_parameters = (
            self.actor.parameters if self.actor else FlatParameters(actor.to(device))
        )
        self.actor_network = actor
        self.critic = OnlineTarget(critic.to(device))
        self.actor_optimizer = self._optimizer(
            self._actor_parameters, config.actor_lr, config.actor_weight_decay
        )
        self.critic_optimizer = self._optimizer(
            self.critic.parameters, config.critic_lr, config.critic_weight_decay
        )
        self.buffer = buffer
        self.scaler = scaler
        self.batch_size = batch_size
        self.schedule = UpdateSchedule(
            config.random_steps, config.learning_starts, config.train_freq, config.gradient_steps
        )
        self.rng = np.random.default_rng(seed)  # exploration and warm-up actions
        # Target policy smoothing and SAC's action samples in updates. On the CPU whatever
        # the device: its state in a checkpoint then loads on any device (a CUDA run
        # resumed with device=cpu, or rendered).
        self.generator = torch.Generator().manual_seed(seed)
        self.updates = 0
        self._matmul_precision = resolve_matmul_precision(config.matmul_precision, device)
        # Built after flattening: the numpy views must see the flat buffer.
        self._numpy_actor = (
            NumpyEnsembleMember(actor) if NumpyEnsembleMember.supports(actor) else None
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, envs: VectorEnv, device: torch.device
    ) -> ActorCriticAgent:
        """The agent a run's config describes (the registry's builder)."""
        actor, critic, replay, scaler = build_parts(
            settings, envs, device, cls.actor_outputs_per_dimension, cls.critics
        )
        return cls(
            settings.algo,
            actor,
            critic,
            replay,
            scaler,
            batch_size=settings.buffer.batch_size,
            seed=settings.run.seed,
            device=device,
        )

    def _optimizer(
        self, parameters: FlatParameters, lr: float, weight_decay: float
    ) -> torch.optim.Optimizer:
        config = self.config
        return make_optimizer(
            config.optimizer.value,
            [parameters.param],
            lr=lr,
            weight_decay=weight_decay,
            amsgrad=config.amsgrad,
            eps=config.adam_eps,
        )

    # acting ------------------------------------------------------------------
    def act(self, obs: np.ndarray, explore: bool, masks: np.ndarray | None = None) -> Decision:
        if explore and self.schedule.acting_randomly:
            actions = self.rng.uniform(-1.0, 1.0, size=(len(obs), self.scaler.dimensions))
        else:
            raw = self._actor_output(obs)
            actions = self._explore(raw) if explore else self._exploit(raw)
        return Decision(self.scaler.to_env(actions))

    def standard_normal(self, shape: torch.Size) -> torch.Tensor:
        """Noise for an update, drawn on the CPU and moved to the device."""
        return torch.randn(shape, generator=self.generator).to(self.device)

    def _actor_output(self, obs: np.ndarray) -> np.ndarray:
        if self._numpy_actor is not None:
            return self._numpy_actor(obs)
        with torch.inference_mode():
            raw = self.actor_network(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        return raw[0].cpu().numpy()

    def policy_graph(self) -> torch.nn.Module:
        """The deterministic policy as one module (rl-export): observations to actions in
        the env's bounds, tanh of the actor's first outputs (SAC's: the mean's)."""
        return torch.nn.Sequential(
            Float32Input(),
            FirstMember(self.actor_network),
            FirstColumns(self.scaler.dimensions),
            SquashedToBounds(self.scaler.centre, self.scaler.half_range),
        )

    def _explore(self, raw: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _exploit(self, raw: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # learning ----------------------------------------------------------------
    def observe(self, step: Transition) -> None:
        actions = self.scaler.to_policy(step.actions)
        ended = step.terminated | step.truncated  # where an image memory stores next_obs
        self.buffer.add(step.obs, actions, step.rewards, step.next_obs, step.terminated, ended)
        self.schedule.observed(len(step.obs))

    def update(self) -> Metrics:
        due = self.schedule.updates_due(len(self.buffer), self.batch_size)
        if not due:
            return {}
        with matmul_precision(self._matmul_precision):
            return mean_metrics(
                [self._gradient_step(self.buffer.sample(self.batch_size)) for _ in range(due)]
            )

    def _gradient_step(self, batch: ReplayBatch) -> Metrics:
        raise NotImplementedError

    def _optimise_actor(self, loss: torch.Tensor) -> None:
        optimise(loss, self._actor_parameters, self.actor_optimizer, self.config.max_grad_norm)

    def _optimise_critic(self, loss: torch.Tensor) -> None:
        optimise(loss, self.critic.parameters, self.critic_optimizer, self.config.max_grad_norm)

    def _update_targets(self) -> None:
        self.critic.update_target(self.config.tau)
        if self.actor is not None:
            self.actor.update_target(self.config.tau)

    def _td_target(self, batch: ReplayBatch, next_value: torch.Tensor) -> torch.Tensor:
        """r + gamma * V(s') where s' is not terminal (a time-limit cut bootstraps)."""
        return batch.rewards + self.config.gamma * (1.0 - batch.terminated) * next_value

    # reporting and state -----------------------------------------------------
    def diagnostics(self) -> dict[str, float]:
        return {}

    @property
    def env_steps(self) -> int:
        return self.schedule.env_steps

    @property
    def converged(self) -> bool:
        return False

    @property
    def counters(self) -> dict[str, int]:
        return {"env_steps": self.env_steps, "updates": self.updates}

    def _parts(self) -> dict[str, Any]:
        """The checkpoint's named parts: everything with a state dict."""
        parts: dict[str, Any] = {
            "actor": self.actor_network,
            "critic": self.critic.online,
            "critic_target": self.critic.target,
            "actor_optimizer": self.actor_optimizer,
            "critic_optimizer": self.critic_optimizer,
        }
        if self.actor is not None:
            parts["actor_target"] = self.actor.target
        return parts

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        state = {name: part.state_dict() for name, part in self._parts().items()}
        state["rng"] = generator_state(self.rng)
        state["generator"] = self.generator.get_state()
        state["counters"] = {**self.schedule.state_dict(), "updates": self.updates}
        if include_replay:
            state["replay"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, part in self._parts().items():
            part.load_state_dict(state[name])
        config = self.config
        reapply_hyperparameters(
            self.actor_optimizer, config.actor_lr, config.actor_weight_decay, config.adam_eps
        )
        reapply_hyperparameters(
            self.critic_optimizer, config.critic_lr, config.critic_weight_decay, config.adam_eps
        )
        restore_generator_state(self.rng, state["rng"])
        self.generator.set_state(state["generator"])
        self.schedule.load_state_dict(state["counters"])
        self.updates = state["counters"]["updates"]
        if "replay" in state:
            self.buffer.load_state_dict(state["replay"])


def gaussian_exploration(raw: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """A deterministic actor's tanh action plus N(0, noise), clipped to [-1, 1]."""
    actions = np.tanh(raw)
    if noise > 0:
        actions = actions + rng.normal(0.0, noise, size=actions.shape)
    return np.clip(actions, -1.0, 1.0)


def build_parts(
    settings: Settings,
    envs: VectorEnv,
    device: torch.device,
    actor_outputs_per_dimension: int,
    critics: int,
) -> tuple[ActorCriticNetwork, ActorCriticNetwork, ReplayBuffer, ActionScaler]:
    """The actor, the critic ensemble, the replay memory and the action scaler of a run."""
    network: MLPConfig | CNNConfig = settings.network
    observation_space = envs.single_observation_space
    obs_shape = network_input_shape(settings, observation_space)
    space = envs.single_action_space
    assert isinstance(space, gym.spaces.Box)  # checked before the run was claimed
    scaler = ActionScaler(space)
    actor_outputs = actor_outputs_per_dimension * scaler.dimensions
    actor: ActorCriticNetwork
    critic: ActorCriticNetwork
    if isinstance(network, CNNConfig):  # each network convolves the images itself
        actor = ConvEnsemble(obs_shape, network, actor_outputs)
        critic = ConvEnsemble(
            obs_shape, network, 1, members=critics, join_features=scaler.dimensions
        )
    else:
        activation = network.activation.value
        actor = MLPEnsemble(obs_shape[0], network.hidden_sizes, actor_outputs, activation)
        critic = MLPEnsemble(
            obs_shape[0],
            network.hidden_sizes,
            1,
            activation,
            members=critics,
            join_features=scaler.dimensions,
            join_layer=network.critic_action_layer,
        )
    # images as the env's pixels (the networks scale them), vectors as float32
    obs_dtype = np.dtype(observation_space.dtype if isinstance(network, CNNConfig) else np.float32)
    replay = replay_memory(
        settings, envs.num_envs, obs_shape, obs_dtype, (scaler.dimensions,), np.float32, device
    )
    return actor, critic, replay, scaler
