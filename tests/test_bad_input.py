"""Hostile invocations: each gets one line naming the problem, the documented exit
status, no traceback, no stray directory, and leaves every existing run untouched."""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from conftest import rl_run, tree_digest

REFUSED = 2  # rl_runner.errors.EXIT_REFUSED


@dataclass
class Case:
    args: list[str]
    mentions: str
    # Turns the shared copy of a finished run into the broken run this case needs.
    damage: Callable[[Path], None] | None = None
    absent: list[str] = field(default_factory=list)  # words the line must not contain


def truncate_newest_checkpoint(run: Path) -> None:
    newest = run / "checkpoints" / "step_0000003000.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])


def random_bytes_checkpoint(run: Path) -> None:
    (run / "checkpoints" / "step_0000003000.pt").write_bytes(bytes(range(256)) * 8)


def pickle_checkpoint(run: Path) -> None:
    (run / "checkpoints" / "step_0000003000.pt").write_bytes(pickle.dumps({"format": 1}))


def malformed_saved_config(run: Path) -> None:
    (run / ".hydra" / "config.yaml").write_text("algo: {name: dqn\n  lr: [\n")


def invalid_saved_config(run: Path) -> None:
    config = run / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("gamma: 0.99", "gamma: 7"))


def damaged_log_line(run: Path) -> None:
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    lines[4] = "garbage{\n"
    (run / "metrics.jsonl").write_text("".join(lines))


def periodic_checkpoints_removed(run: Path) -> None:
    for checkpoint in (run / "checkpoints").glob("step_*.pt"):
        checkpoint.unlink()


def checkpoint_renamed(run: Path) -> None:
    checkpoints = run / "checkpoints"
    (checkpoints / "step_0000003000.pt").rename(checkpoints / "step_0000009000.pt")


def saved_config_without_seed(run: Path) -> None:
    config = run / ".hydra" / "config.yaml"
    lines = config.read_text().splitlines(keepends=True)
    config.write_text("".join(line for line in lines if not line.startswith("seed:")))


def malformed_log_row(run: Path) -> None:
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    lines.insert(4, '{"time": 1.0}\n')  # valid JSON, but no step
    (run / "metrics.jsonl").write_text("".join(lines))


def saved_config_deleted(run: Path) -> None:
    (run / ".hydra" / "config.yaml").unlink()


def only_the_saved_config(run: Path) -> None:
    """What a kill while the run was being built leaves."""
    for entry in run.iterdir():
        if entry.name != ".hydra":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def runs_as_job_numbered_sweep(run: Path) -> None:
    """A sweep from before job directories carried their values: `<sweep>/0`."""
    runs_as_sweep_dir(run)
    (run.parent / "sweep" / "sweep.jsonl").write_text('{"job": "0", "status": "completed"}\n')


def runs_as_sweep_dir(run: Path) -> None:
    (run.parent / "sweep").mkdir()
    shutil.copytree(run, run.parent / "sweep" / "0")


CASES: dict[str, Case] = {
    # config groups and keys
    "unknown algo": Case(["algo=nope"], "algo/nope"),
    "unknown env option": Case(["env=mars"], "env/mars"),
    "schema entry as an option": Case(["algo=dqn_schema"], "algo/dqn_schema"),
    "unknown key": Case(["algo.no_such_key=1"], "no_such_key"),
    "unknown key with +": Case(["+algo.learning_rate=0.1"], "algo.learning_rate"),
    "unknown key with ++": Case(["++algo.learning_rate=0.1"], "algo.learning_rate"),
    "unknown root key": Case(["+foo=1"], "foo"),
    "unknown nested key": Case(["+trainer.total=5"], "trainer.total"),
    # types and values
    "word for an int": Case(["trainer.total_steps=many"], "trainer.total_steps"),
    "fractional steps": Case(["trainer.total_steps=2.5e-1"], "trainer.total_steps"),
    "zero steps": Case(["trainer.total_steps=0"], "trainer.total_steps"),
    "unknown enum": Case(["algo.loss=cubic"], "cubic"),
    "negative lr": Case(["algo.lr=-1"], "algo.lr"),
    "infinite lr": Case(["algo.lr=inf"], "algo.lr"),
    "negative weight decay": Case(["algo.weight_decay=-1"], "algo.weight_decay"),
    "word for a float": Case(["algo.lr=fast"], "algo.lr"),
    "gamma above one": Case(["algo.gamma=2"], "algo.gamma"),
    "empty batch": Case(["buffer.batch_size=0"], "buffer.batch_size"),
    "batch larger than memory": Case(
        ["buffer.batch_size=128", "buffer.capacity=64"], "buffer.batch_size"
    ),
    "learning never starts": Case(
        ["algo.learning_starts=5000", "trainer.total_steps=1000"], "algo.learning_starts"
    ),
    "updates never due": Case(["algo.train_freq=60000"], "algo.train_freq"),
    "batch larger than the run": Case(
        ["buffer.batch_size=600", "trainer.total_steps=500", "algo.learning_starts=10"],
        "buffer.batch_size",
    ),
    "no envs": Case(["env.num_envs=0"], "env.num_envs"),
    "zero-width layer": Case(["network.hidden_sizes=[0]"], "network.hidden_sizes"),
    "negative keep_last": Case(["checkpoint.keep_last=-1"], "checkpoint.keep_last"),
    # seeds and devices
    "negative seed": Case(["seed=-1"], "seed"),
    "seed past 2**32": Case(["seed=4294967296"], "seed"),
    "eval seeds past 2**32": Case(["seed=4294967290"], "seed"),
    "negative eval seed": Case(["eval.seed=-3"], "eval.seed"),
    "negative video cadence": Case(["eval.video.every=-1"], "eval.video.every"),
    "unknown tracker": Case(["tracking.backend=neptune"], "tracking.backend"),
    "unknown tracking option": Case(["tracking=neptune"], "tracking"),
    "unknown W&B mode": Case(["tracking=wandb", "tracking.mode=cloud"], "tracking.mode"),
    "empty W&B project": Case(["tracking=wandb", "tracking.project="], "tracking.project"),
    "W&B project with a slash": Case(
        ["tracking=wandb", "tracking.project=a/b"], "tracking.project"
    ),
    "W&B server not a URL": Case(
        ["tracking=wandb", "tracking.mode=offline", "tracking.uri=notaurl"], "tracking.uri"
    ),
    "video at 0 fps": Case(["eval.video.fps=0"], "eval.video.fps"),
    "video faster than browsers play": Case(["eval.video.fps=60"], "eval.video.fps"),
    "video frames of 1 pixel": Case(["eval.video.size=1"], "eval.video.size"),
    "filming an env without render_mode": Case(
        ["algo=td3", "env=gym", "env.id=fake_envs:Unrendered-v0", "eval.video.every=1"],
        "cannot be made with render_mode='rgb_array'",
    ),
    "filming an env that draws nothing": Case(
        ["algo=td3", "env=gym", "env.id=fake_envs:BlankRender-v0", "eval.video.every=1"],
        "returned NoneType, not an RGB image",
    ),
    "malformed device": Case(["device=cuda:x"], "device"),
    "unknown device": Case(["device=tpu"], "device"),
    "missing CUDA": Case(["device=cuda:3"], "CUDA is not available"),
    # environments
    "unknown env id": Case(["env.id=NoSuchEnv-v0"], "NoSuchEnv-v0"),
    "continuous actions for DQN": Case(["env=gym", "env.id=Pendulum-v1"], "discrete action"),
    "discrete actions for TD3": Case(["algo=td3", "env=cartpole"], "continuous (Box)"),
    "discrete actions for SAC": Case(["algo=sac", "env=cartpole"], "continuous (Box)"),
    "unbounded actions": Case(
        ["algo=ddpg", "env=gym", "env.id=fake_envs:UnboundedActions-v0"], "must be finite"
    ),
    "observations that do not match the declared space": Case(
        ["algo=td3", "env=gym", "env.id=fake_envs:MisdeclaredObservations-v0"],
        "first reset returned an observation of shape (3,), not the observation space's (2,)",
    ),
    "a minibatch that does not divide the rollout": Case(
        ["algo=ppo", "env=cartpole", "algo.batch_size=7"],
        "algo.batch_size: 7 does not divide a rollout of 256",
    ),
    "env state a checkpoint cannot hold": Case(
        ["algo=td3", "env=gym", "env.id=fake_envs:UncapturableState-v0"], "recent"
    ),
    "an inner env held in an attribute": Case(
        ["algo=td3", "env=gym", "env.id=fake_envs:InnerEnvAttribute-v0"],
        "cannot checkpoint InnerEnvAttribute.simulator",
    ),
    "env state in a stateful callable": Case(
        ["algo=td3", "env=gym", "env.id=fake_envs:StatefulCallable-v0"], "tick"
    ),
    "env kwarg dividing by zero": Case(
        ["algo=td3", "env=hopper", "+env.kwargs.frame_skip=0"], "env.kwargs"
    ),
    "env kwarg of the wrong type, read at the first step": Case(
        ["algo=td3", "env=hopper", "+env.kwargs.ctrl_cost_weight=abc"], "env.kwargs"
    ),
    "env model file missing": Case(
        ["algo=td3", "env=hopper", "+env.kwargs.xml_file=/nonexistent.xml"], "env.kwargs"
    ),
    "rendering training envs": Case(["+env.kwargs.render_mode=human"], "render_mode"),
    "more envs than steps": Case(["env.num_envs=5000", "trainer.total_steps=2000"], "env.num_envs"),
    "infinite log-std bound": Case(
        ["algo=sac", "env=pendulum", "algo.log_std_min=-inf"], "log_std_min"
    ),
    "preset of another algorithm": Case(
        ["+experiment=ddpg_mujoco_tutorial", "algo=dqn"],
        "+experiment=ddpg_mujoco_tutorial sets algo.actor_lr, which the algo= given does not "
        "have: the preset chooses its own algo; leave algo= out",
    ),
    "sweep job that cannot act": Case(
        ["-m", "algo=td3", "env=pendulum,cartpole", "algo.random_steps=100"], "sweep job"
    ),
    "sweep keys of one algorithm over several": Case(
        ["-m", "algo=td3,sac", "env=pendulum", "algo.policy_delay=2"], "one sweep per option"
    ),
    "resume switching the algorithm": Case(["resume={run}", "algo.name=ddpg"], "algorithm"),
    "unknown algorithm": Case(["algo.name=trpo"], "trpo"),
    "action joining past the last layer": Case(
        ["algo=td3", "env=pendulum", "network.critic_action_layer=5"], "critic_action_layer"
    ),
    "action layer for DQN": Case(["network=ddpg_paper"], "critic_action_layer"),
    "zero policy delay": Case(["algo=td3", "env=pendulum", "algo.policy_delay=0"], "policy_delay"),
    "negative exploration noise": Case(
        ["algo=ddpg", "env=pendulum", "algo.exploration_noise=-0.1"], "exploration_noise"
    ),
    "unknown matmul precision": Case(
        ["algo=sac", "env=pendulum", "algo.matmul_precision=low"], "matmul_precision"
    ),
    "inverted log-std range": Case(
        ["algo=sac", "env=pendulum", "algo.log_std_min=3"], "log_std_min"
    ),
    "Box2D state a checkpoint cannot hold": Case(
        ["env=gym", "env.id=LunarLander-v3"],
        "env.id=LunarLander-v3: cannot checkpoint LunarLander.",
    ),
    "module:id whose module is not on PYTHONPATH": Case(
        ["env=gym", "env.id=no_such_rl_module:user/MyEnv-v0"],
        "env.id: no module 'no_such_rl_module' on PYTHONPATH",
    ),
    "unknown env kwarg": Case(["+env.kwargs.no_such_kwarg=1"], "env.kwargs"),
    "env state in a random.Random": Case(
        ["algo=td3", "env=gym", "env.entry_point=fake_envs:PythonRandomNoise"],
        "cannot checkpoint PythonRandomNoise.noise (random.Random)",
    ),
    # an env of the user's own, by entry point
    "entry point in a module not on PYTHONPATH": Case(
        ["env=gym", "env.entry_point=no_such_rl_module:MyEnv"],
        "env.entry_point: no module 'no_such_rl_module' on PYTHONPATH",
    ),
    "entry point in a package's module": Case(  # made (its id has no dots), then refused
        ["algo=td3", "env=gym", "env.entry_point=gymnasium.envs.classic_control:CartPoleEnv"],
        "algo=td3 needs a continuous (Box) action space; "
        "env.id=gymnasium-envs-classic_control/CartPoleEnv",
    ),
    "entry point the module lacks": Case(
        ["env=gym", "env.entry_point=fake_envs:NoSuchEnv"],
        "env.entry_point: module fake_envs has no 'NoSuchEnv'",
    ),
    "entry point a class that is no env": Case(
        ["env=gym", "env.entry_point=fake_envs:_Counter"],
        "fake_envs:_Counter is a class, not a gymnasium.Env subclass",
    ),
    "entry point a function that returns no env": Case(
        ["env=gym", "env.entry_point=time:time"], "must inherit from the gymnasium.Env class"
    ),
    "entry point that is no module:attribute": Case(
        ["env=gym", "env.entry_point=fake_envs"], "env.entry_point: must be module:attribute"
    ),
    "entry point and another id": Case(
        ["env=gym", "env.entry_point=fake_envs:NoisySpace", "env.id=Acrobot-v1"],
        "env.entry_point: names the env instead of env.id, which is 'Acrobot-v1' here",
    ),
    "entry point with an env option of its own id": Case(
        ["algo=q_learning", "env=maze", "env.entry_point=fake_envs:Endless"],
        "which is 'rl_runner/Maze-v0' here",
    ),
    "a class path as env.id": Case(
        ["algo=td3", "env=gym", "env.id=fake_envs:_Walk"],  # a class no id names
        "give env.entry_point=fake_envs:_Walk instead of env.id",
    ),
    "resume switching to an entry point": Case(
        ["resume={run}", "env.entry_point=fake_envs:Endless"], "env.entry_point"
    ),
    # directories
    "run dir under a file": Case(["hydra.run.dir={file}/run"], "hydra.run.dir"),
    "run dir under /proc": Case(["hydra.run.dir=/proc/rl-run-test/run"], "hydra.run.dir"),
    "run dir holding a run": Case(["hydra.run.dir={run}"], "already holds a run"),
    "run dir with ++": Case(["++hydra.run.dir={run}"], "hydra.run.dir"),
    "run dir quoted": Case(["hydra.run.dir='{run}'"], "already holds a run"),
    "run dir holding other runs": Case(["hydra.run.dir={root}"], "holds other runs"),
    "run dir holding only a saved config": Case(
        ["hydra.run.dir={run}"], "already holds a run", only_the_saved_config
    ),
    "run dir holding a run whose saved config was deleted": Case(
        ["hydra.run.dir={run}"],
        "saved config .hydra/config.yaml is missing; restore that file",
        saved_config_deleted,
    ),
    "resume of a run whose saved config was deleted": Case(
        ["resume={run}"],
        "saved config .hydra/config.yaml is missing; restore that file",
        saved_config_deleted,
    ),
    "run dir inside a run": Case(["hydra.run.dir={run}/tensorboard"], "inside the run directory"),
    "unquoted special characters": Case(["hydra.run.dir=runs/a)b"], "cannot parse"),
    "home of a user who does not exist": Case(
        ["hydra.run.dir=~no-such-rl-run-user/x"], "put a value with spaces or special characters"
    ),
    "unknown flag": Case(["--bogus"], "--bogus"),
    "flag after the overrides": Case(["seed=1", "-m", "seed=2,3"], "flags such as -m"),
    "invalid config shown with --cfg": Case(["--cfg", "job", "algo.lr=-1"], "algo.lr"),
    "more threads than CPUs": Case(["threads=1000000"], "threads"),
    "memory beyond the machine": Case(["buffer.capacity=1e12"], "buffer.capacity"),
    "network beyond the machine": Case(["network.hidden_sizes=[1000000,1000000]"], "hidden_sizes"),
    "hydra.mode without -m": Case(["hydra.mode=MULTIRUN"], "hydra.mode"),
    "pickled rerun": Case(["--experimental-rerun", "{file}"], "--experimental-rerun"),
    "incomplete Hydra flag": Case(["--shell-completion"], "subcommand"),
    "sweep jobs sharing a dir": Case(
        ["-m", "seed=0,1", "hydra.sweep.subdir=same"], "hydra.sweep.subdir"
    ),
    "sweep subdir named after the app": Case(
        ["-m", "seed=0,1", "hydra.sweep.subdir=${{hydra.job.name}}"], "hydra.sweep.subdir"
    ),
    "sweep job escaping by its value": Case(
        [
            "-m",
            "hydra.sweep.subdir=${{hydra.job.override_dirname}}",
            "env=gym",
            "env.id=CartPole-v1,x/../../../ESCAPED",
        ],
        "outside the sweep directory",
    ),
    "sweep job into a run": Case(
        ["-m", "seed=0", "hydra.sweep.subdir={run}"], "hydra.sweep.subdir"
    ),
    "sweep into a dir of runs": Case(
        ["-m", "seed=0,1", "hydra.sweep.dir={root}/sweep"], "hydra.sweep.dir", runs_as_sweep_dir
    ),
    "sweep with a bad value": Case(["-m", "algo.lr=1e-3,-1"], "algo.lr"),
    "continued sweep of job-numbered dirs": Case(
        ["-m", "seed=0,1", "hydra.sweep.dir={root}/sweep", "resume=auto"],
        "hydra.sweep.subdir='${hydra.job.num}'",
        runs_as_job_numbered_sweep,
    ),
    "ray cluster nobody listens on": Case(
        ["-m", "seed=0,1", "hydra/launcher=ray", "+hydra.launcher.ray.init.address=127.0.0.1:1"],
        "cannot reach 127.0.0.1:1",
    ),
    "ray address without a port": Case(
        ["-m", "seed=0,1", "hydra/launcher=ray", "+hydra.launcher.ray.init.address=head"],
        "HOST:PORT",
    ),
    "search storage that is no URL": Case(
        ["-m", "+sweep=dqn_cartpole_optuna", "hydra.sweeper.storage=optuna.db"],
        "hydra.sweeper.storage",
    ),
    "search storage in a missing dir": Case(
        ["-m", "+sweep=dqn_cartpole_optuna", "hydra.sweeper.storage=sqlite:///{root}/gone/s.db"],
        "does not exist",
    ),
    "search storage URL cut by a '?'": Case(
        ["-m", "+sweep=dqn_cartpole_optuna", "hydra.sweep.dir='{root}/a?b'"], "holds '?'"
    ),
    "search of no trials": Case(
        ["-m", "+sweep=dqn_cartpole_optuna", "hydra.sweeper.n_trials=0"], "n_trials"
    ),
    # resume
    "resume of a missing dir": Case(["resume={root}/gone"], "not a directory"),
    "resume with ++": Case(["++resume={root}/gone"], "not a directory"),
    "resume of a plain dir": Case(["resume={root}"], "not a run directory"),
    "resume in a sweep": Case(["-m", "resume={run}"], "one at a time"),
    "resume with a new seed": Case(["resume={run}", "seed=9"], "seed"),
    "resume switching a group": Case(["resume={run}", "env=gym"], "keeps its env option"),
    "resume resizing the network": Case(
        ["resume={run}", "network.hidden_sizes=[64,64]"], "network.hidden_sizes"
    ),
    "resume changing the time limit": Case(
        ["resume={run}", "env.max_episode_steps=100"], "env.max_episode_steps"
    ),
    "resume changing env kwargs": Case(
        ["resume={run}", "+env.kwargs.sutton_barto_reward=true"], "env.kwargs"
    ),
    "resume changing the env": Case(["resume={run}", "env.id=Acrobot-v1"], "env.id"),
    "resume growing the memory": Case(["resume={run}", "buffer.capacity=200000"], "capacity"),
    "resume with a bad value": Case(["resume={run}", "algo.gamma=2"], "algo.gamma"),
    "resume with an unknown key": Case(["resume={run}", "+algo.lr_typo=1"], "algo.lr_typo"),
    "resume changing the optimiser": Case(["resume={run}", "algo.optimizer=sgd"], "algo.optimizer"),
    "resume deleting a key": Case(["resume={run}", "~algo.lr"], "algo.lr"),
    "resume adding a preset": Case(
        ["resume={run}", "+experiment=dqn_cartpole_tutorial"], "experiment"
    ),
    "resume into another dir": Case(["resume={run}", "hydra.run.dir={root}/x"], "hydra.run.dir"),
    # broken runs
    "truncated checkpoint": Case(
        ["resume={run}", "trainer.total_steps=4000"],
        "previous one is step_0000002000.pt",
        truncate_newest_checkpoint,
    ),
    "random-bytes checkpoint": Case(
        ["resume={run}", "trainer.total_steps=4000"],
        "not an rl-runner checkpoint",
        random_bytes_checkpoint,
        absent=["weights_only", "corrupt"],
    ),
    "pickle checkpoint": Case(
        ["resume={run}", "trainer.total_steps=4000"],
        "pickle",
        pickle_checkpoint,
        absent=["weights_only"],
    ),
    "log row without a step": Case(["resume={run}"], "integer step", malformed_log_row),
    "damaged log line": Case(["resume={run}"], "line 5 is not JSON", damaged_log_line),
    "checkpoints removed": Case(["resume={run}"], "files are gone", periodic_checkpoints_removed),
    "checkpoint renamed": Case(["resume={run}"], "not the step its name says", checkpoint_renamed),
    "saved config missing a key": Case(["resume={run}"], "lacks seed", saved_config_without_seed),
    "malformed saved config": Case(["resume={run}"], "not valid YAML", malformed_saved_config),
    "invalid saved config": Case(["resume={run}"], "algo.gamma", invalid_saved_config),
    # the tutorials' agents and envs
    "tabular network key": Case(
        ["algo=q_learning", "env=maze", "network.hidden_sizes=[8]"],
        "algo=q_learning has no network",
    ),
    "tabular network option": Case(
        ["algo=sarsa", "env=maze", "network=ddpg_paper"], "network: algo=sarsa has no network"
    ),
    "reinforce buffer key": Case(
        ["algo=reinforce", "buffer.capacity=5"], "buffer.capacity: algo=reinforce has no buffer"
    ),
    "resume a dqn run with another network": Case(
        ["resume={run}", "network=cnn"], "network: a resumed run keeps its network option"
    ),
    "unreachable maze goal": Case(
        ["algo=q_learning", "env=maze", "env.kwargs.walls=[[5,8],[7,8]]"], "cannot be reached"
    ),
    "maze episodes shorter than its shortest path": Case(
        ["algo=q_learning", "env=maze", "env.max_episode_steps=5"],
        "env.max_episode_steps: 5 is below the maze's shortest path from start 0 to goal 8 "
        "(6 moves)",
    ),
    "larger maze than its registered time limit": Case(
        [
            "algo=q_learning",
            "env=maze",
            "env.kwargs.rows=1",
            "env.kwargs.cols=120",
            "env.kwargs.goal=119",
            "env.kwargs.walls=[]",
        ],
        "env.max_episode_steps: 100 is below the maze's shortest path from start 0 to goal 119 "
        "(119 moves)",
    ),
    "maze start is its goal": Case(
        ["algo=q_learning", "env=maze", "env.kwargs.start=8"], "start and goal must differ"
    ),
    "fractional maze size": Case(
        ["algo=q_learning", "env=maze", "env.kwargs.rows=2.5"], "rows must be a whole number"
    ),
    "infinite discretiser bound": Case(
        ["algo=q_learning", "env=cartpole_discrete", "env.kwargs.low=[-inf,-3,-0.4,-2]"],
        "low and high must be finite",
    ),
    "table beyond memory": Case(
        ["algo=q_learning", "env=cartpole_discrete", "env.kwargs.bins=[200,200,200,200]"],
        "GiB table",
    ),
    "an env whose actions the algorithm cannot take, with the algorithms that can": Case(
        ["algo=reinforce", "env=pendulum"], "(continuous actions: algo=a2c, ddpg, ppo, sac, td3)"
    ),
    "epsilon rising": Case(
        ["algo.epsilon.start=0.1", "algo.epsilon.end=0.9"], "algo.epsilon.end: must not exceed"
    ),
    "batch norm where the agent does not keep its statistics": Case(
        ["algo=ppo", "env=cartpole_pixels", "network=cnn", "algo.normalize_observations=false"],
        "network.batch_norm: algo=ppo acts and learns",
    ),
    "cnn with PPO's observation normalisation": Case(
        ["algo=ppo", "env=cartpole_pixels", "network=cnn"],
        "algo.normalize_observations: network=cnn reads images",
    ),
    "cnn on vector observations": Case(["network=cnn"], "network=cnn needs image observations"),
    "mlp on images": Case(["env=cartpole_pixels"], "(images: network=cnn)"),
    "float images for a cnn": Case(
        ["network=cnn", "env=gym", "env.id=fake_envs:FloatDotImage-v0"],
        "network=cnn reads uint8 pixels (0-255, scaled to [0, 1] inside the network); "
        "env.id=fake_envs:FloatDotImage-v0 gives float32 images",
    ),
    "channels-last images for a cnn": Case(
        ["network=cnn", "env=gym", "env.id=fake_envs:ChannelsLastDotImage-v0"],
        "(12, 12, 3) look channels last: transpose them to (3, 12, 12)",
    ),
    "a config group given null": Case(["algo_env=null"], "algo_env=null: name one of"),
}


@pytest.fixture
def scene(tmp_path: Path, finished_run: Path) -> dict[str, Path]:
    """A working directory, a copy of a finished run, a plain file."""
    root = tmp_path / "root"
    root.mkdir()
    run = root / "run"
    shutil.copytree(finished_run, run)
    (root / "file").write_text("not a directory")
    work = tmp_path / "work"
    work.mkdir()
    return {"root": root, "run": run, "file": root / "file", "work": work}


def assert_one_line_refusal(result, mentions: str, status: int = REFUSED) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rl-run: error: "), lines[0]
    assert mentions in lines[0], lines[0]
    return lines[0]


def test_at_least_forty_hostile_invocations_are_tabled():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_invocation_is_refused_cleanly(name: str, scene: dict[str, Path]):
    case = CASES[name]
    if name == "missing CUDA" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    if case.damage is not None:
        case.damage(scene["run"])
    root_before = tree_digest(scene["root"])
    entries_before = sorted(p.name for p in scene["root"].iterdir())
    args = [arg.format(**{key: str(path) for key, path in scene.items()}) for arg in case.args]
    result = rl_run(*args, cwd=scene["work"])
    line = assert_one_line_refusal(result, case.mentions)
    for word in case.absent:
        assert word not in line
    assert list(scene["work"].iterdir()) == [], "a stray directory was created"
    assert tree_digest(scene["root"]) == root_before, "an existing file changed"
    assert sorted(p.name for p in scene["root"].iterdir()) == entries_before


def test_refused_explicit_dirs_keep_what_the_user_had(tmp_path: Path):
    """A failed start removes what it created, never the user's own directories."""
    mine = tmp_path / "runs" / "mine"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    for run_dir in (str(mine), "."):
        result = rl_run("algo.lr=-1", f"hydra.run.dir={run_dir}", cwd=tmp_path)
        assert_one_line_refusal(result, "algo.lr")
        # An env that cannot be made is found before the directory is claimed too.
        result = rl_run("env.id=NoSuchEnv-v0", f"hydra.run.dir={run_dir}", cwd=tmp_path)
        assert_one_line_refusal(result, "NoSuchEnv-v0")
    assert (mine / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_a_mujoco_gl_that_mujoco_refuses_is_one_line(tmp_path: Path):
    result = rl_run("algo=td3", "env=hopper", cwd=tmp_path, extra_env={"MUJOCO_GL": "nonsense"})
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("rl-run: error: env.id=Hopper-v5: MuJoCo cannot load: ")
    assert "MUJOCO_GL" in line
    assert list(tmp_path.iterdir()) == []
