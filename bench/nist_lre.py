"""NIST StRD linear regression: log relative error of ours and of MLlib's two solvers.

Every dataset is fitted with its rows spread over 4 partitions. Printed per set: the smallest LRE
over the estimates (B0..Bk) and over their standard deviations, and the residual SD's LRE.

    .venv/bin/python -m bench.nist_lre
"""

from __future__ import annotations

import os
import sys

import numpy as np
from pyspark.ml.regression import LinearRegression as MLlibLinear
from pyspark.sql import SparkSession

from lab.nist import MODELS, load_nist, lre, min_lre, nist_frame
from models.regression import LinearRegression


def scores(model, data) -> tuple[float, float | None, float]:
    """(min LRE of estimates, of their SDs or None, of the residual SD)."""
    summary = model.summary
    estimates = model.coefficients.toArray()
    if data.intercept:
        estimates = np.append(estimates, model.intercept)
    try:
        errors = min_lre(np.array(summary.coefficientStandardErrors), data.std_devs)
    except Exception:  # MLlib's l-bfgs summary has no standard errors
        errors = None
    residual_sd = np.sqrt(summary.meanSquaredError * summary.numInstances
                          / summary.degreesOfFreedom)
    return min_lre(estimates, data.estimates), errors, lre(residual_sd, data.residual_sd)


def main() -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").config("spark.driver.host", "127.0.0.1")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    fits = {
        "ours (default)": lambda d: LinearRegression(fitIntercept=d.intercept),
        "ours (refinement=always)": lambda d: LinearRegression(fitIntercept=d.intercept,
                                                               refinement="always"),
        "MLlib normal": lambda d: MLlibLinear(fitIntercept=d.intercept, solver="normal"),
        "MLlib l-bfgs": lambda d: MLlibLinear(fitIntercept=d.intercept, solver="l-bfgs",
                                              maxIter=1000, tol=1e-12),
    }
    print("| dataset | difficulty | " + " | ".join(
        f"{name}: estimates / SDs / residual SD" for name in fits) + " | our passes |")
    print("|---|---|" + "---|" * (len(fits) + 1))
    try:
        for name in MODELS:
            data = load_nist(name)
            df = nist_frame(spark, data, partitions=4).cache()
            cells, passes = [], []
            for label, build in fits.items():
                model = build(data).fit(df)
                estimates, errors, residual = scores(model, data)
                sds = "n/a" if errors is None else f"{errors:.1f}"
                cells.append(f"{estimates:.1f} / {sds} / {residual:.1f}")
                if label.startswith("ours"):
                    passes.append(str(model.summary.numPasses))
            print(f"| {name} | {data.difficulty} | " + " | ".join(cells)
                  + f" | {' / '.join(passes)} |", flush=True)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
