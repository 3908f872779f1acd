"""The data root's disk fills up during ingest: exit 1 naming the root, nothing lost.

The root is a small tmpfs in a mount namespace of the test's own (see disk_full_probe.py),
so the rest of the machine keeps its space and the mount goes with the namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.project import PROJECT_ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                       reason="needs root and unshare(1) to mount a tmpfs"),
]


def test_a_full_disk_fails_the_step_by_name_and_a_rerun_loses_and_repeats_nothing(
        tmp_path: Path) -> None:
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable,
         "-m", "tests.pipelines.disk_full_probe", str(mount_point)],
        capture_output=True, text=True, timeout=500, cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    lines = [line for line in probe.stdout.splitlines() if line.startswith("PROBE ")]
    assert probe.returncode == 0 and lines, probe.stdout[-3000:] + probe.stderr[-5000:]
    seen = json.loads(lines[-1].removeprefix("PROBE "))
    root = mount_point / "data"

    assert seen["first"]["code"] == 0, seen["first"]["stderr"]
    full = seen["full"]
    assert full["code"] == 1
    assert f"no space left on the device under {root} (data_root) while step ingest ran" \
        in full["stderr"], full["stderr"]
    # Each source commits on its own: one that did before the disk filled holds all it
    # landed, the one that hit the full disk is as the first run left it.
    unchanged = [source for source in seen["landed"]
                 if all(seen["after_full"].get(table) == seen["after_first"].get(table)
                        for table in tables_of(source))]
    assert "flights" in unchanged, seen["after_full"]
    for source in set(seen["landed"]) - set(unchanged):
        assert rows_of(seen["after_full"], source) == seen["landed"][source], source

    assert seen["again"]["code"] == 0, seen["again"]["stderr"]
    for source, lines_landed in seen["landed"].items():
        assert rows_of(seen["after_again"], source) == lines_landed, seen["after_again"]


def tables_of(source: str) -> tuple[str, str]:
    return f"bronze.{source}", f"quarantine.{source}"


def rows_of(tables: dict[str, list[int]], source: str) -> int:
    """Rows in a source's bronze and quarantine tables together (each [version, rows])."""
    return sum(tables.get(table, [0, 0])[1] for table in tables_of(source))
