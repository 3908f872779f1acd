"""The process toolkit: failures surface at once with the log, stops reach the group."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from pipelines.services.processes import (
    NotReady,
    free_ports,
    start_process,
    stop_process_group,
    wait_ready,
)


def test_free_ports_are_distinct() -> None:
    ports = free_ports(16)
    assert len(set(ports)) == 16


def test_a_process_that_dies_fails_the_wait_at_once_with_its_log(tmp_path: Path) -> None:
    log_path = tmp_path / "dies.log"
    process = start_process(
        [sys.executable, "-c", "import sys; print('bad flag -x'); sys.exit(3)"], log_path)
    started = time.monotonic()
    with pytest.raises(NotReady, match="(?s)exited with 3.*bad flag -x"):
        wait_ready(process, lambda: False, what="dying", timeout_s=60, log_path=log_path)
    assert time.monotonic() - started < 10


def test_a_process_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    process = start_process([sys.executable, "-c", "import time; time.sleep(60)"],
                            tmp_path / "slow.log")
    try:
        with pytest.raises(NotReady, match="not ready within"):
            wait_ready(process, lambda: False, what="slow", timeout_s=0.5)
    finally:
        stop_process_group(process, grace_s=1)


def test_stop_kills_the_whole_group_even_when_sigterm_is_ignored(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # A shell that ignores SIGTERM, with a child that ignores it too.
    script = (f"trap '' TERM; sh -c \"trap '' TERM; echo \\$\\$ > {pid_file}; sleep 60\" & "
              "wait")
    process = start_process(["sh", "-c", script], tmp_path / "stubborn.log")
    wait_ready(process, lambda: pid_file.exists() and pid_file.read_text().endswith("\n"),
               what="stubborn", timeout_s=10)
    child = int(pid_file.read_text())
    assert alive(child)
    stop_process_group(process, grace_s=0.5)
    assert process.poll() is not None
    deadline = time.monotonic() + 5  # SIGKILL is delivered, not awaited
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for whoever inherited it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
