"""A dataset's landing sources as declared in ``conf/datasets/<dataset>/sources.yaml``.

A declaration is checked whole when the configuration loads, before any Spark job: the
columns its rules, flags, required and statistics columns name must be its own, and
every SQL condition must parse. Conditions are parsed with Spark's SQL dialect in
Python (sqlglot), so ``mlpipe config show`` finds a misspelt column without starting a
JVM; Spark itself compiles them when ingest runs.
"""

from __future__ import annotations

from typing import Literal

import sqlglot
from pydantic import Field, model_validator
from sqlglot import exp

from pipelines.platform.section import DeclarationError, Section

ColumnType = Literal["int", "long", "double", "string", "boolean", "date", "timestamp"]


class Rule(Section):
    """A SQL condition every valid row satisfies; a row that fails it is quarantined as ``reason``.

    A NULL result counts as valid: a missing value is the business of ``required``.
    """

    reason: str = Field(min_length=1)
    check: str = Field(min_length=1)


class SourceDeclaration(Section):
    """One source: its landing files' format and columns, and what makes a row good."""

    # csv: every file starts with the header line of the columns; json: JSON Lines, one
    # object per line (keys that are not columns are ignored); parquet: each file read with
    # its own schema, its values held to the declared types.
    format: Literal["csv", "json", "parquet"] = "csv"
    # In file order: a CSV landing file starts with exactly these names as its header.
    columns: dict[str, ColumnType] = Field(min_length=1)
    required: list[str] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    # Boolean columns added to bronze, each a SQL condition (NULL reads as false).
    flags: dict[str, str] = Field(default_factory=dict)
    # The columns bronze keeps per-file min/max statistics for: those its readers filter
    # on. Empty means Delta's default, every column, which on flights costs a fifth of
    # the bronze write.
    stats_columns: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_its_own_columns(self) -> SourceDeclaration:
        known = set(self.columns)
        for key, names in (("required", self.required), ("stats_columns", self.stats_columns)):
            _check_known((key,), names, known)
        reasons = [rule.reason for rule in self.rules]
        for index, reason in enumerate(reasons):
            if reason in reasons[:index]:
                raise DeclarationError(("rules", index, "reason"),
                                       f"{reason!r} is the reason of an earlier rule too; "
                                       "give each rule its own")
        for index, rule in enumerate(self.rules):
            key = ("rules", index, "check")
            _check_known(key, columns_in(key, rule.check), known)
        for name, condition in self.flags.items():
            if name in known:
                raise DeclarationError(("flags", name), "a flag cannot share its name with a "
                                                        "column; rename the flag")
            _check_known(("flags", name), columns_in(("flags", name), condition), known)
        return self


def columns_in(key: tuple[str | int, ...], condition: str) -> list[str]:
    """The column names the SQL condition at ``key`` reads, in order of first use."""
    try:
        parsed = sqlglot.parse_one(condition, dialect="spark")
    except sqlglot.errors.ParseError as exc:
        where = exc.errors[0] if exc.errors else {}
        raise DeclarationError(key, f"{condition!r} does not parse as a SQL condition (line "
                                    f"{where.get('line')}, column {where.get('col')}: "
                                    f"{where.get('description')})") from None
    return list(dict.fromkeys(column.name for column in parsed.find_all(exp.Column)))


def _check_known(key: tuple[str | int, ...], names: list[str], known: set[str]) -> None:
    unknown = [name for name in names if name not in known]
    if unknown:
        raise DeclarationError(key, f"{', '.join(map(repr, unknown))} is not a column of this "
                                    f"source; its columns are {', '.join(sorted(known))}")
