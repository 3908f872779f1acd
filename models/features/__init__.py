"""The feature spec: raw flight fields -> model inputs, identically in Spark and in pandas."""

from models.features.fields import LABELS, LEAKAGE, RAW_FIELDS
from models.features.spec import FeatureSpec, load_spec

__all__ = ["LABELS", "LEAKAGE", "RAW_FIELDS", "FeatureSpec", "load_spec"]
