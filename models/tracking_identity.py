"""Who this process is to an MLflow server with authentication: a user name and password.

MLflow's client reads them from ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD``
on every request. They may be set there, or kept in a private file that
``mlflow.credentials_file`` names, in the format of MLflow's own ``~/.mlflow/credentials``
(so one file serves both). Never in the config itself, which is logged and shown, nor on
a command line, which every local user can read in the process table.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

from models.private_files import read_private, write_private

USERNAME_VARIABLE = "MLFLOW_TRACKING_USERNAME"
PASSWORD_VARIABLE = "MLFLOW_TRACKING_PASSWORD"
# What a process started on another host (an MPI rank) needs to log as this one does.
VARIABLES = (USERNAME_VARIABLE, PASSWORD_VARIABLE)
SECTION = "mlflow"
FILE_KEY = "mlflow.credentials_file"


@dataclass(frozen=True)
class TrackingIdentity:
    """A user of the tracking server."""

    username: str
    password: str

    def environment(self) -> dict[str, str]:
        """The variables by which MLflow's client (and every child process) presents it."""
        return {USERNAME_VARIABLE: self.username, PASSWORD_VARIABLE: self.password}

    def write(self, path: Path) -> Path:
        """Keep it in ``path`` (mode 0600), for ``mlflow.credentials_file``."""
        return write_private(path, f"[{SECTION}]\nmlflow_tracking_username = {self.username}\n"
                                   f"mlflow_tracking_password = {self.password}\n")


def read_identity(path: str) -> TrackingIdentity:
    """The identity kept in ``path``; a clear error naming the file when it is not one."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(read_private(path, FILE_KEY))
    section = parser[SECTION] if parser.has_section(SECTION) else {}
    username = section.get("mlflow_tracking_username", "")
    password = section.get("mlflow_tracking_password", "")
    if not username or not password:
        raise ValueError(f"{FILE_KEY} {path} needs mlflow_tracking_username and "
                         f"mlflow_tracking_password under [{SECTION}]")
    return TrackingIdentity(username, password)


def present_identity(credentials_file: str) -> None:
    """Make this process (and its children) present the configured identity.

    The environment wins when it names a user: an operator's explicit choice for this
    command. Otherwise the file, when one is configured.
    """
    if os.environ.get(USERNAME_VARIABLE) or not credentials_file:
        return
    os.environ.update(read_identity(credentials_file).environment())
