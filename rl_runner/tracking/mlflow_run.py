"""`tracking=mlflow`: one MLflow run per run directory, a sweep's jobs children of one
parent run (its id in the sweep directory's `.tracking-parent.json`).

    params   the flat config, by the keys HParams shows (`algo.lr`, `seed`, ...)
    metrics  every scalar the run logs, under its own name, x = env steps (evaluations too)
    tags     status (running, completed, interrupted, failed, diverged), the run directory
    artifacts eval.video's GIFs (videos/); at the end best.pt, summary.json, manifest.json
             and rl-plot's figure (plots/)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_runner.rundir import VIDEOS_DIR, read_summary, write_json_atomic
from rl_runner.tracking.base import (
    ARTIFACTS,
    TRACKING_FILE,
    BackgroundTracker,
    Row,
    Video,
    log,
    newest_step,
)

if TYPE_CHECKING:
    from rl_runner.config.schema import TrackingConfig

PARENT_FILE = ".tracking-parent.json"  # in a sweep directory: the sweep's parent run
# A tracking server that does not answer: a few quick tries, not MLflow's minutes of them.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
BATCH = 1000  # MLflow's limit of metrics per log_batch call
PARAMS_BATCH = 100  # ... and of params
MAX_PARAM_CHARS = 6000
MLFLOW_STATES = {"completed": "FINISHED", "interrupted": "KILLED"}  # else FAILED


def store_uri(configured: str | None, saved: dict[str, Any]) -> str:
    """`tracking.uri`, a relative SQLite path made absolute; unset: the store the run
    already went to (`saved`, its `.tracking.json`: a resume from another directory goes
    on there), else a SQLite store in the working directory's outputs/."""
    if configured is None:
        if saved.get("backend") == "mlflow" and saved.get("uri"):
            return str(saved["uri"])
        return f"sqlite:///{Path.cwd().absolute() / 'outputs' / 'mlflow.db'}"
    path = configured.removeprefix("sqlite:///")
    if path != configured and not path.startswith("/"):
        return f"sqlite:///{Path(path).absolute()}"
    return configured


def close_sweep_parent(sweep_dir: Path, status: str) -> None:
    """The sweep's parent run ended, by the sweep's driver once its jobs have: its
    status tag and state. Nothing where the sweep has no parent run (no MLflow)."""
    saved = read_summary(sweep_dir / PARENT_FILE)
    if saved is None:
        return
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=str(saved["uri"]))
        client.set_tag(str(saved["run_id"]), "status", status)
        client.set_terminated(str(saved["run_id"]), status=MLFLOW_STATES.get(status, "FAILED"))
    except Exception as error:  # noqa: BLE001 - the jobs' own runs are complete
        reason = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        log.warning(
            "tracking: MLflow at %s failed to end the sweep's run (%s)", saved["uri"], reason
        )


class MlflowTracker(BackgroundTracker):
    name = "MLflow"

    def __init__(self, config: TrackingConfig, run_dir: Path, params: dict[str, Any]) -> None:
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        self.config = config
        self.uri = store_uri(config.uri, read_summary(run_dir / TRACKING_FILE) or {})
        self.run_id: str | None = None
        self._client: Any = None
        super().__init__(run_dir, params, where=self.uri)

    def _same_run(self, saved: dict[str, Any]) -> bool:
        return saved.get("backend") == "mlflow" and saved.get("uri") == self.uri

    def _open(self, params: dict[str, Any]) -> None:
        for name in ("mlflow", "alembic"):  # their notes on making a new store's tables
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retries: said once
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
        saved = self.saved()
        if self._same_run(saved) and saved.get("run_id"):
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
        """The MLflow run, and the step through which it has the rows."""
        record = {"backend": "mlflow", "uri": self.uri, "run_id": self.run_id}
        self.save({**record, "sent_through": sent_through})

    def _resume_point(self) -> int:
        saved = self.saved()
        return int(saved.get("sent_through", -1)) if self._same_run(saved) else -1

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
        sweep_dir = self.sweep_dir()
        if sweep_dir is None:
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

    def _send(self, rows: list[Row], videos: list[Video]) -> None:
        from mlflow.entities import Metric

        metrics = [
            Metric(key, value, timestamp, step)
            for step, timestamp, values in rows
            for key, value in values.items()
        ]
        for start in range(0, len(metrics), BATCH):
            self._client.log_batch(self.run_id, metrics=metrics[start : start + BATCH])
        for _, path in videos:  # the same name again (a step filmed again) replaces it
            self._client.log_artifact(self.run_id, str(path), VIDEOS_DIR)
        self._save(sent_through=newest_step(rows, videos))

    def _close(self, status: str) -> None:
        for relative in ARTIFACTS:
            path = self.run_dir / relative
            if path.is_file():
                self._client.log_artifact(self.run_id, str(path))
        self.with_plot(lambda figure: self._client.log_artifact(self.run_id, str(figure), "plots"))
        self._client.set_tag(self.run_id, "status", status)
        self._client.set_terminated(self.run_id, status=MLFLOW_STATES.get(status, "FAILED"))
