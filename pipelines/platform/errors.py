"""Errors the CLI maps to exit codes: usage/config problems exit 2, job failures exit 1."""


class MlpipeError(Exception):
    """Base of the errors mlpipe raises on purpose, with a message meant for the user."""


class ConfigError(MlpipeError):
    """The configuration is invalid; the message names the file and the key."""


class TrackingUnavailableError(MlpipeError):
    """The MLflow tracking server cannot be reached; raised before any work starts."""


class DataError(MlpipeError):
    """Input data is unusable; the message names the table, file or column."""


class StorageUnavailableError(MlpipeError):
    """The object store behind the data root cannot be used; raised before any work starts."""


class RegistryConflictError(MlpipeError):
    """A registered model belongs to another deployment; nothing was written to it."""


class StorageFullError(MlpipeError):
    """The disk under the data root filled up during a step; its tables stay as they were."""
