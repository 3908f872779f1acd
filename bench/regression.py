"""Benchmark: our distributed linear/logistic regression against MLlib, same session, same data.

For each size and regime (independent features, or correlated with condition number ~1e6) the
synthetic data are generated on executors, cached as ``VectorUDT`` rows, and fitted by ours and
by MLlib's solvers in turn. Printed per fit: wall time, data passes (ours; MLlib: iterations),
final objective (MLlib's own standardised objective, which ours matches) and the largest
coefficient difference from our fit. The floor is one pass that only brings the features into
Python through ``vector_to_array`` and ``mapInArrow``. Then a ``regParam`` path (``--path``):
ours through one ``fitMultiple`` (shared passes), ours one fit per value, and MLlib's.

    .venv/bin/python -m bench.regression --rows 1000000 --features 20 100 200
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from pyspark.ml.classification import LogisticRegression as MLlibLogistic
from pyspark.ml.regression import LinearRegression as MLlibLinear
from pyspark.sql import DataFrame, SparkSession

from lab.regression_data import make_regression_data
from models.regression import LinearRegression, LogisticRegression
from models.regression.blocks import prepare_frame, tree_aggregate
from models.regression.lbfgs import sum_partials

REGIMES = {"independent": None, "correlated": 1e6}
MLLIB_NORMAL_LIMIT = 4096


def build_session(memory: str) -> SparkSession:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (SparkSession.builder.master("local[2]").appName("bench-regression")
               .config("spark.driver.memory", memory)
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return session


def count_rows(blocks) -> tuple[np.ndarray] | None:
    """The floor's per-partition work: touch every block, keep only the row count."""
    total = None
    for x, _, _ in blocks:
        part = (np.array([float(len(x)), float(x[:, 0].sum())]),)
        total = part if total is None else sum_partials(total, part)
    return total


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def floor_seconds(df: DataFrame) -> float:
    prepared = prepare_frame(df, "features", "label", None)
    _, seconds = timed(lambda: tree_aggregate(prepared, count_rows, sum_partials, 2,
                                              ("features", "label", ""), 64))
    return seconds


def warm_up(spark: SparkSession) -> None:
    """Fit every solver once on small data, untimed: the first fit in a session pays for
    JIT compilation (MLlib) and Python worker start-up (ours), which would otherwise land
    on whichever row the table happens to time first."""
    for family in ("linear", "logistic"):
        df, _, _ = make_regression_data(spark, 20_000, 10, family=family, seed=1, partitions=4)
        df = df.cache()
        if family == "linear":
            LinearRegression().fit(df)
            for solver in ("normal", "l-bfgs"):
                MLlibLinear(solver=solver).fit(df)
        else:
            LogisticRegression().fit(df)
            MLlibLogistic().fit(df)
        df.unpersist()


def row(table: list[dict], **fields) -> None:
    table.append(fields)
    print("  " + " | ".join(f"{k}={v}" for k, v in fields.items()), flush=True)


def bench_linear(df: DataFrame, d: int, table: list[dict], key: dict, mllib_max_iter: int,
                 mllib_solvers: list[str]) -> None:
    ours, seconds = timed(lambda: LinearRegression().fit(df))
    reference = ours.coefficients.toArray()
    row(table, **key, family="linear", solver="ours (TSQR)", seconds=round(seconds, 2),
        passes=ours.summary.numPasses, objective=ours.summary.objectiveHistory[-1],
        coef_diff=0.0)
    if ours.summary.numPasses > 1:  # refined: also show what the one-pass answer gives up
        one_pass, seconds = timed(lambda: LinearRegression(refinement="never").fit(df))
        row(table, **key, family="linear", solver="ours (TSQR, refinement off)",
            seconds=round(seconds, 2), passes=one_pass.summary.numPasses,
            objective=one_pass.summary.objectiveHistory[-1],
            coef_diff=float(np.max(np.abs(one_pass.coefficients.toArray() - reference))))
    for solver in mllib_solvers:
        if solver == "normal" and d > MLLIB_NORMAL_LIMIT:
            continue
        mllib, seconds = timed(lambda s=solver: MLlibLinear(
            solver=s, maxIter=mllib_max_iter, tol=1e-9).fit(df))
        row(table, **key, family="linear", solver=f"MLlib {solver}", seconds=round(seconds, 2),
            passes=f"{mllib.summary.totalIterations} it",
            objective=mllib.summary.objectiveHistory[-1],
            coef_diff=float(np.max(np.abs(mllib.coefficients.toArray() - reference))))


def bench_logistic(df: DataFrame, table: list[dict], key: dict, mllib_max_iter: int) -> None:
    ours, seconds = timed(lambda: LogisticRegression().fit(df))
    reference = ours.coefficients.toArray()
    row(table, **key, family="logistic",
        solver="ours (Newton)" if ours.summary.numPasses < 40 else "ours (L-BFGS)",
        seconds=round(seconds, 2), passes=ours.summary.numPasses,
        objective=ours.summary.objectiveHistory[-1], coef_diff=0.0)
    mllib, seconds = timed(lambda: MLlibLogistic(maxIter=mllib_max_iter, tol=1e-9).fit(df))
    row(table, **key, family="logistic", solver="MLlib l-bfgs", seconds=round(seconds, 2),
        passes=f"{mllib.summary.totalIterations} it",
        objective=mllib.summary.objectiveHistory[-1],
        coef_diff=float(np.max(np.abs(mllib.coefficients.toArray() - reference))))


def jobs_and_seconds(spark: SparkSession, fn) -> tuple[object, int, float]:
    """``fn()``, the Spark jobs it ran (ours: one per data pass) and its wall time."""
    group = f"bench-{time.monotonic_ns()}"
    spark.sparkContext.setJobGroup(group, "counting passes")
    try:
        result, seconds = timed(fn)
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    return result, len(spark.sparkContext.statusTracker().getJobIdsForGroup(group)), seconds


def bench_path(spark: SparkSession, df: DataFrame, family: str, grid: list[float],
               table: list[dict], key: dict, mllib_max_iter: int) -> None:
    """A ``regParam`` grid (what the pipeline and ``CrossValidator`` fit): ours through one
    ``fitMultiple``, ours one fit per value, and MLlib's ``fitMultiple`` (one fit per value)."""
    ours = LinearRegression() if family == "linear" else LogisticRegression()
    mllib = (MLlibLinear(solver="normal", maxIter=mllib_max_iter, tol=1e-9) if family == "linear"
             else MLlibLogistic(maxIter=mllib_max_iter, tol=1e-9))
    label = f"path of {len(grid)} regParams"
    fits = {
        f"ours, one fitMultiple ({label})":
            lambda: list(ours.fitMultiple(df, [{ours.regParam: r} for r in grid])),
        f"ours, one fit per value ({label})":
            lambda: [ours.copy({ours.regParam: r}).fit(df) for r in grid],
        f"MLlib fitMultiple ({label})":
            lambda: list(mllib.fitMultiple(df, [{mllib.regParam: r} for r in grid])),
    }
    for solver, fn in fits.items():
        _, jobs, seconds = jobs_and_seconds(spark, fn)
        row(table, **key, family=family, solver=solver, seconds=round(seconds, 2),
            passes=f"{jobs} jobs", objective="", coef_diff="")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--features", type=int, nargs="+", default=[20])
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--families", nargs="+", default=["linear", "logistic"],
                        choices=["linear", "logistic"])
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--mllib-max-iter", type=int, default=300)
    parser.add_argument("--mllib-linear-solvers", nargs="+", default=["normal", "l-bfgs"],
                        choices=["normal", "l-bfgs"])
    parser.add_argument("--memory", default="12g")
    parser.add_argument("--path", type=float, nargs="*", default=[0.0, 0.001, 0.01],
                        help="a regParam grid fitted as one path (none: skip the path rows)")
    args = parser.parse_args(argv)
    spark = build_session(args.memory)
    warm_up(spark)
    table: list[dict] = []
    try:
        for rows in args.rows:
            for d in args.features:
                for regime in args.regimes:
                    for family in args.families:
                        df, _, _ = make_regression_data(
                            spark, rows, d, family=family, condition_number=REGIMES[regime],
                            seed=7, partitions=args.partitions)
                        df = df.cache()
                        df.count()
                        key = {"rows": rows, "d": d, "regime": regime}
                        row(table, **key, family=family, solver="floor (features to Python)",
                            seconds=round(floor_seconds(df), 2), passes=1, objective="",
                            coef_diff="")
                        if family == "linear":
                            bench_linear(df, d, table, key, args.mllib_max_iter,
                                         args.mllib_linear_solvers)
                        else:
                            bench_logistic(df, table, key, args.mllib_max_iter)
                        if args.path:
                            bench_path(spark, df, family, args.path, table, key,
                                       args.mllib_max_iter)
                        df.unpersist(blocking=True)
    finally:
        spark.stop()
    print("\n| rows | d | regime | family | solver | seconds | passes | objective | coef diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for entry in table:
        objective = entry["objective"]
        objective = f"{objective:.12g}" if isinstance(objective, float) else objective
        diff = entry["coef_diff"]
        diff = f"{diff:.1e}" if isinstance(diff, float) else diff
        print(f"| {entry['rows']:,} | {entry['d']} | {entry['regime']} | {entry['family']} | "
              f"{entry['solver']} | {entry['seconds']} | {entry['passes']} | {objective} | "
              f"{diff} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
