"""Accuracy on the NIST StRD linear regression sets (certified values), data in 4 partitions.

Goals: LRE >= 9 for every estimate and standard deviation on the lower- and average-difficulty
sets (and on Longley, Wampler1-3), >= 7 on Filip and Wampler4-5. See bench/RESULTS.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from lab.nist import HARD, MODELS, load_nist, lre, min_lre, nist_frame
from models.regression import LinearRegression


@pytest.mark.parametrize("name", list(MODELS))
def test_nist_lre(spark, name):
    data = load_nist(name)
    model = LinearRegression(fitIntercept=data.intercept).fit(nist_frame(spark, data))
    summary = model.summary
    estimates = model.coefficients.toArray()
    if data.intercept:
        estimates = np.append(estimates, model.intercept)
    goal = 7.0 if name in HARD else 9.0
    assert min_lre(estimates, data.estimates) >= goal
    assert min_lre(np.array(summary.coefficientStandardErrors), data.std_devs) >= goal
    residual_sd = np.sqrt(summary.meanSquaredError * summary.numInstances
                          / summary.degreesOfFreedom)
    assert lre(residual_sd, data.residual_sd) >= goal
    assert lre(summary.r2, data.r_squared) >= goal
