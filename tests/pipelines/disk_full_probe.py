"""Run ingest on a data root that fills up; print what each run left, as JSON.

Started by tests/pipelines/test_disk_full.py in a mount namespace of its own (`unshare
--mount`), where the data root is a small tmpfs that vanishes with the namespace. Three
`mlpipe step ingest` runs, in this process as a user's shell would run them: a first on
a few days; a second after four weeks more have landed and a filler file leaves almost no
room (it must fail, naming the root); a third once the filler is gone.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import deltalake

from pipelines.cli import main
from pipelines.ingest.seed import seed_landing, seed_plan
from pipelines.platform.layout import Layout
from tests.conftest import TEST_SETTINGS, make_config

TMPFS_SIZE = "96m"
ROOM_LEFT_BYTES = 256 * 1024


def main_probe(mount_point: Path) -> dict:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs",
                    str(mount_point)], check=True)
    root = mount_point / "data"
    config = make_config(root)
    layout = Layout.of(config)
    plan = seed_plan(config)
    arguments = ["step", "ingest", "--set", f"data_root={root}",
                 *(part for setting in TEST_SETTINGS for part in ("--set", setting))]

    seed_landing(layout.landing(), layout.storage, plan, date(2013, 1, 1), date(2013, 1, 3))
    first = run(arguments)
    after_first = tables(layout, config.ingested_sources)

    seed_landing(layout.landing(), layout.storage, plan, date(2013, 1, 4), date(2013, 1, 31))
    filler = mount_point / "filler"
    with filler.open("wb") as out:
        free = os.statvfs(mount_point).f_bavail * os.statvfs(mount_point).f_frsize
        out.write(b"\0" * max(0, free - ROOM_LEFT_BYTES))
    full = run(arguments)
    after_full = tables(layout, config.ingested_sources)

    filler.unlink()
    again = run(arguments)
    return {"first": first, "full": full, "again": again, "after_first": after_first,
            "after_full": after_full, "after_again": tables(layout, config.ingested_sources),
            "landed": landed_lines(layout, config.ingested_sources)}


def run(arguments: list[str]) -> dict:
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        code = main(arguments)
    return {"code": code, "stderr": errors.getvalue()[-4000:]}


def tables(layout: Layout, sources: list[str]) -> dict[str, list[int]]:
    """(version, rows) of each source's bronze and quarantine table, read without Spark."""
    found = {}
    for source in sources:
        for layer in ("bronze", "quarantine"):
            path = layout.table(layer, source)
            if deltalake.DeltaTable.is_deltatable(path):
                table = deltalake.DeltaTable(path)
                found[f"{layer}.{source}"] = [table.version(), table.to_pyarrow_table().num_rows]
    return found


def landed_lines(layout: Layout, sources: list[str]) -> dict[str, int]:
    """Data lines landed per source (headers excluded)."""
    counts = {}
    for source in sources:
        folder = Path(layout.landing(source))
        counts[source] = sum(len(path.read_text().splitlines()) - 1
                             for path in folder.glob("*.csv"))
    return counts


if __name__ == "__main__":
    print("PROBE " + json.dumps(main_probe(Path(sys.argv[1]))))
