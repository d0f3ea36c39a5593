"""dlrun's exceptions, in one module that imports nothing, so every layer can raise them.

Two kinds reach the user as one line: `UsageError` (bad input at the command
line, exit 2) and `ConfigError` (a setting that is well typed but cannot be
used, found by the library; the CLI turns it into a UsageError). `RunFailed`
is training that raised after it started (exit 1, the run folder says `failed`).
"""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


class ConfigError(ValueError):
    """A setting that is well typed but cannot be used (one line, exit code 2)."""


class DataError(ConfigError):
    """A data set that cannot be built from the given settings or file."""


class ModelError(ConfigError):
    """A model that cannot be built from the given settings and data."""


class OptimError(ConfigError):
    """An optimizer or schedule that cannot be built from the given settings."""


class AugmentError(ConfigError):
    """An augmentation that does not fit the data."""


class TransferError(ConfigError):
    """A transfer source or freeze setting that cannot be used."""


class UnusableFile(ConfigError):
    """A file in a run or sweep folder that dlrun will not read or write through (exit 2)."""

    def __init__(self, path, why: str):
        self.path, self.why = path, why
        super().__init__(f"{path} {why}")


class RunFailed(Exception):
    """Training raised; the run folder keeps what was saved and says `failed`."""


class WriteError(RunFailed):
    """A file could not be written (disk full, read-only, quota): one line naming file and cause."""

    def __init__(self, path, cause: OSError):
        self.path, self.cause = path, cause
        reason = cause.strerror or str(cause) or type(cause).__name__
        super().__init__(f"cannot write {path}: {reason[:1].lower() + reason[1:]}")


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM ended the work; exit code 128 + the signal's number (130, 143)."""

    def __init__(self, signal_name: str = "SIGINT", exit_code: int = 130, message: str = ""):
        self.signal_name, self.exit_code = signal_name, exit_code
        super().__init__(message or f"interrupted by {signal_name}")
