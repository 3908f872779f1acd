"""A dataset's feature view, labels, split and encodings, as declared in ``conf/datasets/``.

``features`` says how bronze tables become the silver table of one row per example (a
Spark SQL query, or a function for what SQL cannot say), what the labels are, what is
known only after the fact (leakage, never a feature), how rows split by time, what a
caller sends at serving time (``request``), and how each feature is encoded; the feature
spec is fitted from it. ``sequences`` (optional) builds the windows the sequence model
learns from. Everything here is checked when the config loads, before any Spark job, and
an error names the key.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import sqlglot
from pydantic import Field, model_validator
from sqlglot import exp

from models.features.fields import (
    DERIVATION_INPUTS,
    DERIVATION_SOURCES,
    DERIVED_CATEGORICAL,
    DERIVED_FIELDS,
)
from pipelines.platform.section import DeclarationError, Section, check_import_path

RequestType = Literal["string", "float64", "datetime64[ns]"]
SQL_DIALECT = "spark"
# The sequence table's columns besides the entity and the period: the windows, the label
# (the next period's ``sequences.target``) and the period that label is for.
SEQUENCE_WINDOW = "window"
SEQUENCE_LABEL = "target"
SEQUENCE_TARGET_TIME = "target_time"


def parse_sql(text: str, key: tuple[str, ...], what: str) -> exp.Expression:
    """``text`` parsed as Spark SQL, or a :class:`DeclarationError` at ``key``."""
    try:
        parsed = sqlglot.parse_one(text, read=SQL_DIALECT)
    except sqlglot.errors.ParseError as exc:
        raise DeclarationError(key, f"not a valid SQL {what}: {exc.errors[0]['description']}"
                               ) from None
    if parsed is None:
        raise DeclarationError(key, f"an empty SQL {what}")
    return parsed


class ViewDeclaration(Section):
    """Bronze tables -> rows: exactly one of a SQL query over ``inputs`` (each bronze table
    by its source name) or the import path ``package.module:function`` of a function
    ``(tables: dict[str, DataFrame]) -> DataFrame`` the user ships."""

    inputs: list[str] = Field(min_length=1)
    sql: str | None = None
    function: str | None = None

    @model_validator(mode="after")
    def _one_definition(self) -> ViewDeclaration:
        if (self.sql is None) == (self.function is None):
            raise DeclarationError((), "give exactly one of sql (a query over the inputs) "
                                   "and function (package.module:function)")
        if self.function is not None:
            check_import_path(self.function, ("function",), "mypackage.views:examples")
        if self.sql is not None:
            query = parse_sql(self.sql, ("sql",), "query")
            ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
            unknown = sorted({t.name for t in query.find_all(exp.Table)} - ctes
                             - set(self.inputs))
            if unknown:
                raise DeclarationError(("sql",), f"reads {', '.join(unknown)}, which "
                                       f"{'is' if len(unknown) == 1 else 'are'} not among its "
                                       f"inputs ({', '.join(self.inputs)})")
        return self


class CategoricalDeclaration(Section):
    """A categorical feature; ``linear: false`` keeps it out of the linear design (for a
    column whose one-hot columns are sums of others', which would make it singular)."""

    linear: bool = True


class FeaturesConfig(Section):
    """``mlpipe step features``: the feature view, labels, split and encodings of a dataset."""

    table: str
    view: ViewDeclaration
    # The columns that identify a row (batch scoring's row key).
    keys: list[str] = Field(min_length=1)
    time_column: str
    # Split by the time column's date: train <= train_end < validation <= validation_end < test.
    train_end: date
    validation_end: date
    # Each label: a SQL expression over the view's columns. Rows with any label NULL are
    # left out of the table (counted as unlabelled).
    labels: dict[str, str] = Field(min_length=1)
    # Columns known only after the fact: dropped from the table, never features.
    leakage: list[str] = Field(default_factory=list)
    request: dict[str, RequestType] = Field(min_length=1)
    derivation: Literal["flights"] | None = None
    categorical: dict[str, CategoricalDeclaration] = Field(default_factory=dict)
    numeric: list[str] = Field(default_factory=list)
    # Text columns of too many levels for a vocabulary -> the number of hash buckets.
    hashed: dict[str, int] = Field(default_factory=dict)
    # Levels seen fewer times in the training split go to the out-of-vocabulary bucket.
    min_category_count: int = Field(ge=1)

    @property
    def derived(self) -> tuple[str, ...]:
        """The fields the derivation adds to the request."""
        return DERIVED_FIELDS[self.derivation] if self.derivation else ()

    @property
    def feature_columns(self) -> list[str]:
        """Every column a model reads through the spec, in declaration order."""
        return [*self.categorical, *self.numeric, *self.hashed]

    @model_validator(mode="after")
    def _consistent(self) -> FeaturesConfig:
        if self.validation_end <= self.train_end:
            raise DeclarationError(("validation_end",), f"{self.validation_end} is not after "
                                   f"train_end {self.train_end}: the validation split would be "
                                   "empty")
        for name, buckets in self.hashed.items():
            if buckets < 1:
                raise DeclarationError(("hashed", name), f"{buckets} buckets; give at least 1")
        self._check_derivation()
        self._check_features()
        for name, expression in self.labels.items():
            parse_sql(expression, ("labels", name), "expression")
            if name in self.request or name in self.feature_columns:
                raise DeclarationError(("labels", name), "a label cannot also be sent in the "
                                       "request or be a feature")
        return self

    def _check_derivation(self) -> None:
        source = DERIVATION_SOURCES.get(self.derivation or "")
        if source is not None and source not in self.view.inputs:
            raise DeclarationError(("view", "inputs"), f"the {self.derivation} derivation "
                                   f"fits its lookup from {source}; add it to the inputs")
        for name, dtype in DERIVATION_INPUTS.get(self.derivation or "", {}).items():
            if self.request.get(name) != dtype:
                raise DeclarationError(("request", name), f"the {self.derivation} derivation "
                                       f"reads {name} as {dtype}; declare it so in request")

    def _check_features(self) -> None:
        available = {*self.request, *self.derived}
        for kind, names in (("categorical", self.categorical), ("numeric", self.numeric),
                            ("hashed", self.hashed)):
            for name in names:
                if name not in available:
                    raise DeclarationError((kind, name), "neither a request column nor "
                                           f"derived; the request has {', '.join(self.request)}")
                if name in self.leakage:
                    raise DeclarationError((kind, name), "is declared as leakage (known only "
                                           "after the fact), so it cannot be a feature")
        for name in self.categorical:
            if name in self.numeric:
                raise DeclarationError(("categorical", name), "is also numeric; declare it "
                                       "as one or the other")
            if name in self.request and self.request[name] != "string":
                raise DeclarationError(("categorical", name), "must be a string in request, "
                                       f"not {self.request[name]}")
        for name in self.numeric:
            if name in self.request and self.request[name] != "float64":
                raise DeclarationError(("numeric", name), "must be a float64 in request, "
                                       f"not {self.request[name]}")
            if name in DERIVED_CATEGORICAL:
                raise DeclarationError(("numeric", name), "is a derived categorical")
        for name in self.hashed:
            if self.request.get(name) != "string":
                raise DeclarationError(("hashed", name), "must be a string in request")
        leaking = [name for name in self.request if name in self.leakage]
        if leaking:
            raise DeclarationError(("request", leaking[0]), "is declared as leakage (known "
                                   "only after the fact), so a caller cannot send it")


class SequencesConfig(Section):
    """The sequence table: per ``entity``, windows of ``window`` consecutive periods of the
    ``steps`` columns -> the next period's ``target``. The view gives one row per entity
    and period, periods without events included, so a window is always consecutive."""

    table: str
    view: ViewDeclaration
    entity: str
    time: str
    steps: list[str] = Field(min_length=1)
    target: str
    window: int = Field(gt=1)

    @property
    def keys(self) -> list[str]:
        """The columns that identify a row of the sequence table."""
        return [self.entity, SEQUENCE_TARGET_TIME]

    @model_validator(mode="after")
    def _target_is_a_step(self) -> SequencesConfig:
        if self.target not in self.steps:
            raise DeclarationError(("target",), f"{self.target!r} is not one of the steps "
                                   f"({', '.join(self.steps)}); the model learns it from its "
                                   "past values")
        return self
