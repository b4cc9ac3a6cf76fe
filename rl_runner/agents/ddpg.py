"""DDPG: Deep Deterministic Policy Gradient (Lillicrap et al., 2016), as in Fujimoto's
reference implementation that seed 001 follows.

for every env step:
    a = uniform in [-1, 1] for the first random_steps, else clip(mu(s) + N(0, exploration_noise))
    store (s, a, r, s', terminated) in the replay memory (actions normalised to [-1, 1])
    every train_freq steps (from learning_starts on), gradient_steps times:
        sample a batch
        y = r + gamma * (1 - terminated) * Q_target(s', mu_target(s'))
        minimise (Q(s, a) - y)^2
        maximise Q(s, mu(s)) over the actor
        targets <- tau * online + (1 - tau) * targets
"""

from __future__ import annotations

import numpy as np
import torch

from rl_runner.agents.base import Metrics
from rl_runner.agents.off_policy_actor_critic import ActorCriticAgent, gaussian_exploration
from rl_runner.buffers.replay import ReplayBatch
from rl_runner.config.algorithms import DDPGConfig


class DDPG(ActorCriticAgent):
    config: DDPGConfig
    critics = 1

    def _explore(self, raw: np.ndarray) -> np.ndarray:
        return gaussian_exploration(raw, self.config.exploration_noise, self.rng)

    def _exploit(self, raw: np.ndarray) -> np.ndarray:
        return np.tanh(raw)

    def _gradient_step(self, batch: ReplayBatch) -> Metrics:
        assert self.actor is not None
        with torch.no_grad():
            next_actions = torch.tanh(self.actor.target(batch.next_obs)[0])
            next_q = self.critic.target(batch.next_obs, next_actions)[0].squeeze(-1)
            target = self._td_target(batch, next_q)
        q = self.critic.online(batch.obs, batch.actions)[0].squeeze(-1)
        critic_loss = (q - target).square().mean()
        self._optimise_critic(critic_loss)
        actions = torch.tanh(self.actor.online(batch.obs)[0])
        actor_loss = -self.critic.online(batch.obs, actions, detach_weights=True).mean()
        self._optimise_actor(actor_loss)
        self._update_targets()
        self.updates += 1
        return {
            "loss/critic": critic_loss.detach(),
            "loss/actor": actor_loss.detach(),
            "train/q_mean": q.detach().mean(),
        }


build = DDPG.from_settings
