"""PPO (Schulman et al., 2017), clipped surrogate objective, as SB3 and CleanRL:

for each full rollout (on_policy.py collects it, with GAE advantages A and returns R):
    for n_epochs epochs, for each minibatch of batch_size (a fresh permutation per epoch):
        ratio = pi(a|s) / pi_old(a|s)
        A = (A - mean A) / (std A + 1e-8)                     (normalize_advantage)
        L_clip = mean(max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)))
        L_value = mean((V(s) - R)^2), or with V clipped around V_old by clip_range_vf
                  (the larger of the two errors, as CleanRL)
        minimise L_clip - ent_coef * entropy + vf_coef * L_value   (global norm clipped)
        stop the epochs once approx KL > 1.5 * target_kl           (target_kl set)

The learning rate and eps anneal linearly to 0 at trainer.total_steps where their
schedule is linear.
"""

from __future__ import annotations

import torch

from rl_runner.agents.base import Metrics
from rl_runner.agents.common import mean_metrics
from rl_runner.agents.on_policy import OnPolicyAgent, build_network, normalised_advantages
from rl_runner.config.algorithms import PPOConfig
from rl_runner.config.settings import Settings
from rl_runner.envs.batch import VectorEnv


class PPO(OnPolicyAgent):
    config: PPOConfig

    @property
    def clip_range(self) -> float:
        return self.annealed(self.config.clip_range, self.config.clip_range_schedule)

    def _learn(self, batch: dict[str, torch.Tensor]) -> Metrics:
        config = self.config
        clip = self.clip_range
        size = len(batch["obs"])
        burst: list[Metrics] = []
        for _ in range(config.n_epochs):
            order = torch.from_numpy(self.rng.permutation(size)).to(self.device)
            for start in range(0, size, config.batch_size):
                metrics = self._minibatch_step(
                    {
                        key: value[order[start : start + config.batch_size]]
                        for key, value in batch.items()
                    },
                    clip,
                )
                if metrics is None:  # past the KL limit: this rollout's learning ends
                    return {**mean_metrics(burst), "train/early_stop": 1.0}
                burst.append(metrics)
        return {**mean_metrics(burst), "train/early_stop": 0.0}

    def _minibatch_step(self, minibatch: dict[str, torch.Tensor], clip: float) -> Metrics | None:
        config = self.config
        log_probs, entropy, values = self.network.evaluate(minibatch["obs"], minibatch["actions"])
        log_ratio = log_probs - minibatch["log_probs"]
        ratio = log_ratio.exp()
        with torch.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean()  # Schulman's low-variance estimator
            clip_fraction = ((ratio - 1).abs() > clip).float().mean()
        if config.target_kl is not None and float(approx_kl) > 1.5 * config.target_kl:
            return None
        advantages = minibatch["advantages"]
        if config.normalize_advantage:
            advantages = normalised_advantages(advantages)
        policy_loss = torch.max(
            -advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip)
        ).mean()
        value_loss = self._value_loss(values, minibatch["values"], minibatch["returns"])
        entropy_mean = entropy.mean()
        loss = policy_loss - config.ent_coef * entropy_mean + config.vf_coef * value_loss
        self.optimise(loss)
        return {
            "loss/policy": policy_loss.detach(),
            "loss/value": value_loss.detach(),
            "loss/entropy": entropy_mean.detach(),
            "train/approx_kl": approx_kl,
            "train/clip_fraction": clip_fraction,
            "train/clip_range": clip,
        }

    def _value_loss(
        self, values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor
    ) -> torch.Tensor:
        errors = (values - returns).pow(2)
        limit = self.config.clip_range_vf
        if limit is None:
            return errors.mean()
        clipped = old_values + (values - old_values).clamp(-limit, limit)
        return torch.max(errors, (clipped - returns).pow(2)).mean()


def build(settings: Settings, envs: VectorEnv, device: torch.device) -> PPO:
    total = settings.run.trainer.total_steps
    return PPO(settings.algo, build_network(settings, envs), envs, total, settings.run.seed, device)
