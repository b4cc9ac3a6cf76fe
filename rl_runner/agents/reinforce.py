"""REINFORCE (Williams, 1992), seed 003's Monte-Carlo policy gradient on CartPole.

for every episode, acting with a ~ pi(.|s) = softmax(policy(s)) over the legal actions:
    G_t = r_t + gamma * r_{t+1} + gamma^2 * r_{t+2} + ...     (to the episode's end)
    A_t = G_t, or G_t - V(s_t) with a learnt baseline (V regressed on G_t)
    A_t = (A_t - mean(A)) / (std(A) + 1e-9)                  (normalise_returns)
    minimise -sum_t log pi(a_t | s_t) * A_t                   (one step per episode)

An episode cut by a time limit ends its returns there: Monte-Carlo returns have nothing
to bootstrap from. The running episodes (observations, actions, rewards) are in the
checkpoint, so a resume continues them exactly; log-probabilities are recomputed from
them at the update instead of keeping an autograd graph across env steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rl_runner.agents.base import Decision, Metrics, Transition
from rl_runner.agents.common import (
    Counters,
    check_no_action_join,
    make_optimizer,
    mean_metrics,
    optimise,
    reapply_hyperparameters,
)
from rl_runner.config.algorithms import ReinforceConfig
from rl_runner.config.schema import CNNConfig, MLPConfig
from rl_runner.config.settings import Settings
from rl_runner.envs.batch import VectorEnv
from rl_runner.envs.spaces import network_input_shape
from rl_runner.networks.cnn import ConvNetwork, body
from rl_runner.networks.flat import FlatParameters
from rl_runner.networks.mlp import NumpyMLP
from rl_runner.networks.policy_graph import Float32Input, Greedy, frozen
from rl_runner.seeding import generator_state, restore_generator_state


@dataclass
class Episode:
    """One env's running episode."""

    obs: list[np.ndarray] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)  # empty without masks

    def state_dict(self) -> dict[str, Any]:
        return {
            # uint8 images or float32 vectors, as observed
            "obs": torch.from_numpy(
                np.array(self.obs, self.obs[0].dtype if self.obs else np.float32)
            ),
            "actions": torch.tensor(self.actions, dtype=torch.int64),
            "rewards": torch.tensor(self.rewards, dtype=torch.float64),
            "masks": torch.from_numpy(np.array(self.masks, dtype=bool)),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Episode:
        return cls(
            obs=list(state["obs"].numpy()),
            actions=state["actions"].tolist(),
            rewards=state["rewards"].tolist(),
            masks=list(state["masks"].numpy()),
        )


def discounted_returns(rewards: list[float], gamma: float) -> np.ndarray:
    returns = np.zeros(len(rewards))
    following = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        following = rewards[t] + gamma * following
        returns[t] = following
    return returns


def normalised(values: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit (sample) standard deviation. A single value (a one-step episode)
    has no spread and is kept as it is: centred, it would be 0 and teach nothing."""
    if len(values) < 2:
        return values
    return (values - values.mean()) / (values.std() + 1e-9)


def masked_logits(logits: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
    return logits if masks is None else logits.masked_fill(~masks, -torch.inf)


class Reinforce:
    def __init__(
        self,
        config: ReinforceConfig,
        policy: nn.Module,
        value: nn.Module | None,
        num_envs: int,
        seed: int,
        device: torch.device,
    ) -> None:
        self.config = config
        self.device = device
        self.policy = policy.to(device)
        self._policy_parameters = FlatParameters(self.policy)
        self.optimizer = make_optimizer(
            config.optimizer.value, [self._policy_parameters.param], config.lr, eps=config.adam_eps
        )
        self.value = value.to(device) if value is not None else None
        self._value_parameters = FlatParameters(self.value) if self.value is not None else None
        self.value_optimizer = (
            make_optimizer("adam", [self._value_parameters.param], config.baseline_lr)
            if self._value_parameters is not None
            else None
        )
        self.rng = np.random.default_rng(seed)  # action samples
        self.running = [Episode() for _ in range(num_envs)]
        self.count = Counters()
        self._ended: list[int] = []  # envs whose episode ended at the last step
        # images are kept as their uint8 pixels (the network scales them)
        self._obs_dtype = np.uint8 if isinstance(self.policy, ConvNetwork) else np.float32
        # Built after flattening: the numpy views must see the flat buffer.
        self._numpy_policy = NumpyMLP(self.policy) if NumpyMLP.supports(self.policy) else None

    # acting ------------------------------------------------------------------
    def act(self, obs: np.ndarray, explore: bool, masks: np.ndarray | None = None) -> Decision:
        logits = self._logits(obs)
        if masks is not None:
            logits = np.where(masks, logits, -np.inf)
        if not explore:
            return Decision(logits.argmax(axis=1))
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        cumulative = np.cumsum(probabilities, axis=1)
        # inverse-CDF sampling, one uniform draw per env
        draws = self.rng.random(len(obs))[:, None] * cumulative[:, -1:]
        return Decision(np.minimum((cumulative <= draws).sum(axis=1), logits.shape[1] - 1))

    def policy_graph(self) -> nn.Module:
        """The most likely action as one module (rl-export): observations to action
        indices, over every action (a legal-action mask is not part of the graph)."""
        return nn.Sequential(Float32Input(), frozen(self.policy), Greedy())

    def _logits(self, obs: np.ndarray) -> np.ndarray:
        if self._numpy_policy is not None:
            return self._numpy_policy(obs).astype(np.float64)
        with torch.inference_mode():
            logits = self.policy(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        return logits.cpu().numpy().astype(np.float64)

    # learning ----------------------------------------------------------------
    def observe(self, step: Transition) -> None:
        for index, episode in enumerate(self.running):
            episode.obs.append(np.asarray(step.obs[index], dtype=self._obs_dtype))
            episode.actions.append(int(step.actions[index]))
            episode.rewards.append(float(step.rewards[index]))
            if step.masks is not None:
                episode.masks.append(np.asarray(step.masks[index], dtype=bool))
        self._ended = np.flatnonzero(step.terminated | step.truncated).tolist()
        self.count.observed(step.terminated, step.truncated)

    def update(self) -> Metrics:
        """One gradient step per episode that ended at the last step."""
        if not self._ended:
            return {}
        burst = [self._learn_from_episode(index) for index in self._ended]
        self._ended = []
        return mean_metrics(burst)

    def _learn_from_episode(self, env_index: int) -> Metrics:
        episode, self.running[env_index] = self.running[env_index], Episode()
        config = self.config
        obs = torch.as_tensor(np.array(episode.obs), device=self.device)
        actions = torch.as_tensor(episode.actions, device=self.device)
        returns = torch.as_tensor(
            discounted_returns(episode.rewards, config.gamma), dtype=torch.float32
        ).to(self.device)
        metrics: Metrics = {}
        weights = returns
        if self.value is not None:
            values = self.value(obs).squeeze(-1)
            weights = returns - values.detach()
            value_loss = F.mse_loss(values, returns)
            assert self._value_parameters is not None and self.value_optimizer is not None
            optimise(value_loss, self._value_parameters, self.value_optimizer)
            metrics["loss/value"] = value_loss.detach()
        if config.normalise_returns:
            weights = normalised(weights)
        masks = (
            torch.as_tensor(np.array(episode.masks), device=self.device) if episode.masks else None
        )
        log_probs = torch.log_softmax(masked_logits(self.policy(obs), masks), dim=1)
        chosen = log_probs.gather(1, actions.unsqueeze(1)).squeeze(1)
        loss = -(chosen * weights).sum()
        optimise(loss, self._policy_parameters, self.optimizer, config.max_grad_norm)
        self.count.updates += 1
        # illegal actions have probability 0 and log-probability -inf: they add nothing
        entropy = -(log_probs.exp() * log_probs).nan_to_num().sum(dim=1).mean()
        return {**metrics, "loss/policy": loss.detach(), "train/entropy": entropy.detach()}

    # reporting and state -----------------------------------------------------
    @property
    def converged(self) -> bool:
        return False

    def diagnostics(self) -> dict[str, float]:
        return {}

    @property
    def counters(self) -> dict[str, int]:
        return self.count.state_dict()

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        state: dict[str, Any] = {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "running_episodes": [episode.state_dict() for episode in self.running],
            "rng": generator_state(self.rng),
            "counters": self.counters,
        }
        if self.value is not None and self.value_optimizer is not None:
            state["value"] = self.value.state_dict()
            state["value_optimizer"] = self.value_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        config = self.config
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        reapply_hyperparameters(self.optimizer, config.lr, 0.0, config.adam_eps)
        if self.value is not None and self.value_optimizer is not None:
            self.value.load_state_dict(state["value"])
            self.value_optimizer.load_state_dict(state["value_optimizer"])
            reapply_hyperparameters(self.value_optimizer, config.baseline_lr, 0.0, 1e-8)
        self.running = [Episode.from_state(episode) for episode in state["running_episodes"]]
        restore_generator_state(self.rng, state["rng"])
        self.count.load_state_dict(state["counters"])


def build(settings: Settings, envs: VectorEnv, device: torch.device) -> Reinforce:
    network: MLPConfig | CNNConfig = settings.network
    if isinstance(network, MLPConfig):
        check_no_action_join(network)
    obs_shape = network_input_shape(settings, envs.single_observation_space)
    num_actions = int(envs.single_action_space.n)  # type: ignore[attr-defined]
    policy = body(obs_shape, network, num_actions)
    value = body(obs_shape, network, 1) if settings.algo.baseline else None
    return Reinforce(settings.algo, policy, value, envs.num_envs, settings.run.seed, device)
