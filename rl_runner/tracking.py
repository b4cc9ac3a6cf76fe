"""Experiment trackers: `tracking=mlflow` sends a run to MLflow beside its own files.

    params   the flat config, by the keys HParams shows (`algo.lr`, `seed`, ...)
    metrics  every scalar the run logs, under its own name, x = env steps (evaluations too)
    tags     status (running, completed, interrupted, failed, diverged), the run directory
    artifacts at the end: best.pt, summary.json, manifest.json and rl-plot's figure

Rows go to the tracker when a checkpoint is written (and at the end), never before: a
killed run's resume starts again from its newest checkpoint, so the tracker gets each
step once. A resume continues the same tracker run (its id is in the run directory's
`.tracking.json`); a sweep's jobs are children of one parent run (its id in the sweep
directory's `.tracking-parent.json`). The tracker is called from a background thread:
a slow or unreachable server never holds the training up; the first failure is said
once, in one line, and the run goes on with its own files (the truth) complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rl_runner.errors import ConfigError
from rl_runner.rundir import (
    EVALUATIONS_FILE,
    METRICS_FILE,
    SWEEP_INDEX,
    read_jsonl,
    read_summary,
    write_json_atomic,
)

if TYPE_CHECKING:
    from rl_runner.config.schema import TrackingConfig

log = logging.getLogger("rl_runner")

TRACKING_FILE = ".tracking.json"  # in a run directory: its tracker run
PARENT_FILE = ".tracking-parent.json"  # in a sweep directory: the sweep's parent run
MLFLOW_HINT = "tracking=mlflow needs MLflow: pip install 'rl-runner[mlflow]'"
# A tracking server that does not answer: a few quick tries, not MLflow's minutes of them.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
FINISH_TIMEOUT_S = 30  # what the end of a run waits for the tracker, at most
BATCH = 1000  # MLflow's limit of metrics per log_batch call
PARAMS_BATCH = 100  # ... and of params
MAX_PARAM_CHARS = 6000
ARTIFACTS = ("checkpoints/best.pt", "summary.json", "manifest.json")


class Tracker(Protocol):
    def record(self, step: int, values: Mapping[str, float]) -> None:
        """A logged row, kept until `send_through` passes its step."""

    def send_through(self, step: int) -> None:
        """The rows up to `step` (a checkpoint's) go to the tracker."""

    def add_file(self, path: Path, folder: str) -> None:
        """A file for the tracker's artifacts, under `folder` (an evaluation's video)."""

    def finish(self, status: str) -> None:
        """The rest, the status and the artifacts; waits for them a bounded time."""

    def catch_up(self, step: int) -> None:
        """On resume: the rows up to `step` (the checkpoint's) that the tracker never got
        (a kill while they waited to be sent; tracking turned on at this resume), from
        the run's own files."""


class NoTracker:
    def record(self, step: int, values: Mapping[str, float]) -> None:
        pass

    def catch_up(self, step: int) -> None:
        pass

    def add_file(self, path: Path, folder: str) -> None:
        pass

    def send_through(self, step: int) -> None:
        pass

    def finish(self, status: str) -> None:
        pass


def check_tracking(config: TrackingConfig) -> None:
    """Before anything is written: the tracker's package is installed."""
    if config.backend == "mlflow":
        try:
            import mlflow  # noqa: F401
        except ImportError as error:
            raise ConfigError(f"{MLFLOW_HINT} ({error})") from None


def make_tracker(config: TrackingConfig, run_dir: Path, params: dict[str, Any]) -> Tracker:
    if config.backend == "none":
        return NoTracker()
    return MlflowTracker(config, run_dir, params)


def store_uri(configured: str | None, run_dir: Path) -> str:
    """`tracking.uri`, a relative SQLite path made absolute; unset: the store the run
    already went to (a resume from another directory goes on there), else a SQLite
    store in the working directory's outputs/."""
    if configured is None:
        saved = read_summary(run_dir / TRACKING_FILE) or {}
        if saved.get("backend") == "mlflow" and saved.get("uri"):
            return str(saved["uri"])
        return f"sqlite:///{Path.cwd().absolute() / 'outputs' / 'mlflow.db'}"
    path = configured.removeprefix("sqlite:///")
    if path != configured and not path.startswith("/"):
        return f"sqlite:///{Path(path).absolute()}"
    return configured


class MlflowTracker:
    """One MLflow run for one run directory, fed from a background thread."""

    def __init__(self, config: TrackingConfig, run_dir: Path, params: dict[str, Any]) -> None:
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        self.config = config
        self.run_dir = run_dir
        self.uri = store_uri(config.uri, run_dir)
        self.run_id: str | None = None
        self._client: Any = None
        self._rows: list[tuple[int, int, dict[str, float]]] = []  # (step, time in ms, values)
        self._work: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._failed = False
        self._worker = threading.Thread(target=self._serve, name="mlflow-tracker", daemon=True)
        self._worker.start()
        self._work.put(lambda: self._open(params))

    # -- the trainer's side: never waits on MLflow --------------------------------------
    def record(self, step: int, values: Mapping[str, float]) -> None:
        if not self._failed:
            self._rows.append((step, int(time.time() * 1000), dict(values)))

    def send_through(self, step: int) -> None:
        due = [row for row in self._rows if row[0] <= step]
        self._rows = [row for row in self._rows if row[0] > step]
        if due and not self._failed:
            self._work.put(lambda: self._send(due))

    def add_file(self, path: Path, folder: str) -> None:
        if not self._failed:  # the same name again (a resume films a step again) replaces it
            self._work.put(lambda: self._client.log_artifact(self.run_id, str(path), folder))

    def catch_up(self, step: int) -> None:
        saved = read_summary(self.run_dir / TRACKING_FILE) or {}
        same_run = saved.get("uri") == self.uri
        sent = int(saved.get("sent_through", -1)) if same_run else -1
        # metrics.jsonl holds every logged row, the evaluations' too
        caught_up = [
            (row["step"], int(float(row.get("time", time.time())) * 1000), _numbers(row))
            for row in read_jsonl(self.run_dir / METRICS_FILE)
            if sent < row["step"] <= step
        ]
        self._rows = caught_up + self._rows
        self.send_through(step)

    def finish(self, status: str) -> None:
        if status in ("completed", "interrupted"):  # ended on a checkpoint of this step
            self.send_through(max((row[0] for row in self._rows), default=0))
        # else the rows past the newest checkpoint are the resume's to log again
        self._work.put(lambda: self._close(status))
        self._work.put(None)
        self._worker.join(FINISH_TIMEOUT_S)
        if self._worker.is_alive():
            self._warn(f"it did not answer within {FINISH_TIMEOUT_S} s at the end")

    # -- the background thread --------------------------------------------------------
    def _serve(self) -> None:
        while (task := self._work.get()) is not None:
            if self._failed:
                continue
            try:
                task()
            except Exception as error:  # noqa: BLE001 - any failure: said once, run goes on
                self._warn(f"{type(error).__name__}: {' '.join(str(error).split())[:300]}")

    def _warn(self, reason: str) -> None:
        if not self._failed:
            self._failed = True
            log.warning(
                "tracking: MLflow at %s failed (%s); the run goes on without it, its own "
                "files complete",
                self.uri,
                reason,
            )

    def _open(self, params: dict[str, Any]) -> None:
        for name in ("mlflow", "alembic"):  # their notes on making a new store's tables
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retries: said once, below
        with self._store_lock():
            self._open_run(params)

    @contextlib.contextmanager
    def _store_lock(self) -> Iterator[None]:
        """A SQLite store is made (its tables, the experiment) by one job at a time: two
        sweep jobs making a new store at once break its schema."""
        local = self.uri.removeprefix("sqlite:///")
        if local == self.uri:
            yield
            return
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        with open(f"{local}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _open_run(self, params: dict[str, Any]) -> None:
        from mlflow.tracking import MlflowClient

        self._client = MlflowClient(tracking_uri=self.uri)
        saved = read_summary(self.run_dir / TRACKING_FILE)
        if saved is not None and saved.get("uri") == self.uri and saved.get("run_id"):
            self.run_id = str(saved["run_id"])
            self._client.update_run(self.run_id, status="RUNNING")
            self._client.set_tag(self.run_id, "status", "running")
            return
        experiment = self._experiment_id()
        tags = {"status": "running", "run_dir": str(self.run_dir.absolute())}
        parent = self._sweep_parent(experiment)
        if parent is not None:
            tags["mlflow.parentRunId"] = parent
        run = self._client.create_run(experiment, run_name=self.run_dir.name, tags=tags)
        self.run_id = run.info.run_id
        self._log_params(params)
        self._save(sent_through=-1)

    def _save(self, sent_through: int) -> None:
        """`.tracking.json`: the MLflow run, and the step through which it has the rows
        (a resume sends it those after)."""
        record = {"backend": "mlflow", "uri": self.uri, "run_id": self.run_id}
        write_json_atomic(self.run_dir / TRACKING_FILE, {**record, "sent_through": sent_through})

    def _experiment_id(self) -> str:
        found = self._client.get_experiment_by_name(self.config.experiment)
        if found is not None:
            return str(found.experiment_id)
        # A local store keeps its artifacts beside its database (MLflow's default is the
        # working directory's mlruns/); a server chooses its own.
        local = self.uri.removeprefix("sqlite:///")
        location = None if local == self.uri else (Path(local).parent / "mlartifacts").as_uri()
        return str(self._client.create_experiment(self.config.experiment, location))

    def _sweep_parent(self, experiment: str) -> str | None:
        """The sweep's parent run, made by the first of its jobs (under a lock: jobs run
        at once under joblib); None for a run outside a sweep."""
        sweep_dir = self.run_dir.parent
        if not (sweep_dir / SWEEP_INDEX).is_file():
            return None
        with open(sweep_dir / ".tracking-parent.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            saved = read_summary(sweep_dir / PARENT_FILE)
            if saved is not None and saved.get("uri") == self.uri:
                return str(saved["run_id"])
            tags = {"run_dir": str(sweep_dir.absolute()), "sweep": "true"}
            run = self._client.create_run(experiment, run_name=sweep_dir.name, tags=tags)
            write_json_atomic(sweep_dir / PARENT_FILE, {"uri": self.uri, "run_id": run.info.run_id})
            return str(run.info.run_id)

    def _log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(key, str(value)[:MAX_PARAM_CHARS]) for key, value in params.items()]
        for start in range(0, len(items), PARAMS_BATCH):
            self._client.log_batch(self.run_id, params=items[start : start + PARAMS_BATCH])

    def _send(self, rows: list[tuple[int, int, dict[str, float]]]) -> None:
        from mlflow.entities import Metric

        metrics = [
            Metric(key, value, timestamp, step)
            for step, timestamp, values in rows
            for key, value in values.items()
        ]
        for start in range(0, len(metrics), BATCH):
            self._client.log_batch(self.run_id, metrics=metrics[start : start + BATCH])
        self._save(sent_through=max(step for step, _, _ in rows))

    def _close(self, status: str) -> None:
        for relative in ARTIFACTS:
            path = self.run_dir / relative
            if path.is_file():
                self._client.log_artifact(self.run_id, str(path))
        self._log_plot()
        self._client.set_tag(self.run_id, "status", status)
        finished = {"completed": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
        self._client.set_terminated(self.run_id, status=finished)

    def _log_plot(self) -> None:
        """rl-plot's figure of this run (training and evaluation returns)."""
        from rl_runner.tools.plot import plot_runs

        evaluations = self.run_dir / EVALUATIONS_FILE
        if not evaluations.is_file() or evaluations.stat().st_size == 0:
            return  # nothing to draw yet (a run that failed before its first evaluation)
        with tempfile.TemporaryDirectory() as folder:
            figure = Path(folder) / "curves.png"
            plot_runs([self.run_dir], figure)
            self._client.log_artifact(self.run_id, str(figure), artifact_path="plots")


def _numbers(row: dict[str, Any]) -> dict[str, float]:
    """A JSONL row's scalars (strict JSON writes NaN and infinities as strings)."""
    values = {}
    for key, value in row.items():
        if key in ("step", "time") or isinstance(value, (list, bool)):
            continue
        try:
            values[key] = float(value)
        except (TypeError, ValueError):
            continue
    return values
