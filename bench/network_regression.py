"""Our regression against MLlib with executors on two emulated hosts: time and bytes per pass.

Issue 11, item 3. The argument for TSQR (linear) and Newton (logistic) is fewer rounds of
communication than MLlib's L-BFGS; this measures both sides of it on a ``lab.netlab``
cluster (a Spark standalone master and one one-core worker per host). The driver runs on the
first host, so every task result from the second host's executor crosses the shaped link.

Per link profile and method, on the same cached data (``bench.regression``'s generator):
wall time of the fit, Spark jobs (a *pass* is a job whose tasks cover every partition),
the estimator's own count (our passes, MLlib's iterations), task-result and shuffle bytes
from the driver's REST API (``/api/v1/applications/<id>/jobs`` and ``/stages/<id>``) and
the bytes that actually crossed the first host's link (its ``eth0`` counters: results,
task launches, broadcasts, heartbeats).

``python -m bench.network_regression [--quick]`` runs it alone (prefix ``mlpregr``) and
stores the rows under ``"regression"`` in ``bench/out/network-results.json``;
``bench.network`` calls ``measure`` on its own cluster. The driver is this module with
``--driver``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.network_regression")

HERE = Path(__file__).parent
OUT = HERE / "out" / "network-results.json"
PREFIX = "mlpregr"
PROFILES = ["unlimited", "1gbit", "100mbit"]
PARTITIONS = 4
# (rows, features): the narrow shape, and a wide one where a d^2 partial per task
# (R factor, Hessian, Gram matrix) is megabytes and the link's rate starts to show.
SHAPES, QUICK_SHAPES = [(200_000, 20), (20_000, 500)], [(50_000, 20), (10_000, 200)]
EXECUTORS = 2
UI_PORT = 4040


# ---------------------------------------------------------------- driver side (first host)


def build_session(master: str, driver_host: str):
    """A session on the netlab master: two one-core executors, the UI (REST API) on."""
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # executors start this interpreter
    session = (SparkSession.builder.master(master).appName("bench-network-regression")
               .config("spark.driver.host", driver_host)
               .config("spark.driver.bindAddress", driver_host)
               .config("spark.driver.memory", "1g")
               .config("spark.executor.memory", "1g")
               .config("spark.executor.cores", "1")
               .config("spark.cores.max", str(EXECUTORS))
               .config("spark.executorEnv.PYTHONPATH", os.environ["PYTHONPATH"])
               .config("spark.ui.enabled", "true")
               .config("spark.ui.port", str(UI_PORT))
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", str(PARTITIONS))
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return session


def executor_hosts(spark, timeout_s: float = 120) -> list[str]:
    """Hosts of the executors (driver excluded), once both registered; they must differ."""
    tracker = spark.sparkContext._jsc.sc().statusTracker()
    driver = spark.sparkContext.getConf().get("spark.driver.host")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        infos = tracker.getExecutorInfos()
        hosts = [infos[i].host() for i in range(len(infos))]
        if len(hosts) > EXECUTORS:  # the driver is listed too
            hosts.remove(driver)
            if len(set(hosts)) != EXECUTORS:
                raise RuntimeError(f"executors share a host: {hosts}")
            return sorted(hosts)
        time.sleep(0.5)
    raise TimeoutError(f"{EXECUTORS} executors did not register")


def rest(spark, path: str) -> Any:
    url = f"{spark.sparkContext.uiWebUrl}/api/v1/applications/{spark.sparkContext.applicationId}"
    with urllib.request.urlopen(f"{url}/{path}", timeout=30) as response:
        return json.load(response)


def link_bytes() -> int:
    """Bytes sent plus received on this host's link: with two hosts, all cross-host traffic."""
    stats = Path("/sys/class/net/eth0/statistics")
    return int((stats / "rx_bytes").read_text()) + int((stats / "tx_bytes").read_text())


def group_metrics(spark, group: str, driver_host: str, timeout_s: float = 30) -> dict[str, Any]:
    """Jobs, passes and bytes of one job group, once the UI's listener has seen it finish."""
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = [j for j in rest(spark, "jobs") if j.get("jobGroup") == group]
        stage_ids = sorted({s for j in jobs for s in j["stageIds"]})
        stages = [rest(spark, f"stages/{s}?details=true") for s in stage_ids]
        done = all(j["status"] == "SUCCEEDED" for j in jobs) and all(
            a["status"] in ("COMPLETE", "SKIPPED") for attempts in stages for a in attempts)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    tasks_per_stage, result, remote_result, shuffle, remote_shuffle = {}, 0, 0, 0, 0
    for attempts in stages:
        for attempt in attempts:
            tasks = list((attempt.get("tasks") or {}).values())
            tasks_per_stage[attempt["stageId"]] = len(tasks)
            shuffle += attempt.get("shuffleReadBytes", 0)
            remote_shuffle += attempt.get("shuffleRemoteBytesRead", 0)
            for task in tasks:
                size = task.get("taskMetrics", {}).get("resultSize", 0)
                result += size
                if task.get("host") != driver_host:
                    remote_result += size
    passes = sum(1 for j in jobs
                 if sum(tasks_per_stage.get(s, 0) for s in j["stageIds"]) >= PARTITIONS)
    return {"jobs": len(jobs), "passes": passes, "result_bytes": result,
            "remote_result_bytes": remote_result, "shuffle_bytes": shuffle,
            "remote_shuffle_bytes": remote_shuffle}


def fitters(max_iter: int):
    """Method name -> (data family, fit(df) -> (model, estimator's own count, its unit))."""
    from pyspark.ml.classification import LogisticRegression as MLlibLogistic
    from pyspark.ml.regression import LinearRegression as MLlibLinear

    from models.regression import LinearRegression, LogisticRegression

    def ours(estimator):
        def fit(df):
            model = estimator.fit(df)
            return model, model.summary.numPasses, "passes"
        return fit

    def mllib(estimator):
        def fit(df):
            model = estimator.fit(df)
            return model, model.summary.totalIterations, "iterations"
        return fit

    return {"ours linear": ("linear", ours(LinearRegression())),
            "MLlib linear normal": ("linear", mllib(MLlibLinear(solver="normal"))),
            "MLlib linear l-bfgs": ("linear", mllib(MLlibLinear(solver="l-bfgs",
                                                                maxIter=max_iter))),
            "ours logistic": ("logistic", ours(LogisticRegression())),
            "MLlib logistic l-bfgs": ("logistic", mllib(MLlibLogistic(maxIter=max_iter)))}


def cache_frames(spark, rows: int, features: int, hosts: list[str]) -> dict[str, Any]:
    """Linear and logistic data, cached on the executors; both hosts must hold partitions."""
    from lab.regression_data import make_regression_data

    frames = {}
    for family in ("linear", "logistic"):
        df, _, _ = make_regression_data(spark, rows, features, family=family, seed=7,
                                        partitions=PARTITIONS)
        frames[family] = df.cache()
        frames[family].count()
    cached = {e["hostPort"].split(":")[0]: e["rddBlocks"]
              for e in rest(spark, "executors") if e["id"] != "driver"}
    if sorted(h for h, blocks in cached.items() if blocks) != hosts:
        raise RuntimeError(f"cached partitions not on both hosts: {cached}")
    return frames


def drive(master: str, driver_host: str, prefix: str, profiles: list[str],
          shapes: list[tuple[int, int]], max_iter: int) -> dict[str, Any]:
    """Fit every method on every shape and profile in one session; profiles are set here."""
    from lab.netlab.namespaces import find_cluster
    from lab.netlab.profiles import apply_profile

    cluster = find_cluster(prefix)
    spark = build_session(master, driver_host)
    try:
        hosts = executor_hosts(spark)
        methods = fitters(max_iter)
        rows_out = []
        for rows, features in shapes:
            frames = cache_frames(spark, rows, features, hosts)
            if not rows_out:  # warm up: JIT, Python workers, untimed
                for family, fit in methods.values():
                    fit(frames[family])
            for profile in profiles:
                apply_profile(cluster, profile)
                rows_out += fit_all(spark, methods, frames, driver_host,
                                    {"rows": rows, "features": features, "profile": profile})
            for frame in frames.values():
                frame.unpersist(blocking=True)
        apply_profile(cluster, "unlimited")
        return {"shapes": shapes, "partitions": PARTITIONS, "executor_hosts": hosts,
                "driver_host": driver_host, "mllib_max_iter": max_iter, "results": rows_out}
    finally:
        spark.stop()


def fit_all(spark, methods: dict[str, Any], frames: dict[str, Any], driver_host: str,
            key: dict[str, Any]) -> list[dict[str, Any]]:
    """Every method once on the current link: time, passes, bytes, agreement with ours."""
    import numpy as np

    reference: dict[str, np.ndarray] = {}
    out = []
    for name, (family, fit) in methods.items():
        group = f"{key['features']}/{key['profile']}/{name}"
        spark.sparkContext.setJobGroup(group, group)
        wire = link_bytes()
        started = time.perf_counter()
        model, count, unit = fit(frames[family])
        seconds = time.perf_counter() - started
        wire = link_bytes() - wire
        coefficients = model.coefficients.toArray()
        reference.setdefault(family, coefficients)
        metrics = group_metrics(spark, group, driver_host)
        row = {"method": name, **key, "seconds": seconds,
               "estimator_count": count, "estimator_unit": unit, "wire_bytes": wire,
               "coef_diff_vs_ours": float(np.abs(coefficients
                                                 - reference[family]).max()),
               **metrics}
        out.append(row)
        log.info("%s", row)
    return out


# ---------------------------------------------------------------- outer side


def measure(cluster, quick: bool, folder: Path | None = None) -> dict[str, Any]:
    """Start Spark on ``cluster``, run the driver on its first host, return its result."""
    from lab.netlab.launchers import launch_env
    from lab.netlab.spark import spark_cluster

    repo = HERE.parent
    with tempfile.TemporaryDirectory(prefix="bench-netregr-") as scratch:
        work = folder or Path(scratch)
        out = work / "regression.json"
        with spark_cluster(cluster, work / "spark", memory="1g") as spark:
            started = time.perf_counter()
            with (work / "driver.log").open("w") as sink:
                job = subprocess.run(cluster.command(cluster.hosts[0], [
                    sys.executable, "-m", "bench.network_regression", "--driver",
                    spark.master_url, spark.driver_host, "--prefix", cluster.prefix,
                    "--shapes", *(f"{r}x{d}" for r, d in (QUICK_SHAPES if quick else SHAPES)),
                    "--out", str(out)]),
                    stdout=sink, stderr=subprocess.STDOUT, timeout=900, cwd=repo,
                    env=launch_env(cluster))
            if job.returncode != 0:
                tail = (work / "driver.log").read_text(errors="replace")[-4000:]
                raise RuntimeError(f"regression driver failed ({job.returncode}):\n{tail}")
            result = json.loads(out.read_text())
        result["seconds"] = time.perf_counter() - started
    return result


def per_pass(row: dict[str, Any]) -> dict[str, float]:
    passes = max(row["passes"], 1)
    return {"result_bytes": row["result_bytes"] / passes,
            "remote_bytes": (row["remote_result_bytes"] + row["remote_shuffle_bytes"]) / passes,
            "wire_bytes": row["wire_bytes"] / passes, "seconds": row["seconds"] / passes}


def print_table(result: dict[str, Any]) -> None:
    print(f"\nRegression across 2 hosts ({result['partitions']} partitions, executors on "
          f"{', '.join(result['executor_hosts'])}, driver on {result['driver_host']})")
    print(f"{'method':22} {'rows x d':>11} {'profile':9} {'time s':>7} {'passes':>6} {'jobs':>4} "
          f"{'own count':>13} {'result B/pass':>13} {'cross-host B/pass':>17} "
          f"{'wire B/pass':>11} {'s/pass':>7}")
    for r in result["results"]:
        p = per_pass(r)
        own = f"{r['estimator_count']} {r['estimator_unit'][:4]}"
        shape = f"{r['rows']}x{r['features']}"
        print(f"{r['method']:22} {shape:>11} {r['profile']:9} {r['seconds']:7.2f} {r['passes']:6} "
              f"{r['jobs']:4} {own:>13} {p['result_bytes']:13,.0f} {p['remote_bytes']:17,.0f} "
              f"{p['wire_bytes']:11,.0f} {p['seconds']:7.3f}")


def run(quick: bool) -> dict[str, Any]:
    """The standalone run: its own cluster (prefix ``mlpregr``), always torn down."""
    from lab.netlab.namespaces import cluster_down, cluster_up

    load_before = os.getloadavg()
    cluster = cluster_up(2, PREFIX)
    try:
        result = measure(cluster, quick)
    finally:
        cluster_down(PREFIX)
    return {**result, "quick": quick, "load_average_before": load_before,
            "load_average_after": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller shapes: " + ", ".join(
        f"{r:,}x{d}" for r, d in QUICK_SHAPES))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--driver", nargs=2, metavar=("MASTER", "DRIVER_HOST"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default=PREFIX, help=argparse.SUPPRESS)
    parser.add_argument("--shapes", nargs="+", default=[f"{r}x{d}" for r, d in SHAPES],
                        help=argparse.SUPPRESS)
    parser.add_argument("--max-iter", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.driver:
        shapes = [tuple(int(n) for n in shape.split("x")) for shape in args.shapes]
        result = drive(*args.driver, args.prefix, PROFILES, shapes, args.max_iter)
        args.out.write_text(json.dumps(result, indent=2))
        return 0
    from lab.netlab.system import NetlabError

    try:
        result = run(args.quick)
    except NetlabError as exc:  # no privileges or no iproute2: say why, no traceback
        print(f"bench.network_regression: {exc}", file=sys.stderr)
        return 2
    stored = json.loads(args.out.read_text()) if args.out.exists() else {}
    stored["regression"] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(stored, indent=2, default=str))
    print_table(result)
    print(f"\nload average before {result['load_average_before']}, after "
          f"{result['load_average_after']}; {result['seconds']:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
