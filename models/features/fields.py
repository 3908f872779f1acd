"""Derivations: named sets of fields computed from a request, identically by both encoders.

A dataset's ``features.derivation`` (``conf/datasets/<dataset>/features.yaml``) names
one, and its fields may then be declared as features like the request's own columns.
``flights`` adds the calendar parts of the scheduled departure, the days to the nearest
US holiday, the route, and the plane's age, seats and engine from the planes table the
spec carries. A derivation is code because serving runs it without Spark, in numpy
(:mod:`models.features.encode_pandas`), and the Spark twin (:mod:`models.features.spark`)
must agree with it exactly.
"""

from __future__ import annotations

FLIGHTS = "flights"

DERIVED_CATEGORICAL: tuple[str, ...] = ("hour", "dow", "month", "route", "engine")
DERIVED_NUMERIC: tuple[str, ...] = ("days_to_holiday", "plane_age", "seats")

# Each derivation: the request columns it reads (name -> pandas dtype), and what it adds.
DERIVATION_INPUTS: dict[str, dict[str, str]] = {
    # Local (New York) scheduled departure time, no time zone: Spark TimestampNTZ.
    FLIGHTS: {"sched_dep_local": "datetime64[ns]", "tailnum": "string", "origin": "string",
              "dest": "string"},
}
DERIVED_FIELDS: dict[str, tuple[str, ...]] = {FLIGHTS: (*DERIVED_CATEGORICAL, *DERIVED_NUMERIC)}
# The source each derivation fits its lookup from (flights: the plane facts by tail number).
DERIVATION_SOURCES: dict[str, str] = {FLIGHTS: "planes"}
