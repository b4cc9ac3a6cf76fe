"""The `rl-run` console script: stop signals are taken before anything heavy loads.

Importing the runner (Hydra, OmegaConf) takes a second or more on a busy machine; a
Ctrl-C in that time would otherwise print the import's traceback.
"""

from __future__ import annotations

import sys

from rl_runner.stopping import ignore_stop_signals, pending_signal, remember_stop_signals


def rl_run() -> None:
    remember_stop_signals()
    from rl_runner.train import cli

    stop = pending_signal()
    if stop is not None:
        ignore_stop_signals()
        print("rl-run: interrupted before training started; nothing was kept", file=sys.stderr)
        sys.exit(128 + stop)
    cli()
