"""The feature spec: everything needed to turn raw records into model inputs, in one JSON file.

A spec is fitted on the training split of one version of a dataset's feature table, from
the encodings the dataset declares (``features`` in ``conf/datasets/<dataset>/``), and is
saved with every model, so training, batch scoring and serving encode a record the same
way. ``request`` is what a caller sends; a ``derivation`` (flights: calendar parts, holiday
distance, plane facts) adds fields computed from it. It produces three inputs (see
:mod:`models.features.encode_pandas` and :mod:`models.features.spark`, which must agree
exactly):

``features``
    The linear design, for the distributed linear and logistic regressions: for each
    linear categorical, one 0/1 column per known level except the reference level (the
    most frequent); then the numeric block. Unknown levels and the reference level
    encode as all zeros, so with a fitted intercept the design is not rank-deficient
    (no column is a sum of others, no all-zero out-of-vocabulary column). ``route`` is
    left out of it when declared ``linear: false`` (flights' route, whose one-hot columns
    sum to those of origin and dest).
``cat_indices``
    Integer codes for the neural models' embeddings: per categorical, 0 for an unknown
    or missing value and ``i + 1`` for ``vocab[i]``; last, each hashed column (flights'
    tail number) hashed with crc32 into ``1..buckets`` (0 when missing).
    ``cardinalities`` sizes the tables.
``numeric``
    Numerics standardized with training means and standard deviations, a missing value
    imputed with the training mean (0 after scaling), then one 0/1 missing-indicator per
    distinct missing pattern seen in training (numerics missing together share one, so
    no two indicator columns are equal).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from models.features.fields import FLIGHTS

FORMAT_VERSION = 2

# Format 1 was the flights spec before datasets were declared: its request and hashed
# column were fixed in code. Models logged then (a registry's champions) still load.
_FORMAT_1_REQUEST: dict[str, str] = {
    "carrier": "string", "origin": "string", "dest": "string",
    "sched_dep_local": "datetime64[ns]", "distance": "float64", "tailnum": "string",
    **{name: "float64" for name in ("temp", "dewp", "humid", "wind_dir", "wind_speed",
                                    "wind_gust", "precip", "pressure", "visib")},
}


@dataclass(frozen=True)
class Categorical:
    """A categorical feature: ``vocab[i]`` has index ``i + 1``; 0 is out of vocabulary."""

    name: str
    vocab: tuple[str, ...]
    reference: str
    linear: bool = True

    def index(self) -> dict[str, int]:
        return {value: i + 1 for i, value in enumerate(self.vocab)}

    @property
    def linear_levels(self) -> tuple[str, ...]:
        """The levels with a column in the linear design: all known ones but the reference."""
        return tuple(v for v in self.vocab if v != self.reference) if self.linear else ()


@dataclass(frozen=True)
class Numeric:
    """A numeric feature scaled as ``(x - mean) / std``, with training statistics."""

    name: str
    mean: float
    std: float


@dataclass(frozen=True)
class MissingIndicator:
    """1.0 where ``column`` (and every numeric missing exactly when it is) is missing."""

    name: str
    column: str


@dataclass(frozen=True)
class Hashed:
    """A text column with too many levels for a vocabulary: crc32 into ``1..buckets``
    (0 when missing)."""

    column: str
    buckets: int

    @property
    def name(self) -> str:
        """The name of its ``cat_indices`` entry (and of the MLP's input)."""
        return f"{self.column}_bucket"


@dataclass(frozen=True)
class FeatureSpec:
    """The ordered features, vocabularies, scaling statistics and the table they came from."""

    # What a caller sends: raw column -> pandas dtype (string, float64, datetime64[ns]).
    request: dict[str, str]
    # The named derivation that adds fields to the request (models.features.fields), or None.
    derivation: str | None
    categorical: tuple[Categorical, ...]
    numeric: tuple[Numeric, ...]
    missing: tuple[MissingIndicator, ...]
    hashed: tuple[Hashed, ...]
    # The flights derivation's plane facts a caller does not send:
    # tailnum -> (year built, seats, engine). Empty for other derivations.
    planes: dict[str, tuple[int | None, int | None, str | None]]
    feature_table: str
    feature_table_version: int
    # Each label's definition (SQL over the feature view), kept for provenance.
    labels: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def linear_feature_names(self) -> list[str]:
        """Names of the ``features`` vector's entries, in order."""
        onehot = [f"{c.name}={level}" for c in self.categorical for level in c.linear_levels]
        return onehot + self.numeric_feature_names

    @property
    def numeric_feature_names(self) -> list[str]:
        """Names of the ``numeric`` array's entries, in order."""
        return [n.name for n in self.numeric] + [m.name for m in self.missing]

    @property
    def categorical_feature_names(self) -> list[str]:
        """Names of the ``cat_indices`` array's entries, in order."""
        return [c.name for c in self.categorical] + [h.name for h in self.hashed]

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes, one per ``cat_indices`` entry (index 0 included)."""
        return [len(c.vocab) + 1 for c in self.categorical] + [h.buckets + 1 for h in self.hashed]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        data = json.loads(text)
        if data.get("format_version") == 1:
            data = _upgrade_format_1(data)
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"feature spec format {data.get('format_version')} is not "
                             f"{FORMAT_VERSION}; rebuild the features")
        return cls(
            categorical=tuple(Categorical(**{**c, "vocab": tuple(c["vocab"])})
                              for c in data.pop("categorical")),
            numeric=tuple(Numeric(**n) for n in data.pop("numeric")),
            missing=tuple(MissingIndicator(**m) for m in data.pop("missing")),
            hashed=tuple(Hashed(**h) for h in data.pop("hashed")),
            planes={k: tuple(v) for k, v in data.pop("planes").items()},
            **data,
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path


def _upgrade_format_1(data: dict) -> dict:
    """A format-1 (flights) spec as the format-2 spec that encodes exactly as it did."""
    upgraded = {key: value for key, value in data.items()
                if key not in ("tail_buckets", "delay_threshold_min")}
    return {**upgraded, "format_version": FORMAT_VERSION, "request": dict(_FORMAT_1_REQUEST),
            "derivation": FLIGHTS,
            "hashed": [{"column": "tailnum", "buckets": data["tail_buckets"]}],
            "labels": {"is_delayed":
                       f"CAST(arr_delay > {data['delay_threshold_min']:g} AS INT)"}}


def load_spec(path: str | Path) -> FeatureSpec:
    """Read a spec written by :meth:`FeatureSpec.save`."""
    return FeatureSpec.from_json(Path(path).read_text())
