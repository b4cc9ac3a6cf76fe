"""Errors that end a run with one line on stderr and a non-zero exit."""


class RunnerError(Exception):
    """A problem the user can fix; the CLI prints it as one line."""


class ConfigError(RunnerError):
    """A config value that is invalid or does not fit the chosen environment."""


class CheckpointError(RunnerError):
    """A checkpoint that is missing, corrupt, or does not match the run."""
