"""The spec applied with Spark: raw request columns -> model inputs, for training and scoring.

Column expressions only (no Python UDFs), so encoding runs in the JVM at Spark's
speed; :mod:`models.features.encode_pandas` is the same computation in numpy, and
the tests hold the two to identical results.
"""

from __future__ import annotations

from pyspark.ml.functions import array_to_vector
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from models.features.fields import DERIVED_CATEGORICAL, DERIVED_NUMERIC, FLIGHTS
from models.features.holidays import FIXED_HOLIDAYS, NTH_WEEKDAY_HOLIDAYS
from models.features.spec import FeatureSpec

PLANE_COLUMNS = ("plane_year", "seats", "engine")
DERIVED_COLUMNS = (*DERIVED_CATEGORICAL, *DERIVED_NUMERIC, "plane_year")


def _nth_weekday(year: Column, month: int, weekday: int, n: int) -> Column:
    """The n-th ``weekday`` (Mon=0) of a month; n = -1 is the last one (as in holidays.py)."""
    if n > 0:
        first = F.make_date(year, F.lit(month), F.lit(1))
        return F.date_add(first, F.pmod(F.lit(weekday) - F.weekday(first), F.lit(7)) + 7 * (n - 1))
    last = F.last_day(F.make_date(year, F.lit(month), F.lit(1)))
    return F.date_sub(last, F.pmod(F.weekday(last) - F.lit(weekday), F.lit(7)))


def days_to_holiday(day: Column) -> Column:
    """Days from ``day`` to the nearest US federal holiday (see :mod:`holidays`)."""
    year = F.year(day)
    holidays = [F.make_date(year, F.lit(m), F.lit(d)) for m, d in FIXED_HOLIDAYS]
    holidays += [_nth_weekday(year, m, wd, n) for m, wd, n in NTH_WEEKDAY_HOLIDAYS]
    # The nearest holiday is in the same year or is one of the two around New Year.
    holidays += [F.make_date(year - 1, F.lit(12), F.lit(25)),
                 F.make_date(year + 1, F.lit(1), F.lit(1))]
    return F.least(*[F.abs(F.datediff(h, day)) for h in holidays])


def plane_table(spec: FeatureSpec, df: DataFrame) -> DataFrame:
    """The spec's plane facts as a small DataFrame to join on ``tailnum``."""
    rows = [(tail, *facts) for tail, facts in spec.planes.items()]
    return df.sparkSession.createDataFrame(
        rows, "tailnum string, plane_year int, seats int, engine string")


def derive_spark(df: DataFrame, planes: DataFrame) -> DataFrame:
    """The flights derivation: add the derived fields to raw flight columns (replacing any).

    ``planes`` has ``tailnum`` and :data:`PLANE_COLUMNS`, one row per tail number.
    """
    when = F.col("sched_dep_local")
    base = df.drop(*DERIVED_COLUMNS)
    joined = base.join(F.broadcast(planes.select("tailnum", *PLANE_COLUMNS)), "tailnum", "left")
    return joined.select(
        *base.columns,
        F.hour(when).cast("string").alias("hour"),
        F.weekday(when).cast("string").alias("dow"),
        F.month(when).cast("string").alias("month"),
        F.concat("origin", F.lit("-"), "dest").alias("route"),
        F.col("engine"),
        F.col("plane_year"),
        days_to_holiday(F.to_date(when)).alias("days_to_holiday"),
        (F.year(when) - F.col("plane_year")).alias("plane_age"),
        F.col("seats"),
    )


def _index(spec_vocab: tuple[str, ...], value: Column) -> Column:
    mapping = F.create_map(*[F.lit(x) for i, v in enumerate(spec_vocab) for x in (v, i + 1)])
    return F.coalesce(F.try_element_at(mapping, value), F.lit(0))


def encode_spark(spec: FeatureSpec, df: DataFrame) -> DataFrame:
    """Add ``features`` (a vector), ``cat_indices`` (array<int>) and ``numeric`` (array<double>).

    ``df`` needs the spec's ``request`` columns; other columns (labels, split, ids)
    pass through.
    """
    missing = [name for name in spec.request if name not in df.columns]
    if missing:
        raise ValueError(f"raw records lack the fields {', '.join(missing)}")
    derived = derive_spark(df, plane_table(spec, df)) if spec.derivation == FLIGHTS else df
    indices = [_index(c.vocab, F.col(c.name)) for c in spec.categorical]
    for hashed in spec.hashed:
        value = F.col(hashed.column)
        indices.append(F.when(value.isNull() | (value == ""), F.lit(0))
                       .otherwise(F.pmod(F.crc32(value), F.lit(hashed.buckets)) + 1))
    numeric = [F.coalesce((F.col(n.name).cast("double") - F.lit(n.mean)) / F.lit(n.std),
                          F.lit(0.0)) for n in spec.numeric]
    numeric += [F.col(m.column).isNull().cast("double") for m in spec.missing]
    code = F.col("cat_indices")
    onehot = [(code.getItem(k) == F.lit(i + 1)).cast("double")
              for k, c in enumerate(spec.categorical)
              for i, level in enumerate(c.vocab) if level in c.linear_levels]
    design = F.concat(F.array(*onehot), F.col("numeric")) if onehot else F.col("numeric")
    return (derived
            .withColumn("cat_indices", F.array(*[i.cast("int") for i in indices]))
            .withColumn("numeric", F.array(*numeric))
            .withColumn("features", array_to_vector(design)))
