"""A progress bar on a terminal, plain log lines elsewhere (files, CI, sweeps).

The per-evaluation line always reaches train.log; on a terminal it skips the console,
where the bar shows the same figures.
"""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

log = logging.getLogger("rl_runner")

# `extra=FILE_ONLY` on a log call: train.log only, not the console (see train.py).
FILE_ONLY = {"file_only": True}


class Progress:
    def __init__(self, total_steps: int, start_step: int, interactive: bool | None = None) -> None:
        if interactive is None:  # stdout may be closed (`rl-run ... >&-`)
            interactive = sys.stdout is not None and sys.stdout.isatty()
        self.total_steps = total_steps
        self._bar = (
            tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True)
            if interactive
            else None
        )
        self._shown_step = start_step

    def advance(self, step: int) -> None:
        if self._bar is not None:
            # Parallel envs can step past the total; the bar stops at it.
            self._bar.update(min(step, self.total_steps) - self._shown_step)
        self._shown_step = min(step, self.total_steps)

    def evaluated(self, step: int, return_mean: float, steps_per_second: float | None) -> None:
        """Record an evaluation: the bar shows it at once, train.log gets a line (with
        the speed of the last log window, once there is one)."""
        if self._bar is not None:
            self._bar.set_postfix(eval_return=f"{return_mean:.1f}")
        # Floored: 1000 of 1001 steps is 99%, not a rounded-up 100%.
        percent = 100 * step // self.total_steps
        speed = "" if steps_per_second is None else f"  {steps_per_second:.0f} steps/s"
        log.info(
            "step %d/%d (%d%%)%s  eval return %.2f",
            step,
            self.total_steps,
            percent,
            speed,
            return_mean,
            extra=FILE_ONLY if self._bar is not None else None,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
