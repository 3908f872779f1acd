"""The feature spec: raw request fields -> model inputs, identically in Spark and in numpy."""

from models.features.spec import FeatureSpec, load_spec

__all__ = ["FeatureSpec", "load_spec"]
