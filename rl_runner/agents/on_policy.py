"""What PPO and A2C share: acting with a stochastic actor-critic, collecting a rollout of
n_steps steps of every env, and turning it into advantages (GAE) for `_learn`.

    for every env step:   a ~ pi(.|s), store (s, a, log pi(a|s), V(s), r, done)
    when the rollout is full (n_steps per env):
        A, R = GAE(lambda) over the rollout, R = A + V       (rollout.py)
        _learn(batch)                                       (ppo.py / a2c.py)
        clear the rollout

Observations (and rewards, for the value's targets) are normalised here where the
config asks; the statistics move with training steps only. The rollout in progress,
the normalisers and the action generator are in the checkpoint, so a run killed
mid-rollout continues bit for bit.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rl_runner.agents.base import Decision, Metrics, Transition
from rl_runner.agents.common import (
    Counters,
    check_no_action_join,
    make_optimizer,
    reapply_hyperparameters,
)
from rl_runner.agents.common import optimise as gradient_step
from rl_runner.agents.normalisation import ObservationNormaliser, RewardNormaliser
from rl_runner.buffers.rollout import Rollout
from rl_runner.checkpoint import REPLAY_KEY
from rl_runner.config.algorithms import AnnealSchedule, OnPolicyConfig
from rl_runner.config.schema import CNNConfig, MLPConfig
from rl_runner.config.settings import Settings
from rl_runner.envs.batch import VectorEnv
from rl_runner.envs.spaces import network_input_shape
from rl_runner.networks.cnn import ConvNetwork, body
from rl_runner.networks.flat import FlatParameters
from rl_runner.networks.mlp import NumpyMLP
from rl_runner.networks.policy_graph import (
    ClippedToBounds,
    FirstColumns,
    Float32Input,
    Greedy,
    Standardised,
    frozen,
)
from rl_runner.seeding import generator_state, restore_generator_state

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def orthogonal_init(network: nn.Module, head_gains: list[tuple[slice, float]]) -> None:
    """CleanRL's initialisation: orthogonal hidden weights (convolutions' too) with gain
    sqrt(2), zero biases, and each slice of the output layer's rows with its own gain."""
    layers = [module for module in network.modules() if isinstance(module, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():
        for layer in layers[:-1]:
            nn.init.orthogonal_(layer.weight, math.sqrt(2))
        head = layers[-1]
        for rows, gain in head_gains:
            nn.init.orthogonal_(head.weight[rows], gain)
        for layer in layers:
            assert layer.bias is not None  # every layer here is made with one
            layer.bias.zero_()


class PolicyValue(nn.Module):
    """The policy (logits, or a Gaussian's mean beside a state-independent log std) and
    the state value, from two networks (MLPs, or CNNs over images) or from one whose
    last layer holds both outputs (CleanRL's ppo_atari: one Nature CNN trunk)."""

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        network: MLPConfig | CNNConfig,
        action_size: int,
        discrete: bool,
        config: OnPolicyConfig,
    ) -> None:
        super().__init__()
        self.discrete = discrete
        self.action_size = action_size
        shared = config.shared_trunk
        self.policy = body(obs_shape, network, action_size + int(shared))
        self.value = None if shared else body(obs_shape, network, 1)
        self.log_std = (
            None if discrete else nn.Parameter(torch.full((action_size,), config.log_std_init))
        )
        if config.ortho_init:
            policy_rows = slice(0, action_size)
            if self.value is None:
                orthogonal_init(self.policy, [(policy_rows, 0.01), (slice(action_size, None), 1.0)])
            else:
                orthogonal_init(self.policy, [(policy_rows, 0.01)])
                orthogonal_init(self.value, [(slice(None), 1.0)])

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(policy outputs, values) for a batch of observations."""
        out = self.policy(obs)
        if self.value is None:
            return out[:, : self.action_size], out[:, self.action_size]
        return out, self.value(obs).squeeze(-1)

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log pi(actions|obs), entropy of pi(.|obs), V(obs))."""
        out, values = self(obs)
        if self.discrete:
            log_probs = torch.log_softmax(out, dim=1)
            chosen = log_probs.gather(1, actions.long().unsqueeze(1)).squeeze(1)
            entropy = -(log_probs.exp() * log_probs).sum(dim=1)
            return chosen, entropy, values
        assert self.log_std is not None
        z = (actions - out) * torch.exp(-self.log_std)
        chosen = (-0.5 * z.pow(2) - self.log_std - HALF_LOG_2PI).sum(dim=1)
        entropy = (0.5 + HALF_LOG_2PI + self.log_std).sum().expand(len(obs))
        return chosen, entropy, values


class OnPolicyAgent:
    """The rollout machinery; a subclass defines `_learn`, its update on a full rollout."""

    def __init__(
        self,
        config: OnPolicyConfig,
        network: PolicyValue,
        envs: VectorEnv,
        total_steps: int,
        seed: int,
        device: torch.device,
    ) -> None:
        self.config = config
        self.device = device
        self.total_steps = total_steps
        self.network = network.to(device)
        self._parameters = FlatParameters(self.network)
        self.optimizer = make_optimizer(
            config.optimizer.value, [self._parameters.param], config.lr, eps=config.adam_eps
        )
        obs_space, action_space = envs.single_observation_space, envs.single_action_space
        obs_shape = tuple(obs_space.shape or ())
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if not self.discrete:
            assert isinstance(action_space, gym.spaces.Box)
            self._low, self._high = action_space.low, action_space.high
        action_shape = () if self.discrete else tuple(action_space.shape or ())
        action_dtype = torch.int64 if self.discrete else torch.float32
        # a convolutional network reads images as their bytes, scaling them itself
        self.images = isinstance(network.policy, ConvNetwork)
        self.rollout = Rollout(
            config.n_steps,
            envs.num_envs,
            obs_shape,
            action_shape,
            action_dtype,
            torch.uint8 if self.images else torch.float32,
        )
        self.obs_normaliser = (
            ObservationNormaliser(obs_shape, config.clip_observations)
            if config.normalize_observations
            else None
        )
        self.reward_normaliser = (
            RewardNormaliser(envs.num_envs, config.gamma, config.clip_rewards)
            if config.normalize_rewards
            else None
        )
        self.rng = np.random.default_rng(seed)  # action samples and minibatch order
        self.count = Counters()
        self.rollouts = 0
        # Built after flattening: the numpy views must see the flat buffer.
        self._numpy_policy = NumpyMLP(network.policy) if NumpyMLP.supports(network.policy) else None
        self._numpy_value = (
            NumpyMLP(network.value)
            if network.value is not None and NumpyMLP.supports(network.value)
            else None
        )

    # -- acting ------------------------------------------------------------------
    def _forward(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(policy outputs, values) as float64 numpy, by numpy on CPU where it can."""
        shared = self.network.value is None
        if self._numpy_policy is not None and (shared or self._numpy_value is not None):
            out = self._numpy_policy(obs).astype(np.float64)
            if shared:
                return out[:, : self.network.action_size], out[:, -1]
            assert self._numpy_value is not None
            return out, self._numpy_value(obs)[:, 0].astype(np.float64)
        with torch.inference_mode():
            logits, values = self.network(torch.as_tensor(obs, device=self.device))
        return logits.cpu().double().numpy(), values.cpu().double().numpy()

    def _normalised(self, obs: np.ndarray, update: bool) -> np.ndarray:
        if self.images:
            return np.asarray(obs, dtype=np.uint8)
        if self.obs_normaliser is None:
            return np.asarray(obs, dtype=np.float32)
        return self.obs_normaliser(obs, update)

    def act(self, obs: np.ndarray, explore: bool, masks: np.ndarray | None = None) -> Decision:
        """Training: a sample of the policy (the observation statistics updated first),
        with what the rollout stores beside it in `extras`; evaluation: the policy's
        most likely action (the mean of a Gaussian), statistics frozen."""
        inputs = self._normalised(obs, update=explore)
        out, values = self._forward(inputs)
        if self.discrete:
            if not explore:
                return Decision(out.argmax(axis=1))
            log_probs = out - out.max(axis=1, keepdims=True)
            log_probs -= np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
            cumulative = np.cumsum(np.exp(log_probs), axis=1)
            # inverse-CDF sampling, one uniform draw per env
            draws = self.rng.random(len(obs))[:, None] * cumulative[:, -1:]
            actions = np.minimum((cumulative <= draws).sum(axis=1), out.shape[1] - 1)
            chosen = log_probs[np.arange(len(actions)), actions]
            return Decision(actions, self._extras(inputs, actions, chosen, values))
        if not explore:
            return Decision(np.clip(out, self._low, self._high).astype(np.float32))
        assert self.network.log_std is not None
        log_std = self.network.log_std.detach().cpu().double().numpy()
        noise = self.rng.standard_normal(out.shape)
        samples = out + np.exp(log_std) * noise
        chosen = (-0.5 * noise**2 - log_std - HALF_LOG_2PI).sum(axis=1)
        # the env gets the sample clipped to its bounds; the rollout keeps the sample
        return Decision(
            np.clip(samples, self._low, self._high).astype(np.float32),
            self._extras(inputs, samples.astype(np.float32), chosen, values),
        )

    def policy_graph(self) -> nn.Module:
        """The evaluation policy as one module (rl-export): observations, normalised with
        the frozen statistics, to the most likely action (a Gaussian's mean, clipped to
        the env's bounds)."""
        layers: list[nn.Module] = [Float32Input()]
        if self.obs_normaliser is not None:
            statistics = self.obs_normaliser.statistics
            layers.append(Standardised(statistics.mean, statistics.var, self.obs_normaliser.clip))
        layers += [frozen(self.network.policy), FirstColumns(self.network.action_size)]
        layers.append(Greedy() if self.discrete else ClippedToBounds(self._low, self._high))
        return nn.Sequential(*layers)

    @staticmethod
    def _extras(
        inputs: np.ndarray, sampled: np.ndarray, log_probs: np.ndarray, values: np.ndarray
    ) -> dict[str, np.ndarray]:
        return {"inputs": inputs, "sampled": sampled, "log_probs": log_probs, "values": values}

    # -- collecting ------------------------------------------------------------------
    def observe(self, step: Transition) -> None:
        """Store the step with what act() chose beside the actions (the normalised
        inputs, the unclipped sample, its log-probability, the value); `next_obs` (the
        true successors) gives the value that a truncated episode, and the rollout's
        last step, bootstrap from."""
        chosen = step.extras
        inputs, sampled = chosen["inputs"], chosen["sampled"]
        log_probs, values = chosen["log_probs"], chosen["values"]
        terminated, truncated = step.terminated, step.truncated
        rewards = step.rewards.astype(np.float64)
        if self.reward_normaliser is not None:
            rewards = self.reward_normaliser(rewards, terminated | truncated)
        bootstraps = truncated | (self.rollout.at_last_step & ~terminated)
        next_values = np.zeros(len(rewards))
        if bootstraps.any():
            _, next_values[bootstraps] = self._forward(
                self._normalised(step.next_obs[bootstraps], update=False)
            )
        self.rollout.add(
            inputs, sampled, log_probs, values, rewards, terminated, truncated, next_values
        )
        self.count.observed(terminated, truncated)

    # -- learning ------------------------------------------------------------------
    @property
    def progress_remaining(self) -> float:
        """1 at the start of the run, 0 at trainer.total_steps (annealed schedules)."""
        return max(1.0 - self.count.env_steps / self.total_steps, 0.0)

    def annealed(self, value: float, schedule: AnnealSchedule) -> float:
        return value * self.progress_remaining if schedule is AnnealSchedule.linear else value

    @property
    def learning_rate(self) -> float:
        return self.annealed(self.config.lr, self.config.lr_schedule)

    def update(self) -> Metrics:
        """Learn from the rollout once it is full (every n_steps steps of each env)."""
        if not self.rollout.full:
            return {}
        rollout = self.rollout
        advantages, returns = rollout.advantages(self.config.gamma, self.config.gae_lambda)
        size = rollout.n_steps * rollout.num_envs
        device = self.device
        batch = {
            "obs": rollout.obs.reshape(size, *rollout.obs.shape[2:]).to(device),
            "actions": rollout.actions.reshape(size, *rollout.actions.shape[2:]).to(device),
            "log_probs": rollout.log_probs.reshape(size).to(device),
            "advantages": torch.from_numpy(advantages.reshape(size)).float().to(device),
            "returns": torch.from_numpy(returns.reshape(size)).float().to(device),
            "values": torch.from_numpy(rollout.values.reshape(size)).float().to(device),
        }
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate
        metrics = self._learn(batch)
        metrics["train/explained_variance"] = explained_variance(rollout.values, returns)
        rollout.clear()
        self.rollouts += 1
        if self.network.log_std is not None:
            metrics["train/action_std"] = self.network.log_std.detach().exp().mean()
        return metrics

    def _learn(self, batch: dict[str, torch.Tensor]) -> Metrics:
        raise NotImplementedError

    def optimise(self, loss: torch.Tensor) -> None:
        """One gradient step on the whole actor-critic (the global norm clipped)."""
        gradient_step(loss, self._parameters, self.optimizer, self.config.max_grad_norm)
        self.count.updates += 1

    # -- reporting and state --------------------------------------------------------
    @property
    def converged(self) -> bool:
        return False

    def diagnostics(self) -> dict[str, float]:
        return {"train/learning_rate": self.learning_rate}

    @property
    def counters(self) -> dict[str, int]:
        return {**self.count.state_dict(), "rollouts": self.rollouts}

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        network = self.network
        state: dict[str, Any] = {
            "policy": network.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": generator_state(self.rng),
            "counters": self.counters,
        }
        if network.value is not None:
            state["value"] = network.value.state_dict()
        if network.log_std is not None:
            state["log_std"] = network.log_std.detach().clone()
        if self.obs_normaliser is not None:
            state["observation_normaliser"] = self.obs_normaliser.statistics.state_dict()
        if self.reward_normaliser is not None:
            state["reward_normaliser"] = self.reward_normaliser.state_dict()
        if include_replay:  # the rollout in progress, kept as a replay memory is
            state[REPLAY_KEY] = self.rollout.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        network = self.network
        network.policy.load_state_dict(state["policy"])
        if network.value is not None:
            network.value.load_state_dict(state["value"])
        if network.log_std is not None:
            with torch.no_grad():
                network.log_std.copy_(state["log_std"])
        self.optimizer.load_state_dict(state["optimizer"])
        reapply_hyperparameters(self.optimizer, None, 0.0, self.config.adam_eps)
        restore_generator_state(self.rng, state["rng"])
        counters = dict(state["counters"])
        self.rollouts = counters.pop("rollouts")
        self.count.load_state_dict(counters)
        if self.obs_normaliser is not None:
            self.obs_normaliser.statistics.load_state_dict(state["observation_normaliser"])
        if self.reward_normaliser is not None:
            self.reward_normaliser.load_state_dict(
                state["reward_normaliser"], with_returns=REPLAY_KEY in state
            )
        if REPLAY_KEY in state:
            self.rollout.load_state_dict(state[REPLAY_KEY])
        else:
            self.rollout.clear()


def normalised_advantages(advantages: torch.Tensor) -> torch.Tensor:
    """(A - mean A) / (std A + 1e-8); a single advantage is left as it is."""
    if len(advantages) < 2:
        return advantages
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def explained_variance(values: np.ndarray, returns: np.ndarray) -> float:
    """1 - Var(returns - values) / Var(returns): 1 is a perfect value function, 0 no
    better than a constant (NaN-free: 0 where the returns do not vary)."""
    spread = float(np.var(returns))
    return 0.0 if spread == 0 else 1.0 - float(np.var(returns - values)) / spread


def build_network(settings: Settings, envs: VectorEnv) -> PolicyValue:
    network: MLPConfig | CNNConfig = settings.network
    if isinstance(network, MLPConfig):
        check_no_action_join(network)
    obs_shape = network_input_shape(settings, envs.single_observation_space)
    space = envs.single_action_space
    discrete = isinstance(space, gym.spaces.Discrete)
    action_size = int(space.n) if discrete else int(np.prod(space.shape or ()))  # type: ignore[attr-defined]
    return PolicyValue(obs_shape, network, action_size, discrete, settings.algo)
