"""Errors that end a run with one line on stderr, and the exit status of each.

Exit statuses of `rl-run` (README, "What survives what"):
  0    done (or nothing left to do)
  1    a sweep finished with failed jobs (each job's summary.json says why)
  2    refused before anything was written: bad config, command line, directory or
       checkpoint, or a run directory in use by another rl-run
  3    training diverged (a non-finite loss); the last good checkpoint is kept
  4    a file could not be written (disk full, read-only); the newest checkpoint is intact
  5    training stopped on an error (raised by the env, say, or a NaN it returned); the
       newest checkpoint is intact
  130  stopped by SIGINT (Ctrl-C), 143 by SIGTERM; a checkpoint was written
"""

EXIT_SWEEP_FAILED = 1
EXIT_REFUSED = 2
EXIT_DIVERGED = 3
EXIT_STORAGE = 4
EXIT_TRAINING_FAILED = 5


class RunnerError(Exception):
    """A problem the user can fix; the CLI prints it as one line."""

    exit_code = EXIT_REFUSED


class ConfigError(RunnerError):
    """A config value that is invalid or does not fit the chosen environment."""


class CheckpointError(RunnerError):
    """A checkpoint that is missing, corrupt, or does not match the run."""


class RunLocked(RunnerError):
    """Another process is writing to the run directory."""


class Diverged(RunnerError):
    """A training quantity became NaN or infinite."""

    exit_code = EXIT_DIVERGED


class StorageError(RunnerError):
    """A file of the run could not be written."""

    exit_code = EXIT_STORAGE


class TrainingFailed(RunnerError):
    """An error inside the training loop that is none of the above (an env's)."""

    exit_code = EXIT_TRAINING_FAILED


class RunInterrupted(RunnerError):
    """SIGINT/SIGTERM stopped the run after a checkpoint was written."""

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number
