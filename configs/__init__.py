"""The Hydra config tree, shipped inside the package as rl_runner.configs."""
