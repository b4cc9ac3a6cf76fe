"""Typed schemas of the algorithms (the `algo` group), one dataclass each.

Every field says what it is; `__post_init__` refuses values no run could use. The
registry (`rl_runner/registry.py`) pairs each schema with its agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from omegaconf import MISSING

from rl_runner.config.schema import (
    CNNConfig,
    Optimizer,
    require,
    require_non_negative,
    require_positive,
)

if TYPE_CHECKING:
    from rl_runner.config.settings import Settings


class TDLoss(str, Enum):
    huber = "huber"
    mse = "mse"


class EpsilonSchedule(str, Enum):
    linear = "linear"  # start to end over decay_steps, then end
    exponential = "exponential"  # end + (start - end) * exp(-t / decay_steps)
    geometric = "geometric"  # start * factor^t, not below end (seed 003: halved per episode)
    inverse = "inverse"  # start / (t + 1), not below end (seed 003: 0.5 / (episode + 1))


class ScheduleUnit(str, Enum):
    steps = "steps"  # env steps
    episodes = "episodes"  # finished training episodes


def _check_update_schedule(
    random_steps: int, learning_starts: int, train_freq: int, gradient_steps: int
) -> None:
    require(random_steps >= 0, "algo.random_steps", "must be >= 0")
    require(learning_starts >= 0, "algo.learning_starts", "must be >= 0")
    require(train_freq >= 1, "algo.train_freq", "must be >= 1")
    require(gradient_steps >= 1, "algo.gradient_steps", "must be >= 1")


def _check_optional_positive(value: float | None, field_name: str) -> None:
    require(value is None or 0 < value < float("inf"), field_name, "must be finite, > 0 or null")


def _check_gamma(gamma: float) -> None:
    require(0.0 <= gamma <= 1.0, "algo.gamma", f"must be in [0, 1], got {gamma}")


@dataclass
class EpsilonConfig:
    """Exploration rate as a function of env steps or of finished episodes (`unit`)."""

    schedule: EpsilonSchedule = EpsilonSchedule.linear
    start: float = 1.0
    end: float = 0.05
    # linear: units to go from start to end; exponential: the e-folding time
    decay_steps: int = 10_000
    factor: float = 0.5  # geometric: the rate is multiplied by this per unit
    unit: ScheduleUnit = ScheduleUnit.steps

    def __post_init__(self) -> None:
        require(0.0 <= self.end <= 1.0, "algo.epsilon.end", "must be in [0, 1]")
        require(0.0 <= self.start <= 1.0, "algo.epsilon.start", "must be in [0, 1]")
        require(
            self.end <= self.start,
            "algo.epsilon.end",
            f"must not exceed start {self.start} (the rate decays to end), got {self.end}",
        )
        require(self.decay_steps > 0, "algo.epsilon.decay_steps", "must be > 0")
        require(0.0 < self.factor <= 1.0, "algo.epsilon.factor", "must be in (0, 1]")


@dataclass
class DQNConfig:
    """Deep Q-Network (Mnih et al. 2015) with the usual knobs."""

    name: str = "dqn"
    lr: float = 1e-4
    # linear learning-rate decay from lr to lr_end over lr_decay_steps env steps,
    # then constant; null keeps lr constant
    lr_end: float = 0.0
    lr_decay_steps: int | None = None
    optimizer: Optimizer = Optimizer.adam
    amsgrad: bool = False  # Adam/AdamW only
    weight_decay: float = 0.0
    adam_eps: float = 1e-8
    gamma: float = 0.99
    # env steps of uniformly random actions before the Q-network picks actions
    random_steps: int = 0
    # env steps collected before the first gradient update
    learning_starts: int = 1000
    # gradient_steps updates are made every train_freq env steps
    train_freq: int = 1
    gradient_steps: int = 1
    # every target_update_every env steps (or finished episodes, target_update_unit):
    # target <- tau*online + (1-tau)*target (tau = 1 is a hard copy)
    target_update_every: int = 1
    target_update_unit: ScheduleUnit = ScheduleUnit.steps
    target_tau: float = 1.0
    epsilon: EpsilonConfig = field(default_factory=EpsilonConfig)
    loss: TDLoss = TDLoss.huber
    double_dqn: bool = False
    # gradient clipping; null disables each
    max_grad_norm: float | None = 10.0
    grad_clip_value: float | None = None

    def __post_init__(self) -> None:
        require_positive(self.lr, "algo.lr")
        require_non_negative(self.lr_end, "algo.lr_end")
        require_non_negative(self.weight_decay, "algo.weight_decay")
        require_positive(self.adam_eps, "algo.adam_eps")
        require(
            self.lr_decay_steps is None or self.lr_decay_steps > 0,
            "algo.lr_decay_steps",
            "must be > 0 or null",
        )
        _check_gamma(self.gamma)
        _check_update_schedule(
            self.random_steps, self.learning_starts, self.train_freq, self.gradient_steps
        )
        require(self.target_update_every >= 1, "algo.target_update_every", "must be >= 1")
        require(0.0 < self.target_tau <= 1.0, "algo.target_tau", "must be in (0, 1]")
        _check_optional_positive(self.max_grad_norm, "algo.max_grad_norm")
        _check_optional_positive(self.grad_clip_value, "algo.grad_clip_value")


@dataclass
class ActorCriticConfig:
    """What DDPG, TD3 and SAC share: an off-policy actor and critic on a replay memory.

    Actions are learnt in [-1, 1] per dimension and scaled to the env's bounds, so
    every noise scale below is a fraction of each dimension's half-range.
    """

    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    optimizer: Optimizer = Optimizer.adam
    amsgrad: bool = False  # Adam/AdamW only
    actor_weight_decay: float = 0.0
    critic_weight_decay: float = 0.0
    adam_eps: float = 1e-8
    gamma: float = 0.99
    tau: float = 0.005  # target <- tau * online + (1 - tau) * target after each update
    # env steps of uniformly random actions (from the agent's own generator) first
    random_steps: int = 25_000
    # env steps collected before the first gradient update (the presets make it
    # ${.random_steps}: learning starts when the random phase ends)
    learning_starts: int = 25_000
    # gradient_steps updates every train_freq env steps
    train_freq: int = 1
    gradient_steps: int = 1
    max_grad_norm: float | None = None  # clip each network's gradient norm; null: no clip
    # float32 matrix products in updates (torch.set_float32_matmul_precision): highest is
    # exact float32 (MKL's kernels on the CPU); medium lets oneDNN compute them in
    # bfloat16, which it does with AMX (3-4x faster); on AMD Zen 5 (AVX-512 BF16, no AMX)
    # its products measured exact float32, 1.5-1.8x as fast as MKL's there; auto picks
    # medium where the CPU has bfloat16 instructions
    matmul_precision: str = "auto"

    def __post_init__(self) -> None:
        require(
            self.matmul_precision in ("auto", "highest", "high", "medium"),
            "algo.matmul_precision",
            f"must be auto, highest, high or medium, got {self.matmul_precision!r}",
        )
        require_positive(self.actor_lr, "algo.actor_lr")
        require_positive(self.critic_lr, "algo.critic_lr")
        require_non_negative(self.actor_weight_decay, "algo.actor_weight_decay")
        require_non_negative(self.critic_weight_decay, "algo.critic_weight_decay")
        require_positive(self.adam_eps, "algo.adam_eps")
        _check_gamma(self.gamma)
        require(0.0 < self.tau <= 1.0, "algo.tau", f"must be in (0, 1], got {self.tau}")
        _check_update_schedule(
            self.random_steps, self.learning_starts, self.train_freq, self.gradient_steps
        )
        _check_optional_positive(self.max_grad_norm, "algo.max_grad_norm")


@dataclass
class DDPGConfig(ActorCriticConfig):
    """DDPG (Lillicrap et al., 2016) as in Fujimoto's reference code: one critic,
    Gaussian exploration noise, soft target updates after every gradient step."""

    name: str = "ddpg"
    exploration_noise: float = 0.1  # std of the Gaussian added to the actor's action

    def __post_init__(self) -> None:
        super().__post_init__()
        require_non_negative(self.exploration_noise, "algo.exploration_noise")


@dataclass
class TD3Config(ActorCriticConfig):
    """TD3 (Fujimoto et al., 2018): twin critics, target policy smoothing, delayed
    actor and target updates. Defaults as the paper and CleanRL."""

    name: str = "td3"
    exploration_noise: float = 0.1  # std of the Gaussian added to the actor's action
    policy_noise: float = 0.2  # std of the target policy smoothing noise
    noise_clip: float = 0.5  # the smoothing noise is clipped to [-noise_clip, noise_clip]
    policy_delay: int = 2  # critic updates per actor (and target) update

    def __post_init__(self) -> None:
        super().__post_init__()
        require_non_negative(self.exploration_noise, "algo.exploration_noise")
        require_non_negative(self.policy_noise, "algo.policy_noise")
        require_non_negative(self.noise_clip, "algo.noise_clip")
        require(self.policy_delay >= 1, "algo.policy_delay", "must be >= 1")


@dataclass
class SACConfig(ActorCriticConfig):
    """SAC (Haarnoja et al., 2018, with automatic temperature): squashed-Gaussian
    actor, twin critics, entropy bonus. Defaults as Stable-Baselines3 and CleanRL."""

    name: str = "sac"
    random_steps: int = 5_000
    learning_starts: int = 5_000
    # the entropy temperature; null learns it towards target_entropy
    alpha: float | None = None
    alpha_init: float = 1.0  # the learnt temperature's starting value
    alpha_lr: float = 3e-4
    target_entropy: float | None = None  # null: -(action dimensions)
    # critic updates per actor and temperature update
    policy_delay: int = 1
    log_std_min: float = -20.0  # the actor's log standard deviation is clamped to these
    log_std_max: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            self.alpha is None or 0 <= self.alpha < float("inf"),
            "algo.alpha",
            "must be finite, >= 0 or null (learnt)",
        )
        require_positive(self.alpha_init, "algo.alpha_init")
        require_positive(self.alpha_lr, "algo.alpha_lr")
        require(
            self.target_entropy is None or abs(self.target_entropy) < float("inf"),
            "algo.target_entropy",
            "must be finite or null",
        )
        require(self.policy_delay >= 1, "algo.policy_delay", "must be >= 1")
        for name in ("log_std_min", "log_std_max"):
            value = getattr(self, name)
            require(abs(value) < float("inf"), f"algo.{name}", f"must be finite, got {value}")
        require(
            self.log_std_min < self.log_std_max,
            "algo.log_std_min",
            f"must be below algo.log_std_max {self.log_std_max}",
        )


def _tabular_epsilon() -> EpsilonConfig:
    """Seed 003's maze: 0.5, halved after every episode."""
    return EpsilonConfig(
        EpsilonSchedule.geometric, start=0.5, end=0.0, factor=0.5, unit=ScheduleUnit.episodes
    )


@dataclass
class TabularTDConfig:
    """Tabular temporal-difference control, one value per (state, action); seed 003's
    maze defaults. Needs discrete observations (a Box one through a discretiser)."""

    name: str = MISSING
    lr: float = 0.1  # eta: each update moves Q(s, a) this fraction towards its target
    gamma: float = 0.9
    # initial values uniform in [0, q_init_high) as in the tutorial; 0 starts at zeros
    q_init_high: float = 1.0
    # explores uniformly among the legal actions with this probability
    epsilon: EpsilonConfig = field(default_factory=_tabular_epsilon)

    def __post_init__(self) -> None:
        require(0.0 < self.lr <= 1.0, "algo.lr", f"must be in (0, 1], got {self.lr}")
        _check_gamma(self.gamma)
        require_non_negative(self.q_init_high, "algo.q_init_high")


@dataclass
class QLearningConfig(TabularTDConfig):
    """Q-learning: the target bootstraps from the best legal next action."""

    name: str = "q_learning"


@dataclass
class SARSAConfig(TabularTDConfig):
    """SARSA: the target bootstraps from the next action the policy actually takes."""

    name: str = "sarsa"


@dataclass
class TabularPGConfig:
    """Seed 003's policy gradient on a table: pi(a|s) = softmax(beta * theta[s]) over
    the legal actions, theta moved after each episode by its state-action counts."""

    name: str = "tabular_pg"
    lr: float = 0.1  # eta: theta += lr * (N(s, a) - pi(a|s) N(s)) / T
    beta: float = 1.0  # inverse temperature of the softmax
    theta_init: float = 1.0  # every legal move starts equal, as the tutorial's theta_0
    # stop the run once an episode's update changes the policy by less than this (sum of
    # absolute changes over the table, the tutorial's 1e-4); null never stops early
    stop_delta: float | None = 1e-4

    def __post_init__(self) -> None:
        require_positive(self.lr, "algo.lr")
        require_positive(self.beta, "algo.beta")
        require(abs(self.theta_init) < float("inf"), "algo.theta_init", "must be finite")
        _check_optional_positive(self.stop_delta, "algo.stop_delta")


@dataclass
class ReinforceConfig:
    """REINFORCE (Williams, 1992) as seed 003 teaches it: a softmax policy learnt from
    each finished episode's Monte-Carlo returns, optionally against a learnt baseline."""

    name: str = "reinforce"
    # the tutorial's code uses 1e-4 and its text finds 3e-4 better; 3e-4 is the default
    lr: float = 3e-4
    optimizer: Optimizer = Optimizer.adam
    adam_eps: float = 1e-8
    gamma: float = 0.9  # discount of the returns G_t (the tutorial's 0.9)
    # per episode: (G - mean) / (std + 1e-9), of the advantages when there is a baseline
    # (a one-step episode's is kept as it is: it has no spread)
    normalise_returns: bool = True
    # a learnt state value V(s) (an MLP shaped as the policy) subtracted from G_t
    baseline: bool = False
    baseline_lr: float = 1e-3
    max_grad_norm: float | None = None  # clip the policy's gradient norm; null: no clip

    def __post_init__(self) -> None:
        require_positive(self.lr, "algo.lr")
        require_positive(self.adam_eps, "algo.adam_eps")
        require_positive(self.baseline_lr, "algo.baseline_lr")
        _check_gamma(self.gamma)
        _check_optional_positive(self.max_grad_norm, "algo.max_grad_norm")


class AnnealSchedule(str, Enum):
    constant = "constant"
    linear = "linear"  # from the set value at step 0 to 0 at trainer.total_steps


@dataclass
class OnPolicyConfig:
    """What PPO and A2C share: an actor-critic learnt from rollouts of n_steps steps of
    every env (n_steps * env.num_envs transitions), advantages by GAE(lambda).

    Discrete actions: a categorical policy; Box actions: a diagonal Gaussian with a
    learnt, state-independent log standard deviation, its samples clipped to the env's
    bounds when stepping (the unclipped sample is what the log-probability is of).
    """

    name: str = MISSING
    lr: float = 3e-4
    lr_schedule: AnnealSchedule = AnnealSchedule.constant
    optimizer: Optimizer = Optimizer.adam
    adam_eps: float = 1e-5  # the optimiser's epsilon (RMSprop's too)
    n_steps: int = 2048  # env steps per env in each rollout
    gamma: float = 0.99
    gae_lambda: float = 0.95  # 1.0: n-step returns (A2C's default)
    ent_coef: float = 0.0  # weight of the entropy bonus
    vf_coef: float = 0.5  # weight of the value loss
    max_grad_norm: float | None = 0.5  # clip the global gradient norm; null: no clip
    normalize_advantage: bool = True  # per minibatch: (A - mean) / (std + 1e-8)
    # running mean/std of observations, and of discounted returns that rewards are
    # divided by (SB3's VecNormalize); frozen during evaluation and rendering
    normalize_observations: bool = False
    normalize_rewards: bool = False
    clip_observations: float = 10.0  # normalised observations are clipped to +-this
    clip_rewards: float = 10.0  # normalised rewards are clipped to +-this
    # one trunk for policy and value (their outputs share a last layer) instead of two
    shared_trunk: bool = False
    log_std_init: float = 0.0  # Box actions: the Gaussian's initial log standard deviation
    ortho_init: bool = True  # orthogonal weights (gain sqrt 2; policy head 0.01, value 1)

    def __post_init__(self) -> None:
        require_positive(self.lr, "algo.lr")
        require_positive(self.adam_eps, "algo.adam_eps")
        require(self.n_steps >= 1, "algo.n_steps", "must be >= 1")
        _check_gamma(self.gamma)
        require(0.0 <= self.gae_lambda <= 1.0, "algo.gae_lambda", "must be in [0, 1]")
        require_non_negative(self.ent_coef, "algo.ent_coef")
        require_non_negative(self.vf_coef, "algo.vf_coef")
        _check_optional_positive(self.max_grad_norm, "algo.max_grad_norm")
        require_positive(self.clip_observations, "algo.clip_observations")
        require_positive(self.clip_rewards, "algo.clip_rewards")
        require(abs(self.log_std_init) < float("inf"), "algo.log_std_init", "must be finite")


@dataclass
class PPOConfig(OnPolicyConfig):
    """PPO (Schulman et al., 2017): the clipped surrogate objective, n_epochs passes over
    each rollout in minibatches of batch_size. Defaults as SB3 and CleanRL's MuJoCo."""

    name: str = "ppo"
    lr_schedule: AnnealSchedule = AnnealSchedule.linear
    n_epochs: int = 10
    batch_size: int = 64  # minibatch size; n_steps * num_envs must be a multiple of it
    clip_range: float = 0.2
    clip_range_schedule: AnnealSchedule = AnnealSchedule.constant
    # the value loss clipped around the rollout's values by this (CleanRL's clip_vloss
    # with the clip range); null: not clipped (SB3's default)
    clip_range_vf: float | None = None
    # stop a rollout's epochs once the approximate KL to the rollout's policy passes
    # 1.5 * target_kl (SB3's rule); null: all epochs
    target_kl: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.n_epochs >= 1, "algo.n_epochs", "must be >= 1")
        require(self.batch_size >= 1, "algo.batch_size", "must be >= 1")
        require(0.0 < self.clip_range < float("inf"), "algo.clip_range", "must be > 0")
        _check_optional_positive(self.clip_range_vf, "algo.clip_range_vf")
        _check_optional_positive(self.target_kl, "algo.target_kl")


@dataclass
class A2CConfig(OnPolicyConfig):
    """A2C (Mnih et al., 2016, synchronous): one gradient step on each rollout of
    n-step advantages. Defaults as SB3 (RMSprop, 5 steps, lr 7e-4)."""

    name: str = "a2c"
    lr: float = 7e-4
    optimizer: Optimizer = Optimizer.rmsprop
    n_steps: int = 5
    gae_lambda: float = 1.0
    normalize_advantage: bool = False


def check_rollout(settings: Settings) -> None:
    """An on-policy run's rollout against its envs and length, and its observations."""
    algo, num_envs = settings.algo, settings.env.num_envs
    require(
        not (algo.normalize_observations and isinstance(settings.network, CNNConfig)),
        "algo.normalize_observations",
        f"network={settings.network.name} reads images, scaled to [0, 1] inside it: "
        "set algo.normalize_observations=false",
    )
    rollout = algo.n_steps * num_envs
    total = settings.run.trainer.total_steps
    require(
        rollout <= total,
        "algo.n_steps",
        f"{algo.n_steps} steps x env.num_envs {num_envs} = {rollout} is more than "
        f"trainer.total_steps {total}: the run would end before its first update",
    )
    batch_size = getattr(algo, "batch_size", None)
    if batch_size is not None:
        require(
            batch_size <= rollout,
            "algo.batch_size",
            f"{batch_size} is larger than a rollout (algo.n_steps {algo.n_steps} x "
            f"env.num_envs {num_envs} = {rollout})",
        )
        divisors = [size for size in range(batch_size, 0, -1) if rollout % size == 0]
        require(
            rollout % batch_size == 0,
            "algo.batch_size",
            f"{batch_size} does not divide a rollout of {rollout} (algo.n_steps x "
            f"env.num_envs): each epoch would end on a minibatch of {rollout % batch_size}; "
            f"{divisors[0]} does",
        )
        require(
            batch_size > 1 or not algo.normalize_advantage,
            "algo.batch_size",
            "must be > 1 with algo.normalize_advantage (a single advantage has no spread)",
        )
