"""A2C (Mnih et al., 2016), the synchronous advantage actor-critic, as SB3:

for each full rollout of n_steps steps of every env (on_policy.py collects it, with
advantages A by GAE(lambda); lambda = 1 gives the n-step returns R):
    L_policy = -mean(A * log pi(a|s))        (A normalised where normalize_advantage)
    L_value  = mean((V(s) - R)^2)
    one gradient step on L_policy - ent_coef * entropy + vf_coef * L_value
              (RMSprop by default; the global gradient norm clipped)
"""

from __future__ import annotations

import torch

from rl_runner.agents.base import Metrics
from rl_runner.agents.on_policy import OnPolicyAgent, build_network, normalised_advantages
from rl_runner.config.algorithms import A2CConfig
from rl_runner.config.settings import Settings
from rl_runner.envs.batch import VectorEnv


class A2C(OnPolicyAgent):
    config: A2CConfig

    def _learn(self, batch: dict[str, torch.Tensor]) -> Metrics:
        config = self.config
        log_probs, entropy, values = self.network.evaluate(batch["obs"], batch["actions"])
        advantages = batch["advantages"]
        if config.normalize_advantage:
            advantages = normalised_advantages(advantages)
        policy_loss = -(advantages * log_probs).mean()
        value_loss = (values - batch["returns"]).pow(2).mean()
        entropy_mean = entropy.mean()
        self.optimise(policy_loss - config.ent_coef * entropy_mean + config.vf_coef * value_loss)
        return {
            "loss/policy": policy_loss.detach(),
            "loss/value": value_loss.detach(),
            "loss/entropy": entropy_mean.detach(),
        }


def build(settings: Settings, envs: VectorEnv, device: torch.device) -> A2C:
    total = settings.run.trainer.total_steps
    return A2C(settings.algo, build_network(settings, envs), envs, total, settings.run.seed, device)
