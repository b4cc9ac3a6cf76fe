"""rl-runner: a config-driven reinforcement-learning experiment runner."""

__version__ = "0.1.0"
