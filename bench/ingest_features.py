"""Benchmark: rows/s of seed -> ingest -> features at 1x and 10x the real year, on local[2].

The floor is a plain Spark read of the same flight files with the same schema (every
field parsed, nothing written): ingest cannot beat it and should not be far above it.
For K > 1 the landing folder is prepared untimed (seed, ingest, synthesize, then the
lake is deleted), so the timed ingest reads all K years of files at once.

    .venv/bin/python -m bench.ingest_features --scales 1 10
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

from pipelines.features import step as features
from pipelines.ingest import step_ingest as ingest
from pipelines.ingest import step_synthesize as synthesize
from pipelines.ingest.seed import seed_landing, seed_plan
from pipelines.ingest.sources import declared_sources
from pipelines.platform.config import Config, load_config
from pipelines.platform.spark import build_spark_session
from pipelines.platform.step import StepContext

log = logging.getLogger("bench.ingest_features")


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def bench_scale(root: Path, scale: int, master: str) -> dict[str, float]:
    config: Config = load_config(overrides=(f"data_root={root}", f"spark.master={master}",
                                            "spark.conf.spark.ui.showConsoleProgress=false"))
    spark = build_spark_session(config)
    ctx = StepContext(config, run_id=f"bench-{scale}x", session_factory=lambda _c: spark)
    layout = ctx.layout
    sources = declared_sources(config)
    plan = seed_plan(config)
    seconds_seed, _ = timed(lambda: seed_landing(layout.landing(), layout.storage, plan,
                                                 date(2013, 1, 1), date(2013, 12, 31)))
    if scale > 1:
        ingest.run(ctx, sources=("flights",))
        synthesize.run(ctx, scale=scale)
        shutil.rmtree(root / "lake")
    flights = layout.landing("flights")
    seconds_floor, _ = timed(lambda: spark.read.schema(sources["flights"].schema)
                             .option("header", True).csv(flights)
                             .write.format("noop").mode("overwrite").save())
    seconds_ingest, ingested = timed(lambda: ingest.run(ctx))
    seconds_features, built = timed(lambda: features.run(ctx))
    rows = ingested.metrics["flights.rows_read"]
    return {"scale": scale, "flight_rows": rows, "seed_s": seconds_seed,
            "plain_read_s": seconds_floor, "ingest_s": seconds_ingest,
            "features_s": seconds_features, "feature_rows": built.metrics["rows_features"],
            "plain_read_rows_per_s": rows / seconds_floor,
            "ingest_rows_per_s": rows / seconds_ingest,
            "features_rows_per_s": rows / seconds_features,
            "ingest_vs_plain_read": seconds_ingest / seconds_floor,
            # The machine may be shared: the 1-minute load average when the scale ended.
            "load_average": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--out", type=Path, default=Path("bench/out/ingest_features.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    results = []
    for scale in args.scales:
        with tempfile.TemporaryDirectory(prefix=f"bench-{scale}x-") as folder:
            results.append(bench_scale(Path(folder) / "data", scale, args.master))
            log.info("%s", results[-1])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))  # kept after each scale
    print("| scale | flight rows | seed s | plain read s (rows/s) | ingest s (rows/s) | "
          "ingest / plain read | features s (rows/s) | load average |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['scale']}x | {r['flight_rows']:,} | {r['seed_s']:.1f} | "
              f"{r['plain_read_s']:.1f} ({r['plain_read_rows_per_s']:,.0f}) | "
              f"{r['ingest_s']:.1f} ({r['ingest_rows_per_s']:,.0f}) | "
              f"{r['ingest_vs_plain_read']:.1f}x | "
              f"{r['features_s']:.1f} ({r['features_rows_per_s']:,.0f}) | "
              f"{r['load_average']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
