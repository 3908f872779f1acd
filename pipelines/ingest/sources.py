"""The landing sources: the explicit schema of each, its validation rules and its flags.

Sources are declared per dataset in ``conf/datasets/<dataset>/sources.yaml`` and checked
when the configuration loads (``pipelines/platform/source_declarations.py``); this module
turns a declaration into what the Spark jobs use. Ingest never infers a schema: a file
that does not match these columns and types sends its rows to quarantine with the
reason instead of changing the bronze table. Rules are SQL conditions that a *valid*
row satisfies; a NULL result counts as valid, because missing values are the business
of ``required`` (a cancelled flight has no departure time and is real data, not a bad row).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from pipelines.platform.config import Config
from pipelines.platform.errors import DataError
from pipelines.platform.source_declarations import SourceDeclaration


@dataclass(frozen=True)
class Source:
    """One landing source: ``landing/<name>/`` -> ``lake/bronze/<name>``.

    ``format``: ``csv`` (files start with the header line), ``json`` (JSON Lines, one
    object per line) or ``parquet``. ``stats_columns``: the columns bronze keeps per-file min/max
    statistics for; empty means Delta's default, every column.
    """

    name: str
    schema: StructType
    required: tuple[str, ...]
    rules: tuple[tuple[str, str], ...] = ()
    flags: dict[str, str] = field(default_factory=dict)
    stats_columns: tuple[str, ...] = ()
    format: str = "csv"

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]

    @property
    def header(self) -> str:
        """The header line every CSV landing file of this source starts with."""
        return ",".join(self.columns)


SPARK_TYPES: dict[str, type[DataType]] = {
    "int": IntegerType, "long": LongType, "double": DoubleType, "string": StringType,
    "boolean": BooleanType, "date": DateType, "timestamp": TimestampType,
}
"""A declared column type (``ColumnType``) -> its Spark type."""


def source_from(name: str, declaration: SourceDeclaration) -> Source:
    """The runtime form of one declared source: a Spark schema, rules as (reason, SQL) pairs."""
    schema = StructType([StructField(column, SPARK_TYPES[kind](), True)
                         for column, kind in declaration.columns.items()])
    return Source(name=name, schema=schema, required=tuple(declaration.required),
                  rules=tuple((rule.reason, rule.check) for rule in declaration.rules),
                  flags=dict(declaration.flags), stats_columns=tuple(declaration.stats_columns),
                  format=declaration.format)


def declared_sources(config: Config) -> dict[str, Source]:
    """Every source the configured dataset declares, by name."""
    return {name: source_from(name, declaration) for name, declaration in config.sources.items()}


def get_source(config: Config, name: str) -> Source:
    """The declared source called ``name``; a DataError lists the declared ones."""
    if name not in config.sources:
        raise DataError(f"no source {name!r} in dataset {config.dataset!r}; it declares "
                        f"{', '.join(config.sources)}")
    return source_from(name, config.sources[name])
