"""Save/load round trips and use inside pyspark.ml.Pipeline."""

from __future__ import annotations

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import VectorAssembler

from models.regression import (
    LinearRegression,
    LinearRegressionModel,
    LogisticRegression,
    LogisticRegressionModel,
)
from tests.models.regression.helpers import frame, linear_data


def test_linear_model_round_trip(spark, tmp_path):
    df = frame(spark, *linear_data())
    model = LinearRegression(predictionCol="yhat", regParam=0.1).fit(df)
    model.write().overwrite().save(str(tmp_path / "linear"))
    loaded = LinearRegressionModel.load(str(tmp_path / "linear"))
    assert loaded.coefficients == model.coefficients and loaded.intercept == model.intercept
    assert loaded.getPredictionCol() == "yhat" and loaded.getRegParam() == 0.1
    assert loaded.uid == model.uid
    assert not loaded.hasSummary
    before = [r.yhat for r in model.transform(df).collect()]
    assert [r.yhat for r in loaded.transform(df).collect()] == before


def test_estimator_round_trip(tmp_path):
    estimator = LogisticRegression(regParam=0.2, elasticNetParam=0.3, threshold=0.4)
    estimator.save(str(tmp_path / "estimator"))
    loaded = LogisticRegression.load(str(tmp_path / "estimator"))
    assert (loaded.getRegParam(), loaded.getElasticNetParam(), loaded.getThreshold()) == (
        0.2, 0.3, 0.4)


def test_logistic_inside_a_pipeline_saves_and_loads(spark, tmp_path):
    rng = np.random.default_rng(2)
    rows = [(float(a), float(b), float(a - b + rng.normal() > 0))
            for a, b in rng.normal(size=(60, 2))]
    df = spark.createDataFrame(rows, ["a", "b", "label"])
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=["a", "b"], outputCol="features"),
                                LogisticRegression(regParam=0.01)])
    fitted = pipeline.fit(df)
    assert isinstance(fitted.stages[-1], LogisticRegressionModel)
    fitted.write().overwrite().save(str(tmp_path / "pipeline"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline"))
    expected = [r.probability for r in fitted.transform(df).collect()]
    assert [r.probability for r in loaded.transform(df).collect()] == expected
    assert loaded.stages[-1].coefficients == fitted.stages[-1].coefficients
