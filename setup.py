"""Package discovery: every `rl_runner*` package under the source tree, plus the
top-level config tree mapped to `rl_runner.configs` (see pyproject.toml)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["rl_runner", "rl_runner.*"]), "rl_runner.configs"])
