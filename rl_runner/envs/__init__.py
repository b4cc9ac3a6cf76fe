"""Environments. Importing the package registers rl-runner's own environments with
Gymnasium, under the `rl_runner/` namespace."""

from gymnasium.envs.registration import register, registry

MAZE_ID = "rl_runner/Maze-v0"
DISCRETISED_ID = "rl_runner/Discretised-v0"
CARTPOLE_PIXELS_ID = "rl_runner/CartPolePixels-v0"
CARTPOLE_SHAPED_ID = "rl_runner/CartPoleShaped-v0"

if MAZE_ID not in registry:
    # A wandering policy can circle for ever: the time limit ends such episodes.
    register(id=MAZE_ID, entry_point="rl_runner.envs.maze:MazeEnv", max_episode_steps=100)
if DISCRETISED_ID not in registry:
    register(id=DISCRETISED_ID, entry_point="rl_runner.envs.discretise:make_discretised")
if CARTPOLE_PIXELS_ID not in registry:
    register(id=CARTPOLE_PIXELS_ID, entry_point="rl_runner.envs.pixels:make_cartpole_pixels")
if CARTPOLE_SHAPED_ID not in registry:
    register(id=CARTPOLE_SHAPED_ID, entry_point="rl_runner.envs.shaping:make_shaped_cartpole")
