"""``python -m bench [NAME ...]`` (and ``make bench``): run the benchmarks, each at its defaults.

Each benchmark prints its table and compares against the real alternative in the same
run; the figures recorded in ``bench/RESULTS.md`` name the exact command behind them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

BENCHMARKS = {
    "nist": "bench.nist_lre",
    "regression": "bench.regression",
    "ingest": "bench.ingest_features",
    "horovod": "bench.horovod_scaling",
    "quality": "bench.model_quality",
    "encoding": "bench.encoding",
    "serving": "bench.serving",
    "serving-wrk": "bench.serving_wrk",
    "overload": "bench.serving_overload",
    "slow-clients": "bench.slow_clients",
    "fleet": "bench.serving_fleet",
    "network": "bench.network",
    "object-store": "bench.object_store",
    "scale": "bench.scale",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run, of {', '.join(BENCHMARKS)} (default: all)")
    names = parser.parse_args(argv).names or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}")
    failed = []
    for name in names:
        print(f"=== {name}: python -m {BENCHMARKS[name]}", flush=True)
        if subprocess.call([sys.executable, "-m", BENCHMARKS[name]]) != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
