"""Save and load for the fitted models, in MLlib's layout so ``Pipeline`` save/load works.

The params go into Spark's standard metadata file (``DefaultParamsWriter``); the coefficients go
into the same JSON as ``extraMetadata``. JSON floats round-trip exactly, and there is no second
file format to keep in step.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import numpy as np
from pyspark.ml import Model
from pyspark.ml.linalg import DenseVector, Vectors
from pyspark.ml.util import (
    DefaultParamsReader,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)

M = TypeVar("M")


class CoefficientsWriter(MLWriter):
    """Writes a model's params and its ``coefficients`` and ``intercept``."""

    def __init__(self, instance: Any) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        extra = {"coefficients": self.instance.coefficients.toArray().tolist(),
                 "intercept": float(self.instance.intercept)}
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession, extra)


class CoefficientsReader(MLReader, Generic[M]):
    """Reads what ``CoefficientsWriter`` wrote back into a model of class ``cls``."""

    def __init__(self, cls: type[M]) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> M:
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        model = self.cls(coefficients=metadata["coefficients"], intercept=metadata["intercept"])
        model._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(model, metadata)
        return model


class FittedCoefficients(Model, MLReadable, MLWritable):
    """What both fitted models share: coefficients, intercept, the training summary, save/load.

    The summary exists only on a model fresh from ``fit``; a loaded or hand-built model
    says so instead of returning statistics it does not have.
    """

    def __init__(self, coefficients: Any = (), intercept: float = 0.0) -> None:
        super().__init__()
        self.coefficients: DenseVector = Vectors.dense(np.asarray(coefficients, dtype=float))
        self.intercept = float(intercept)
        self._summary: Any = None

    @property
    def summary(self) -> Any:
        if self._summary is None:
            raise RuntimeError("no training summary: this model was loaded or built by hand")
        return self._summary

    @summary.setter
    def summary(self, value: Any) -> None:
        self._summary = value

    @property
    def hasSummary(self) -> bool:
        return self._summary is not None

    @property
    def numFeatures(self) -> int:
        return len(self.coefficients)

    def write(self) -> CoefficientsWriter:
        return CoefficientsWriter(self)

    @classmethod
    def read(cls) -> CoefficientsReader:
        return CoefficientsReader(cls)
