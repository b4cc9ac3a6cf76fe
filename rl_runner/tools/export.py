"""`rl-export`: a run's evaluation policy as a file that runs without rl-runner.

    rl-export outputs/2026-12-02/10-00-00_ppo_cartpole_seed0  # best.pt -> export/policy.onnx
    rl-export RUN_DIR --format torchscript --checkpoint latest        # -> export/policy.pt
    rl-export RUN_DIR -o policy.onnx
    rl-export outputs/..._q_learning_maze_seed0                  # a table -> export/policy.json

A network's policy (DQN, DDPG, TD3, SAC, REINFORCE, PPO, A2C) becomes one graph from the
env's observations, as the run's env returns them (batched: `observation`, shape
(batch, *obs_shape), the env's dtype), to its actions (`action`: int64 indices for
Discrete actions, float32 values in the env's bounds for Box). Inside the graph: the
observation normalisation with the checkpoint's frozen statistics (PPO/A2C), and the
action squashing and scaling. DQN gives the greedy action, DDPG/TD3 the deterministic
action, SAC and PPO/A2C the mean action, REINFORCE the most likely one. ONNX files are
written with torch's exporter (opset in `<file>.json`) and need only onnxruntime to run;
TorchScript files need only torch. A table (Q-learning, SARSA, tabular policy gradient)
is written as JSON or `.npy`.

Before the file is kept, the export checks itself: the file, loaded back alone
(onnxruntime, torch.jit or the table), must choose the agent's actions on the
observations of an evaluation episode and on observations sampled from the env's
space; then it replays evaluation episode 0 (the run's evaluation seed) with the file
alone and prints its return beside the one `evaluations.jsonl` recorded at the
checkpoint's step. A description (`<file>.json`: formats, names, shapes, bounds, the
checkpoint, the check) is written beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl_runner.errors import ConfigError, StorageError
from rl_runner.rundir import (
    EVALUATIONS_FILE,
    RESUME_HISTORY,
    SAVED_CONFIG,
    inside_run,
    read_jsonl,
    write_json_atomic,
)
from rl_runner.tools.cli import OneLineParser, run_writing_all_or_nothing, tool_description, warn
from rl_runner.tools.restore import check_owner, load_chosen, restored_agent

if TYPE_CHECKING:
    import gymnasium as gym
    import torch

    from rl_runner.agents.base import Agent
    from rl_runner.config.settings import Settings

EXPORT_DIR = "export"
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "json": ".json", "npy": ".npy"}
NETWORK_FORMATS = ("onnx", "torchscript")
TABLE_FORMATS = ("json", "npy")
INPUT_NAME, OUTPUT_NAME = "observation", "action"
# what decides which episode the replay plays and where it ends: changed on a resume,
# the recorded evaluations played other episodes
REPLAY_SETTINGS = {"seed", "eval.seed", "eval.max_episode_steps"}
SAMPLED_OBSERVATIONS = 256
# Float32 graphs against the agent's numpy acting: the same products in another order.
ACTION_TOLERANCE = 1e-4
ONNX_HINT = "ONNX export needs onnx, onnxscript and onnxruntime: pip install 'rl-runner[export]'"
# a batch of observations, and the legal actions where the env reports them -> actions
Policy = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


@dataclass
class Source:
    """What an export reads: the run's config, the chosen checkpoint, the env (as the
    run's evaluation makes it) and the agent restored in it."""

    settings: Settings
    checkpoint: Path
    step: int | None
    env: gym.Env
    agent: Agent

    @property
    def discrete_actions(self) -> bool:
        import gymnasium as gym

        return isinstance(self.env.action_space, gym.spaces.Discrete)


def export(run_dir: Path, args: argparse.Namespace) -> Path:
    """Writes the chosen checkpoint's policy, checked, and its description; returns the
    file's path."""
    source = open_source(run_dir, args.checkpoint)
    try:
        is_table = hasattr(source.agent, "policy_table")
        file_format = chosen_format(args.format, args.output, is_table)
        check_format(source.settings, file_format, is_table)
        output = output_path(run_dir, args.output, file_format)
        observations, masks_reported = evaluation_observations(source)
        folder_existed = output.parent.is_dir()
        partial = output.with_name(f".{output.name}.partial")  # beside it: an atomic rename
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            written = (
                write_table(source, partial, file_format)
                if is_table
                else write_graph(source, partial, file_format, observations)
            )
            check = check_agreement(source, written.policy, observations, masks_reported)
            replayed = replay(source, written.policy)
            recorded = recorded_return(run_dir, source)
            written.details["legal_action_masks"] = masks_reported
            description = describe(source, file_format, written, check, replayed, recorded)
            write_json_atomic(description_path(output), description)
            partial.replace(output)  # last: a file is only ever kept checked
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise StorageError(f"cannot write {error.filename or output}: {reason}") from None
        finally:
            with contextlib.suppress(OSError):  # the disk that failed may refuse this too
                partial.unlink(missing_ok=True)
                if not folder_existed and not any(output.parent.iterdir()):
                    output.parent.rmdir()  # a refused export leaves no empty export/
    finally:
        source.env.close()
    print(replay_line(replayed, recorded, source.step))
    if recorded.value is not None and recorded.value != replayed and source.discrete_actions:
        warn("rl-export", "the replay's return differs from the recorded one (see above)")
    return output


def chosen_format(given: str | None, output: str | None, is_table: bool) -> str:
    """--format, else the one `-o`'s suffix names, else onnx (json for a table)."""
    by_suffix = {suffix: name for name, suffix in SUFFIXES.items()}
    named = None if output is None else by_suffix.get(Path(output).suffix.lower())
    if given is not None and named is not None and named != given:
        raise ConfigError(f"-o {output} names a {named} file, not --format {given}")
    return given or named or ("json" if is_table else "onnx")


def description_path(output: Path) -> Path:
    """policy.onnx -> policy.onnx.json; a JSON table's, policy.description.json."""
    if output.suffix == ".json":
        return output.with_name(f"{output.stem}.description.json")
    return output.with_name(output.name + ".json")


def open_source(run_dir: Path, choice: str) -> Source:
    from rl_runner.build import configure_torch
    from rl_runner.config.resume import load_saved_config
    from rl_runner.envs.factory import configured_env_factory

    if not run_dir.exists():
        raise ConfigError(f"{run_dir} does not exist")
    if not (run_dir / SAVED_CONFIG).is_file():
        runs = sorted(config.parent.parent for config in run_dir.glob(f"*/{SAVED_CONFIG}"))
        inside = f"; it holds runs: export one of them ({runs[0]}, ...)" if runs else ""
        raise ConfigError(f"{run_dir} is not a run directory (no {SAVED_CONFIG}){inside}")
    _, settings = load_saved_config(run_dir, context="")
    checkpoint, state = load_chosen(run_dir, choice)
    check_owner(run_dir, settings, checkpoint)
    configure_torch(1)
    env = configured_env_factory(settings.env)()
    try:
        agent = restored_agent(settings, state, checkpoint, env)
    except BaseException:
        env.close()
        raise
    return Source(settings, checkpoint, checkpoint_step(state), env, agent)


def checkpoint_step(state: dict[str, Any]) -> int | None:
    """The env step a checkpoint was written at (best.pt says it at the top level)."""
    step = state.get("env_steps", state.get("loop", {}).get("env_steps"))
    return None if step is None else int(step)


def check_format(settings: Settings, file_format: str, is_table: bool) -> None:
    algo = settings.algo.name
    if is_table and file_format in NETWORK_FORMATS:
        raise ConfigError(
            f"--format {file_format}: algo={algo} keeps a table, not a network; "
            "export it with --format json or npy"
        )
    if not is_table and file_format in TABLE_FORMATS:
        raise ConfigError(
            f"--format {file_format}: algo={algo}'s policy is a network; "
            "export it with --format onnx or torchscript"
        )
    if file_format == "onnx":
        try:
            import onnx  # noqa: F401 - torch's exporter needs both
            import onnxruntime  # noqa: F401 - the check loads the file with it
            import onnxscript  # noqa: F401
        except ImportError as error:
            raise ConfigError(f"{ONNX_HINT} ({error})") from None


def output_path(run_dir: Path, chosen: str | None, file_format: str) -> Path:
    """`-o FILE`, `-o DIR` (policy.<suffix> inside it), or RUN_DIR/export/policy.<suffix>.
    Never a run's own file (a checkpoint, its config) or anything but a regular file."""
    name = f"policy{SUFFIXES[file_format]}"
    if chosen is None:
        return run_dir / EXPORT_DIR / name
    if not chosen:
        raise ConfigError("-o: an empty path")
    path = Path(chosen)
    if path.is_dir():
        path = path / name
    elif chosen.endswith("/"):
        raise ConfigError(f"-o: the directory {chosen} does not exist")
    elif not path.parent.is_dir():
        raise ConfigError(f"-o: the directory of {chosen} does not exist")
    if path.exists() and not path.is_file():
        raise ConfigError(f"-o: {chosen} exists and is not a regular file")
    owner = inside_run(path)
    if path.exists() and owner is not None and path.parent.name != EXPORT_DIR:
        raise ConfigError(f"-o: {chosen} is a file of the run {owner}; choose another path")
    return path


# -- what the check feeds the policy ------------------------------------------------------
def evaluation_observations(source: Source) -> tuple[np.ndarray, bool]:
    """The observations of evaluation episode 0, played by the agent, then observations
    sampled from the env's space (seeded: the same at every export); and whether the
    env reported legal-action masks."""
    from rl_runner.envs.batch import action_masks

    seen, masks_reported = [], False

    def record(obs: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        nonlocal masks_reported
        seen.append(np.asarray(obs))
        masks_reported = masks_reported or masks is not None
        return source.agent.act(np.asarray(obs)[None], explore=False, masks=masks).actions[0]

    play(source, lambda obs, info: record(obs, action_masks([info])))
    space = source.env.observation_space
    space.seed(source.settings.eval_seed)
    sampled = [np.asarray(space.sample()) for _ in range(SAMPLED_OBSERVATIONS)]
    return np.stack(seen + sampled).astype(space.dtype), masks_reported


def play(source: Source, choose: Callable[[np.ndarray, dict[str, Any]], Any]) -> float:
    """Evaluation episode 0 (the run's evaluation seed, its step cap), each action from
    `choose(obs, info)`; returns the episode's return."""
    from rl_runner.evaluator import episode_step_cap

    env = source.env
    cap = episode_step_cap(env, source.settings.run.eval.max_episode_steps)
    obs, info = env.reset(seed=source.settings.eval_seed)
    total, length, done = 0.0, 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(choose(obs, info))
        total += float(reward)
        length += 1
        done = bool(terminated or truncated) or length >= cap
    return total


# -- writing ---------------------------------------------------------------------------
@dataclass
class Written:
    """A file's policy, loaded back from the file alone, and what the description says
    of it."""

    policy: Policy
    details: dict[str, Any]


def write_graph(
    source: Source, partial: Path, file_format: str, observations: np.ndarray
) -> Written:
    import torch

    graph = source.agent.policy_graph().eval()  # type: ignore[attr-defined]
    example = torch.as_tensor(observations[:2])
    if file_format == "onnx":
        details = write_onnx(graph, example, partial)
        policy = onnx_policy(partial)
    else:
        torch.jit.save(torch.jit.trace(graph, example), str(partial))
        details = {"torch": torch.__version__}
        policy = torchscript_policy(partial)
    return Written(policy, details)


def write_onnx(graph: torch.nn.Module, example: torch.Tensor, path: Path) -> dict[str, Any]:
    import onnx
    import torch

    batch = torch.export.Dim("batch", min=1)
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # its notes on its own internals (torchvision absent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            verbose=False,
        )
    exporter_log.setLevel(level)
    assert program is not None
    program.save(str(path))
    model = onnx.load(str(path))
    opset = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    return {"opset": int(opset), "onnx": onnx.__version__, "torch": torch.__version__}


def onnx_policy(path: Path) -> Policy:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda obs, _masks: session.run([OUTPUT_NAME], {INPUT_NAME: obs})[0]


def torchscript_policy(path: Path) -> Policy:
    import torch

    module = torch.jit.load(str(path))

    def policy(obs: np.ndarray, _masks: np.ndarray | None) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.as_tensor(obs)).numpy()

    return policy


def write_table(source: Source, partial: Path, file_format: str) -> Written:
    tables: dict[str, np.ndarray] = source.agent.policy_table()  # type: ignore[attr-defined]
    name, values = next(iter(tables.items()))  # the one the greedy action reads
    if file_format == "npy":
        tables = {name: values}  # one array per .npy file
        with partial.open("wb") as handle:
            np.save(handle, values)
    else:
        partial.write_text(json.dumps({key: table.tolist() for key, table in tables.items()}))
    greedy = np.asarray(values)

    def policy(obs: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        """The row's largest entry among the legal actions (all, without masks)."""
        rows = greedy[np.asarray(obs, dtype=np.int64)]
        return (rows if masks is None else np.where(masks, rows, -np.inf)).argmax(axis=-1)

    return Written(policy, {"tables": list(tables), "greedy_reads": name})


# -- checking --------------------------------------------------------------------------
@dataclass
class Agreement:
    observations: int
    disagreements: int
    largest_difference: float | None  # Box actions: the largest absolute difference


def check_agreement(
    source: Source, policy: Policy, observations: np.ndarray, masks_reported: bool
) -> Agreement:
    """The file's actions against the agent's (over every action: the file reads no
    legal-action mask), on every observation of the check; a disagreement refuses it."""
    expected = np.asarray(source.agent.act(observations, explore=False).actions)
    exported = np.asarray(policy(observations, None))
    if np.issubdtype(expected.dtype, np.integer):
        disagreements = int((exported.reshape(expected.shape) != expected).sum())
        agreement = Agreement(len(observations), disagreements, None)
    else:
        difference = np.abs(exported.reshape(expected.shape) - expected).reshape(len(expected), -1)
        scale = 1.0 + np.abs(expected).reshape(len(expected), -1)
        disagreements = int((difference > ACTION_TOLERANCE * scale).any(axis=1).sum())
        agreement = Agreement(len(observations), disagreements, float(difference.max()))
    if agreement.disagreements:
        largest = agreement.largest_difference
        detail = "" if largest is None else f", largest difference {largest:.3g}"
        raise ConfigError(
            f"the exported policy disagrees with the agent on {agreement.disagreements} of "
            f"{agreement.observations} observations{detail}; nothing was written"
        )
    if masks_reported and hasattr(source.agent, "policy_graph"):
        warn("rl-export", "the env reports legal-action masks; the exported graph reads none")
    return agreement


def replay(source: Source, policy: Policy) -> float:
    """Evaluation episode 0 played by the file alone (a table's greedy action among the
    legal ones, where the env reports them)."""
    from rl_runner.envs.batch import action_masks

    return play(source, lambda obs, info: policy(np.asarray(obs)[None], action_masks([info]))[0])


@dataclass
class Recorded:
    """What evaluations.jsonl says of episode 0 at the checkpoint's step, or why it
    cannot be compared (`value` None)."""

    value: float | None
    why_not: str = ""


def recorded_return(run_dir: Path, source: Source) -> Recorded:
    """The return of evaluation episode 0 at the checkpoint's step, where this run
    recorded it with the evaluation settings the replay uses."""
    owner = inside_run(source.checkpoint)
    if owner is None or owner != run_dir.resolve():
        return Recorded(None, "a checkpoint from outside this run: its evaluations are not it")
    changed = [
        override
        for entry in read_resume_history(run_dir)
        for override in entry.get("overrides", [])
        if override.split("=")[0].lstrip("+~") in REPLAY_SETTINGS
    ]
    if changed:
        return Recorded(None, f"changed on resume ({', '.join(changed)}): not compared")
    path = run_dir / EVALUATIONS_FILE
    for row in read_jsonl(path) if path.is_file() else []:
        if row.get("step") == source.step and row.get("returns"):
            return Recorded(float(row["returns"][0]))
    return Recorded(None, f"no evaluation at step {source.step} to compare with")


def read_resume_history(run_dir: Path) -> list[dict[str, Any]]:
    """`.hydra/resumes.yaml`: what each resume changed, from which step."""
    import yaml

    try:
        history = yaml.safe_load((run_dir / RESUME_HISTORY).read_text())
    except (OSError, yaml.YAMLError):
        return []
    return [entry for entry in history or [] if isinstance(entry, dict)]


def replay_line(replayed: float, recorded: Recorded, step: int | None) -> str:
    text = f"replayed evaluation episode 0 with the exported file alone: return {replayed:.2f}"
    if recorded.value is None:
        return f"{text} ({recorded.why_not})"
    difference = abs(replayed - recorded.value)
    # Box actions: the file's float32 products run in another order than the agent's
    same = "the same" if difference == 0 else f"a difference of {difference:.4g}"
    return f"{text}; evaluations.jsonl recorded {recorded.value:.2f} at step {step} ({same})"


def env_description(settings: Settings) -> dict[str, Any]:
    """The env the input comes from: its id and keyword arguments, and for env=atari the
    preprocessing its observations went through (rl_runner/envs/atari.py)."""
    env = settings.env
    described: dict[str, Any] = {"id": env.id, "kwargs": dict(env.kwargs)}
    if env.atari is not None:
        described["atari_preprocessing"] = asdict(env.atari)
    return described


def describe(
    source: Source,
    file_format: str,
    written: Written,
    agreement: Agreement,
    replayed: float,
    recorded: Recorded,
) -> dict[str, Any]:
    settings, env = source.settings, source.env
    return {
        "format": file_format,
        **written.details,
        "algorithm": settings.algo.name,
        "env": env_description(settings),
        "checkpoint": str(source.checkpoint.resolve()),
        "step": source.step,
        "input": {"name": INPUT_NAME, **space_description(env.observation_space)},
        "output": {"name": OUTPUT_NAME, **space_description(env.action_space)},
        "check": {
            "observations": agreement.observations,
            "disagreements": agreement.disagreements,
            "largest_difference": agreement.largest_difference,
            "replayed_return": replayed,
            "recorded_return": recorded.value,
        },
    }


def space_description(space: gym.Space) -> dict[str, Any]:
    import gymnasium as gym

    if isinstance(space, gym.spaces.Discrete):
        return {
            "space": "Discrete",
            "n": int(space.n),
            "start": int(space.start),
            "dtype": str(space.dtype),  # a batch of indices: shape (batch,)
        }
    if isinstance(space, gym.spaces.Box):
        return {
            "space": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": json_bounds(space.low),
            "high": json_bounds(space.high),
        }
    return {"space": str(space)}


def json_bounds(bounds: np.ndarray) -> list[float | str] | None:
    """Bounds for strict JSON, infinite ones as "inf" / "-inf"; None past 64 values
    (images)."""
    if bounds.size > 64:
        return None
    return [float(v) if math.isfinite(v) else str(float(v)) for v in bounds.reshape(-1)]


def main(arguments: list[str] | None = None) -> int:
    return run_writing_all_or_nothing("rl-export", _main, arguments)


def _main(arguments: list[str] | None) -> int:
    parser = OneLineParser(prog="rl-export", description=tool_description(__doc__))
    parser.add_argument("run_dir", type=Path, help="a run directory")
    parser.add_argument(
        "--format",
        choices=sorted(SUFFIXES),
        default=None,
        help="onnx (default for networks) or torchscript; json (default for tables) or npy",
    )
    parser.add_argument(
        "--checkpoint",
        default="best",
        help="best (default: best.pt, else the newest), latest, or a checkpoint file",
    )
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        help="the file (or a folder for policy.<format>); default RUN_DIR/export/",
    )
    args = parser.parse_args(arguments)
    try:
        written = export(args.run_dir, args)
    except (ConfigError, StorageError) as error:
        print(f"rl-export: error: {error}", file=sys.stderr)
        return 2
    print(f"written: {written} (described in {written.name}.json)")
    return 0


def cli() -> None:
    sys.exit(main())
