"""`tracking=wandb`: one Weights & Biases run per run directory, a sweep's jobs in one
W&B group.

    config    the flat config, by the keys HParams shows (`algo.lr`, `seed`, ...)
    history   every scalar the run logs, under its own name, W&B's step = env steps;
              eval.video's GIFs as `eval/video` at their evaluation's step
    tags      the status (running, then completed, interrupted, failed or diverged);
              the summary holds `status` and `run_dir`
    artifact  at the end, `results-<run id>`: best.pt, summary.json, manifest.json and
              rl-plot's figure (plots/curves.png)

W&B keeps one value per key and step: where several episodes end at one env step
(parallel envs) it gets their mean. A step goes to W&B whole, once the rows of a later
step have come (or at the end): W&B refuses a step it has already closed. The files of
W&B's sessions are in the run directory's wandb/; offline ones go to the server with
`wandb sync`. A resume asks W&B which steps it holds (the server, or offline the session
files: a kill loses what W&B had not yet written) and sends it the rest.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_runner.tracking.base import ARTIFACTS, BackgroundTracker, Row, Video, log, newest_step
from rl_runner.tracking.wandb_files import last_step

if TYPE_CHECKING:
    from rl_runner.config.schema import TrackingConfig

INIT_TIMEOUT_S = 30  # a server that does not answer: given up on then, not in W&B's 90 s
VIDEO_KEY = "eval/video"


def sweep_group(sweep_dir: Path) -> str:
    """The W&B group of a sweep's jobs: the sweep directory's name, made unique by its
    path (Hydra's default names are the time of day)."""
    digest = hashlib.sha1(str(sweep_dir.absolute()).encode()).hexdigest()[:8]
    return f"{sweep_dir.name}-{digest}"


class WandbTracker(BackgroundTracker):
    name = "W&B"

    def __init__(self, config: TrackingConfig, run_dir: Path, params: dict[str, Any]) -> None:
        self.config = config
        self._run: Any = None
        self._resumed = False
        # the newest step's rows and video, held until a later step's come (or the end)
        self._held_rows: list[Row] = []
        self._held_videos: list[Video] = []
        server = config.uri or os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
        where = str(run_dir / "wandb") if config.mode == "offline" else server
        super().__init__(run_dir, params, where=where)

    def _same_run(self, saved: dict[str, Any]) -> bool:
        place = {"backend": "wandb", "project": self.config.project, "entity": self.config.entity}
        return all(saved.get(key) == value for key, value in place.items())

    def _open(self, params: dict[str, Any]) -> None:
        import wandb

        saved = self.saved()
        self._resumed = self._same_run(saved) and bool(saved.get("run_id"))
        sweep_dir = self.sweep_dir()
        from rl_runner.tracking import use_wandb_server

        use_wandb_server(self.config.uri)
        timeout = float(os.environ.get("WANDB_INIT_TIMEOUT", INIT_TIMEOUT_S))
        settings = wandb.Settings(console="off", silent=True, save_code=False, init_timeout=timeout)
        self._run = wandb.init(
            project=self.config.project,
            entity=self.config.entity,
            dir=str(self.run_dir),
            id=str(saved["run_id"]) if self._resumed else None,
            resume="allow" if self._resumed else None,
            mode="offline" if self.config.mode == "offline" else "online",
            name=self.run_dir.name,
            group=None if sweep_dir is None else sweep_group(sweep_dir),
            config=None if self._resumed else params,  # params are the first session's
            tags=["running"],
            reinit="create_new",  # a sweep's jobs one after another in one process
            settings=settings,
        )
        self._run.summary["run_dir"] = str(self.run_dir.absolute())
        record = {"backend": "wandb", "project": self.config.project}
        self.save({**record, "entity": self.config.entity, "run_id": self._run.id})

    def _resume_point(self) -> int:
        if not self._resumed:
            return -1
        if self.config.mode == "offline":
            return last_step(self.run_dir, self._run.id)
        return int(self._run.step) - 1  # the server's: the steps it holds end there

    def _send(self, rows: list[Row], videos: list[Video]) -> None:
        rows, videos = self._held_rows + rows, self._held_videos + videos
        newest = newest_step(rows, videos)
        self._held_rows = [row for row in rows if row[0] == newest]
        self._held_videos = [video for video in videos if video[0] == newest]
        self._log([row for row in rows if row[0] < newest], [v for v in videos if v[0] < newest])

    def _log(self, rows: list[Row], videos: list[Video]) -> None:
        import wandb

        values: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for step, _, row in rows:
            for key, value in row.items():
                values[step][key].append(value)
        films = dict(videos)
        for step in sorted(values.keys() | films.keys()):
            if step < self._run.step:  # W&B has it (a resume sent again what it held)
                continue
            entry: dict[str, Any] = {
                key: sum(seen) / len(seen) for key, seen in values[step].items()
            }
            if step in films:
                entry[VIDEO_KEY] = wandb.Video(str(films[step]), format="gif")
            self._run.log(entry, step=step, commit=True)

    def _close(self, status: str) -> None:
        import wandb

        self._log(self._held_rows, self._held_videos)
        results = wandb.Artifact(f"results-{self._run.id}", type="results")
        for relative in ARTIFACTS:
            path = self.run_dir / relative
            if path.is_file():
                results.add_file(str(path), name=path.name)
        self.with_plot(lambda figure: results.add_file(str(figure), name="plots/curves.png"))
        self._run.log_artifact(results)
        self._run.summary["status"] = status
        self._run.tags = (status,)
        self._run.finish(exit_code=0 if status == "completed" else 1)
        if self.config.mode == "offline":  # every session's folder, the earlier ones too
            folders = self.run_dir / "wandb" / f"offline-run-*-{self._run.id}"
            log.info("tracking: W&B's offline run: `wandb sync %s` sends it", folders)
