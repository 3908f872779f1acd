"""Data at scale: replay the year of flights K times, as landing files ingest reads like any other.

Copy ``k`` of a flight keeps its day, route, carrier and plane, moves its scheduled
departure (and with it every clock time) by up to ``max_shift_min`` minutes, and adds
Gaussian noise to its delays (the same draw to departure and arrival, plus a smaller
one to arrival alone), so the joint distributions stay those of the real year. Every
random draw is a hash of (seed, copy, flight identity), not a stateful generator: the
output is the same whatever the partitioning, on any cluster.
"""

from __future__ import annotations

import logging
import math
import uuid

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from models.storage import Storage, join

log = logging.getLogger(__name__)

SYNTHETIC_PREFIX = "x"
_IDENTITY = ("year", "month", "day", "carrier", "flight", "origin", "sched_dep_time")


def uniform(seed: int, stream: int) -> Column:
    """A deterministic uniform draw in (0, 1) per row: a hash of the seed, copy and flight."""
    bits = F.pmod(F.xxhash64(F.lit(seed), F.lit(stream), "copy", *_IDENTITY), F.lit(1 << 31))
    return (bits.cast("double") + 1.0) / float((1 << 31) + 1)


def normal(seed: int, stream: int) -> Column:
    """A deterministic standard normal draw per row (Box-Muller on two uniforms)."""
    return (F.sqrt(-2.0 * F.log(uniform(seed, stream)))
            * F.cos(2.0 * math.pi * uniform(seed, stream + 1)))


def _minutes(clock: Column) -> Column:
    return (clock / 100).cast("int") * 60 + clock % 100


def _clock(minutes: Column) -> Column:
    """Minutes (any integer) -> an hhmm clock time of the same day, 0..2359."""
    wrapped = F.pmod(minutes, F.lit(1440))
    return (wrapped / 60).cast("int") * 100 + wrapped % 60


def replay_flights(flights: DataFrame, copies: list[int], *, seed: int, max_shift_min: int,
                   delay_noise_min: float) -> DataFrame:
    """Bronze flights -> ``len(copies)`` shifted, noisy copies in the landing file columns."""
    copy_ids = flights.sparkSession.createDataFrame([(k,) for k in copies], "copy int")
    rows = flights.crossJoin(F.broadcast(copy_ids))
    shift = F.round((uniform(seed, 1) * 2 - 1) * max_shift_min).cast("int")
    sched = F.least(F.greatest(_minutes(F.col("sched_dep_time")) + shift, F.lit(0)),
                    F.lit(1439))
    moved = sched - _minutes(F.col("sched_dep_time"))
    common, own = normal(seed, 3) * delay_noise_min, normal(seed, 5) * delay_noise_min / 2
    dep_delay = F.round(F.col("dep_delay") + common)
    arr_delay = F.round(F.col("arr_delay") + common + own)
    out = rows.select(
        "copy", "year", "month", "day",
        _clock(_minutes(F.col("dep_time")) + moved + (dep_delay - F.col("dep_delay")).cast("int"))
        .alias("dep_time"),
        _clock(sched).alias("sched_dep_time"),
        dep_delay.alias("dep_delay"),
        _clock(_minutes(F.col("arr_time")) + moved + (arr_delay - F.col("arr_delay")).cast("int"))
        .alias("arr_time"),
        _clock(_minutes(F.col("sched_arr_time")) + moved).alias("sched_arr_time"),
        arr_delay.alias("arr_delay"),
        "carrier",
        (F.col("flight") + F.col("copy") * 10000).alias("flight"),
        "tailnum", "origin", "dest", "air_time", "distance",
        (sched / 60).cast("int").alias("hour"),
        (sched % 60).alias("minute"),
        F.date_format(F.col("time_hour") + F.make_interval(
            hours=(sched / 60).cast("int") - F.col("hour")), "yyyy-MM-dd'T'HH:mm:ss'Z'")
        .alias("time_hour"),
    )
    # Delays clipped to the range ingest accepts, so synthetic rows are never quarantined.
    return out.withColumns({c: F.when(F.col(c).isNotNull(), F.least(F.greatest(
        c, F.lit(-1440.0)), F.lit(2880.0))) for c in ("dep_delay", "arr_delay")})


def existing_copies(folder: str, storage: Storage) -> set[int]:
    """Copies already landed (files named ``x<copy>-<part>.csv``)."""
    return {int(name[len(SYNTHETIC_PREFIX):].split("-")[0])
            for name, _ in storage.list_files(folder)
            if name.startswith(SYNTHETIC_PREFIX) and name.endswith(".csv") and "/" not in name}


def write_landing(replayed: DataFrame, folder: str, storage: Storage, files_per_copy: int) -> int:
    """Write replayed flights as CSV landing files; returns the number of files.

    Spark writes into a hidden folder (ingest ignores names starting with ``_``), then
    each file is renamed into the landing folder: ingest sees whole files only.
    """
    staging = join(folder, f"_synthesize-{uuid.uuid4().hex}")
    copies = replayed.select("copy").distinct().count()
    (replayed.repartition(files_per_copy * copies, "copy", "month", "day")
     .sortWithinPartitions(*_IDENTITY)
     .write.partitionBy("copy").option("header", True).csv(staging))
    parts: dict[int, list[str]] = {}
    for name, _ in storage.list_files(staging):
        part_dir, _, file_name = name.rpartition("/")
        if part_dir.startswith("copy=") and file_name.startswith("part-") \
                and file_name.endswith(".csv"):
            parts.setdefault(int(part_dir.split("=")[1]), []).append(name)
    written = 0
    for copy, names in sorted(parts.items()):
        for i, name in enumerate(sorted(names)):
            storage.move(join(staging, name),
                         join(folder, f"{SYNTHETIC_PREFIX}{copy:03d}-{i:04d}.csv"))
            written += 1
    storage.delete_dir(staging)
    return written
