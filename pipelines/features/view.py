"""A declared view over bronze tables: run its SQL or call its function, then check its columns.

Both kinds get the bronze tables by source name (SQL as temporary views). The columns
the rest of the features step relies on are checked on the view's schema, which Spark
knows from analysis alone, so a view that lacks one fails before any job runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pyspark.sql import DataFrame, SparkSession

from pipelines.platform.errors import ConfigError
from pipelines.platform.feature_declarations import ViewDeclaration
from pipelines.platform.imports import resolve_function


def build_view(spark: SparkSession, view: ViewDeclaration, tables: Mapping[str, DataFrame],
               key: str) -> DataFrame:
    """The view's rows; ``key`` (``features.view``) names it in errors."""
    if view.function is not None:
        function = resolve_function(view.function, f"{key}.function")
        return function({n: tables[n] for n in view.inputs})
    for name in view.inputs:
        tables[name].createOrReplaceTempView(name)
    return spark.sql(view.sql)


def require_columns(df: DataFrame, needed: Mapping[str, Iterable[str]], key: str) -> None:
    """Every column of ``needed`` (declaring key -> columns) is in ``df``, or a ConfigError
    naming the first declaring key whose column the view does not give."""
    present = set(df.columns)
    for declared_at, columns in needed.items():
        missing = [c for c in columns if c not in present]
        if missing:
            raise ConfigError(f"{key}: the view gives no column {', '.join(missing)}, which "
                              f"{declared_at} needs; it gives {', '.join(df.columns)}")
