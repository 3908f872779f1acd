"""A killed server's downloaded model copy is removed by the next load, a live one's kept."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

from serving.runtime import MODEL_FOLDER_PREFIX, remove_orphaned_folders
from tests.serving.conftest import start_server


def folders_of(pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{MODEL_FOLDER_PREFIX}{pid}-*"))


def test_the_next_load_removes_the_model_folder_of_a_killed_server(
        linear_uri: str, tmp_path: Path) -> None:
    killed = start_server(linear_uri, tmp_path)
    alive = start_server(linear_uri, tmp_path)
    try:
        assert len(folders_of(killed.process.pid)) == 1, "the server keeps no copy of its own"
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait(30)
        assert len(folders_of(killed.process.pid)) == 1  # no finalizer ran
        remove_orphaned_folders()
        assert folders_of(killed.process.pid) == []
        assert len(folders_of(alive.process.pid)) == 1
    finally:
        alive.stop()
    assert folders_of(alive.process.pid) == [], "a server stopped by SIGTERM left its copy"
