"""TD3: Twin Delayed Deep Deterministic policy gradient (Fujimoto et al., 2018).

for every env step:
    a = uniform in [-1, 1] for the first random_steps, else clip(mu(s) + N(0, exploration_noise))
    store (s, a, r, s', terminated) in the replay memory (actions normalised to [-1, 1])
    every train_freq steps (from learning_starts on), gradient_steps times:
        sample a batch
        a' = clip(mu_target(s') + clip(N(0, policy_noise), -noise_clip, noise_clip))
        y = r + gamma * (1 - terminated) * min(Q1_target(s', a'), Q2_target(s', a'))
        minimise (Q1(s, a) - y)^2 + (Q2(s, a) - y)^2       (both critics in one batched call)
        every policy_delay-th update:
            maximise Q1(s, mu(s)) over the actor
            targets <- tau * online + (1 - tau) * targets
"""

from __future__ import annotations

import numpy as np
import torch

from rl_runner.agents.base import Metrics
from rl_runner.agents.off_policy_actor_critic import ActorCriticAgent, gaussian_exploration
from rl_runner.buffers.replay import ReplayBatch
from rl_runner.config.algorithms import TD3Config


class TD3(ActorCriticAgent):
    config: TD3Config
    critics = 2

    def _explore(self, raw: np.ndarray) -> np.ndarray:
        return gaussian_exploration(raw, self.config.exploration_noise, self.rng)

    def _exploit(self, raw: np.ndarray) -> np.ndarray:
        return np.tanh(raw)

    def _gradient_step(self, batch: ReplayBatch) -> Metrics:
        config = self.config
        assert self.actor is not None
        with torch.no_grad():
            noise = self.standard_normal(batch.actions.shape).mul_(config.policy_noise)
            noise.clamp_(-config.noise_clip, config.noise_clip)
            next_actions = (torch.tanh(self.actor.target(batch.next_obs)[0]) + noise).clamp_(-1, 1)
            next_q = self.critic.target(batch.next_obs, next_actions).amin(dim=0).squeeze(-1)
            target = self._td_target(batch, next_q)
        q = self.critic.online(batch.obs, batch.actions).squeeze(-1)  # (2, batch)
        critic_loss = (q - target).square().mean(dim=1).sum()
        self._optimise_critic(critic_loss)
        self.updates += 1
        metrics: Metrics = {"loss/critic": critic_loss.detach(), "train/q_mean": q.detach().mean()}
        if self.updates % config.policy_delay == 0:
            actions = torch.tanh(self.actor.online(batch.obs)[0])
            q1 = self.critic.online(batch.obs, actions, first=1, detach_weights=True)
            actor_loss = -q1.mean()
            self._optimise_actor(actor_loss)
            self._update_targets()
            metrics["loss/actor"] = actor_loss.detach()
        return metrics


build = TD3.from_settings
