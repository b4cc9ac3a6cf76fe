# Every target installs what it needs into .venv first (fresh machines included).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE_INSTALLED := $(VENV)/.base-installed
INSTALLED := $(VENV)/.installed
BENCH_INSTALLED := $(VENV)/.bench-installed

.PHONY: setup run test test-fast lint bench clean

# What the default job needs: the package alone (no launchers, no test tools).
$(BASE_INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# The CPU build first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e .
	touch $@

# Everything the README's commands and the tests use: video, ONNX export, MLflow, W&B,
# Atari, launchers, pytest.
$(INSTALLED): $(BASE_INSTALLED)
	$(BIN)/pip install -e '.[test,video,export,mlflow,wandb,atari,sweep,slurm,ray]'
	touch $@

$(BENCH_INSTALLED): $(INSTALLED)
	$(BIN)/pip install -e '.[test,video,export,mlflow,wandb,atari,sweep,slurm,ray,bench,bench-sbx]'
	touch $@

setup: $(INSTALLED)

run: $(BASE_INSTALLED)  ## train DQN on CartPole-v1 with the default preset
	$(BIN)/rl-run algo=dqn env=cartpole

# One pytest worker per core (the tests are mostly rl-run subprocesses of one thread);
# tests that share a service (a Ray head) are grouped onto one worker.
PYTEST := $(BIN)/python -m pytest -n auto --dist loadgroup

test: $(INSTALLED)  ## the whole suite, learning checks included
	$(PYTEST)

test-fast: $(INSTALLED)  ## skip the long learning checks
	$(PYTEST) -m "not slow"

lint: $(INSTALLED)
	$(BIN)/ruff check rl_runner tests benchmarks
	$(BIN)/ruff format --check rl_runner tests benchmarks
	$(BIN)/mypy rl_runner

bench: $(BENCH_INSTALLED)  ## our DQN, TD3 and SAC vs Stable-Baselines3's and SBX's, steps/s
	$(BIN)/python benchmarks/dqn_cartpole_vs_sb3.py
	$(BIN)/python benchmarks/actor_critic_vs_sb3.py

clean:
	rm -rf $(VENV) build *.egg-info
