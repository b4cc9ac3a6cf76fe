"""A progress bar on a terminal, plain log lines elsewhere (files, CI, sweeps)."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

log = logging.getLogger("rl_runner")


class Progress:
    def __init__(self, total_steps: int, start_step: int, interactive: bool | None = None) -> None:
        if interactive is None:
            interactive = sys.stdout.isatty()
        self.total_steps = total_steps
        self._bar = (
            tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True)
            if interactive
            else None
        )
        self._shown_step = start_step
        self._last_eval: float | None = None

    def advance(self, step: int) -> None:
        if self._bar is not None:
            self._bar.update(step - self._shown_step)
            if self._last_eval is not None:
                self._bar.set_postfix(eval_return=f"{self._last_eval:.1f}", refresh=False)
        self._shown_step = step

    def evaluated(self, step: int, return_mean: float, steps_per_second: float) -> None:
        """Record an evaluation; without a bar this is the periodic log line."""
        self._last_eval = return_mean
        if self._bar is None:
            percent = 100.0 * step / self.total_steps
            log.info(
                "step %d/%d (%.0f%%)  %.0f steps/s  eval return %.2f",
                step,
                self.total_steps,
                percent,
                steps_per_second,
                return_mean,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
