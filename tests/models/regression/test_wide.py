"""10,000 features (beyond MLlib's normal-solver limit of 4,096): the L-BFGS path."""

from __future__ import annotations

import numpy as np
import pytest

from models.regression import LinearRegression, LogisticRegression
from tests.models.regression.helpers import frame

WIDTH = 10_000


@pytest.fixture(scope="module")
def wide(spark):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(40, WIDTH))
    signal = x[:, :3] @ [2.0, -1.0, 0.5]
    return frame(spark, x, signal, partitions=2), frame(spark, x, (signal > 0).astype(float),
                                                        partitions=2)


@pytest.mark.parametrize("estimator, which", [(LinearRegression, 0), (LogisticRegression, 1)])
def test_ten_thousand_features_fit_with_lbfgs(wide, estimator, which):
    model = estimator(regParam=0.1, maxIter=3).fit(wide[which])
    history = model.summary.objectiveHistory
    assert model.numFeatures == WIDTH
    assert np.all(np.isfinite(model.coefficients.toArray()))
    assert history[-1] < history[0]
    # The two strongest informative features get the signs of their true weights.
    coefficients = model.coefficients.toArray()
    assert coefficients[0] > 0 > coefficients[1]
    assert model.summary.numPasses >= model.summary.totalIterations + 1
