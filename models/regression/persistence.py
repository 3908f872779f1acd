"""Save and load for the fitted models, in MLlib's layout so ``Pipeline`` save/load works.

The params go into Spark's standard metadata file (``DefaultParamsWriter``); the coefficients go
into the same JSON as ``extraMetadata``. JSON floats round-trip exactly, and there is no second
file format to keep in step.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReader, MLWriter

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
