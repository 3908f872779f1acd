"""The tracking identity: from the environment, or a private file in MLflow's format."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.private_files import PrivateFileError
from models.tracking_identity import (
    PASSWORD_VARIABLE,
    USERNAME_VARIABLE,
    TrackingIdentity,
    present_identity,
    read_identity,
)


@pytest.fixture(autouse=True)
def no_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, and restored after the test (what present_identity sets must not leak)."""
    for name in (USERNAME_VARIABLE, PASSWORD_VARIABLE):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_a_kept_identity_is_presented_to_this_process_and_its_children(tmp_path: Path) -> None:
    path = TrackingIdentity("mlpipe-pipeline", "p@ss=word;x").write(tmp_path / "credentials")
    present_identity(str(path))
    assert os.environ[USERNAME_VARIABLE] == "mlpipe-pipeline"
    assert os.environ[PASSWORD_VARIABLE] == "p@ss=word;x"


def test_the_environment_wins_over_the_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = TrackingIdentity("from-file", "secret").write(tmp_path / "credentials")
    monkeypatch.setenv(USERNAME_VARIABLE, "from-env")
    present_identity(str(path))
    assert os.environ[USERNAME_VARIABLE] == "from-env"


def test_a_file_others_can_read_or_without_a_user_is_refused_by_name(tmp_path: Path) -> None:
    path = TrackingIdentity("u", "p").write(tmp_path / "credentials")
    path.chmod(0o644)
    with pytest.raises(PrivateFileError, match=f"mlflow.credentials_file {path} is readable "
                                               "by others.*chmod 600"):
        read_identity(str(path))
    path.chmod(0o600)
    path.write_text("[mlflow]\nmlflow_tracking_username = u\n")
    with pytest.raises(ValueError, match="needs mlflow_tracking_username and "
                                         "mlflow_tracking_password under \\[mlflow\\]"):
        read_identity(str(path))
