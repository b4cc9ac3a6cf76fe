"""SAC: Soft Actor-Critic (Haarnoja et al., 2018), with automatic entropy tuning.

for every env step:
    a = uniform in [-1, 1] for the first random_steps, else tanh(u), u ~ N(mu(s), sigma(s))
    store (s, a, r, s', terminated) in the replay memory (actions normalised to [-1, 1])
    every train_freq steps (from learning_starts on), gradient_steps times:
        sample a batch; a' ~ pi(s') with log-probability log pi(a'|s')
        y = r + gamma * (1 - terminated) * (min Q_target(s', a') - alpha * log pi(a'|s'))
        minimise 0.5 * ((Q1(s, a) - y)^2 + (Q2(s, a) - y)^2)   (both critics in one batched call)
        every policy_delay-th update:
            a~ ~ pi(s) (reparameterised); minimise alpha * log pi(a~|s) - min(Q1, Q2)(s, a~)
            learnt alpha: minimise -log_alpha * (log pi(a~|s) + target_entropy)
        critic targets <- tau * online + (1 - tau) * targets
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rl_runner.agents.base import Metrics
from rl_runner.agents.common import make_optimizer, reapply_hyperparameters
from rl_runner.agents.off_policy_actor_critic import ActorCriticAgent
from rl_runner.buffers.replay import ReplayBatch
from rl_runner.config.algorithms import SACConfig

_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class SAC(ActorCriticAgent):
    config: SACConfig
    critics = 2
    actor_outputs_per_dimension = 2  # mean and log standard deviation
    uses_actor_target = False

    def __init__(self, config: SACConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        dimensions = self.scaler.dimensions
        self.target_entropy = (
            -float(dimensions) if config.target_entropy is None else config.target_entropy
        )
        # log(alpha) is learnt, so alpha stays positive
        self.log_alpha = torch.nn.Parameter(
            torch.tensor([math.log(config.alpha_init)], device=self.device)
        )
        self.alpha_optimizer = (
            make_optimizer("adam", [self.log_alpha], lr=config.alpha_lr, eps=config.adam_eps)
            if config.alpha is None
            else None
        )

    @property
    def alpha(self) -> float | torch.Tensor:
        if self.config.alpha is not None:
            return self.config.alpha
        return self.log_alpha.detach().exp()

    # acting ------------------------------------------------------------------
    def _mean_and_log_std(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, log_std = np.split(raw, 2, axis=-1)
        return mean, np.clip(log_std, self.config.log_std_min, self.config.log_std_max)

    def _explore(self, raw: np.ndarray) -> np.ndarray:
        mean, log_std = self._mean_and_log_std(raw)
        return np.tanh(mean + np.exp(log_std) * self.rng.standard_normal(mean.shape))

    def _exploit(self, raw: np.ndarray) -> np.ndarray:
        mean, _ = self._mean_and_log_std(raw)
        return np.tanh(mean)

    def _sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised tanh-Gaussian actions and their log-probabilities."""
        mean, log_std = self.actor_network(obs)[0].chunk(2, dim=-1)
        log_std = log_std.clamp(self.config.log_std_min, self.config.log_std_max)
        noise = self.standard_normal(mean.shape)
        pre_tanh = mean + log_std.exp() * noise
        # log N(u; mean, std) - log |d tanh(u) / du|, the latter written stably:
        # log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u))
        log_prob = (-0.5 * noise.square() - log_std - _HALF_LOG_2PI).sum(dim=-1)
        log_prob = log_prob - (2.0 * (_LOG_2 - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(dim=-1)
        return torch.tanh(pre_tanh), log_prob

    # learning ----------------------------------------------------------------
    def _gradient_step(self, batch: ReplayBatch) -> Metrics:
        config = self.config
        alpha = self.alpha
        with torch.no_grad():
            next_actions, next_log_prob = self._sample(batch.next_obs)
            next_q = self.critic.target(batch.next_obs, next_actions).amin(dim=0).squeeze(-1)
            target = self._td_target(batch, next_q - alpha * next_log_prob)
        q = self.critic.online(batch.obs, batch.actions).squeeze(-1)  # (2, batch)
        critic_loss = 0.5 * (q - target).square().mean(dim=1).sum()
        self._optimise_critic(critic_loss)
        self.updates += 1
        metrics: Metrics = {"loss/critic": critic_loss.detach(), "train/q_mean": q.detach().mean()}
        if self.updates % config.policy_delay == 0:
            metrics.update(self._actor_and_temperature_step(batch.obs, alpha))
        self.critic.update_target(config.tau)
        return metrics

    def _actor_and_temperature_step(
        self, obs: torch.Tensor, alpha: float | torch.Tensor
    ) -> Metrics:
        actions, log_prob = self._sample(obs)
        q = self.critic.online(obs, actions, detach_weights=True).amin(dim=0).squeeze(-1)
        actor_loss = (alpha * log_prob - q).mean()
        self._optimise_actor(actor_loss)
        metrics: Metrics = {
            "loss/actor": actor_loss.detach(),
            "train/entropy": -log_prob.detach().mean(),
        }
        if self.alpha_optimizer is not None:
            alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
            self.alpha_optimizer.zero_grad()
            alpha_loss.backward()
            self.alpha_optimizer.step()
            metrics["loss/alpha"] = alpha_loss.detach()
        return metrics

    # reporting and state -----------------------------------------------------
    def diagnostics(self) -> dict[str, float]:
        return {"train/alpha": float(self.alpha)}

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        state = super().state_dict(include_replay)
        state["log_alpha"] = self.log_alpha.detach().clone()
        if self.alpha_optimizer is not None:
            state["alpha_optimizer"] = self.alpha_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        if self.alpha_optimizer is not None:
            self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
            config = self.config
            reapply_hyperparameters(self.alpha_optimizer, config.alpha_lr, 0.0, config.adam_eps)


build = SAC.from_settings
