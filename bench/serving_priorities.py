"""Request priorities where they matter: interactive single rows beside bulk scoring.

    python -m bench.serving_priorities [--model models:/flight-delay-mlp@champion]
        [--tracking-uri URI] [--duration 8] [--rounds 2] [--interactive-rps 50]
        [--bulk-capacity RPS]

One server of the model with the default settings (conf/serving.yaml). Interactive
requests are one `dataframe_records` row each, Poisson at `--interactive-rps`; bulk
requests are BULK_ROWS rows each, Poisson at a fraction of the bulk capacity (measured
first by an open-loop ramp of bulk requests alone). Both are sent by the Go open-loop
client (bench/openloop.py), latency measured from each request's due time.

At each bulk load, two modes: `priorities` (interactive `x-request-priority: high`, bulk
`low`) and `none` (no header: one FIFO queue). The modes run in the order A B B A in each
round, so that neither is always measured first or on a warmer server. Reported per mode:
the interactive requests' p50/p99/p99.9 and share answered within the SLO, the bulk rows
answered per second and the bulk p99, and the 503 share of each.

Writes bench/out/serving-priorities.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from statistics import mean

from bench import openloop
from bench.openloop import Template
from bench.servers import ServerSpec, model_env, running
from bench.serving_fleet import (
    CLIENT_TIMEOUT_S,
    FLIGHT_MODEL,
    OUT,
    capacity,
    choose_model,
    load,
    summary,
)

log = logging.getLogger("bench.serving_priorities")

BULK_ROWS = 256
BULK_LOADS = (0.7, 0.9, 1.1)  # fractions of the bulk capacity
RESULTS = OUT / "serving-priorities.json"
MODES = {"priorities": ("high", "low"), "none": (None, None)}


def bulk_body(single: bytes, rows: int = BULK_ROWS) -> bytes:
    """The single-row `dataframe_records` body with its record repeated `rows` times."""
    record = json.loads(single)["dataframe_records"][0]
    return json.dumps({"dataframe_records": [record] * rows}).encode()


def mixed(single: bytes, bulk: bytes, interactive_share: float,
          levels: tuple[str | None, str | None]) -> list[Template]:
    """The interactive and bulk templates, each with its priority header (or none)."""
    headers = {"Content-Type": "application/json",
               "x-request-timeout-ms": str(int(CLIENT_TIMEOUT_S * 1000))}

    def template(name: str, body: bytes, level: str | None, weight: float) -> Template:
        return Template(name, "/invocations", body,
                        {**headers, **({"x-request-priority": level} if level else {})}, weight)

    return [template("interactive", single, levels[0], interactive_share),
            template("bulk", bulk, levels[1], 1 - interactive_share)]


def measure(port: int, single: bytes, bulk: bytes, bulk_rps: float, interactive_rps: float,
            duration_s: float, rounds: int) -> list[dict]:
    """Each bulk load, each mode in A B B A order per round; the figures averaged per mode."""
    points = []
    for fraction in BULK_LOADS:
        rate = bulk_rps * fraction + interactive_rps
        share = interactive_rps / rate
        runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for round_index in range(rounds):
            order = list(MODES) if round_index % 2 == 0 else list(reversed(MODES))
            for mode in [*order, *reversed(order)]:
                report = load(port, rate, duration_s, mixed(single, bulk, share, MODES[mode]),
                              seed=round_index)
                runs[mode].append({name: summary(group, group["requests"])
                                   for name, group in report.templates.items()})
                time.sleep(2)  # let a backlog drain
        for mode, results in runs.items():
            point = {"bulk_load": fraction, "mode": mode, "runs": len(results),
                     **averaged(results)}
            log.info("%s", point)
            points.append(point)
    return points


def averaged(results: list[dict]) -> dict:
    """The mean over runs of what the table shows (a missing percentile is left out)."""
    def avg(kind: str, key: str) -> float | None:
        values = [r[kind][key] for r in results if r[kind][key] is not None]
        return round(mean(values), 1) if values else None

    return {"interactive_p50_ms": avg("interactive", "p50_ms"),
            "interactive_p99_ms": avg("interactive", "p99_ms"),
            "interactive_p999_ms": avg("interactive", "p999_ms"),
            "interactive_in_slo": avg("interactive", "good_share"),
            "interactive_503": avg("interactive", "rate_503"),
            "bulk_rows_per_s": round(mean(r["bulk"]["throughput_rps"] for r in results)
                                     * BULK_ROWS),
            "bulk_p99_ms": avg("bulk", "p99_ms"), "bulk_503": avg("bulk", "rate_503")}


def table(points: list[dict]) -> str:
    lines = ["| bulk load | mode | interactive p50 ms | p99 ms | p99.9 ms | within SLO | "
             "503 | bulk rows/s | bulk p99 ms | bulk 503 |", "|---" * 10 + "|"]
    for p in points:
        lines.append(f"| {p['bulk_load']:.0%} | {p['mode']} | {p['interactive_p50_ms']} | "
                     f"{p['interactive_p99_ms']} | {p['interactive_p999_ms']} | "
                     f"{p['interactive_in_slo']} | {p['interactive_503']} | "
                     f"{p['bulk_rows_per_s']:,} | {p['bulk_p99_ms']} | {p['bulk_503']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=FLIGHT_MODEL)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=2, help="A B B A rounds per load")
    parser.add_argument("--interactive-rps", type=float, default=50.0)
    parser.add_argument("--bulk-capacity", type=float, default=None,
                        help="bulk requests/s taken as 100%% instead of a ramp's measure "
                             "(the ramp's coarse steps vary between runs; fix it to compare)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    OUT.mkdir(exist_ok=True)
    openloop.binary()
    model = choose_model(args.model, args.tracking_uri)
    bulk = bulk_body(model.body)
    started, load_before = time.time(), os.getloadavg()
    spec = {"server": ServerSpec("ours", model.uri, (), model_env(model.tracking_uri))}
    with running(spec, OUT / "priorities-logs") as ports:
        port = ports["server"]
        bulk_only = [Template("bulk", "/invocations", bulk,
                              {"Content-Type": "application/json"})]
        ramp = ({"capacity_rps": args.bulk_capacity} if args.bulk_capacity
                else capacity(port, bulk_only, 2.0, start_rps=5.0))
        points = measure(port, model.body, bulk, ramp["capacity_rps"], args.interactive_rps,
                         args.duration, args.rounds)
    results = {"model": model.label, "bulk_rows": BULK_ROWS,
               "bulk_capacity_rps": ramp["capacity_rps"],
               "interactive_rps": args.interactive_rps, "points": points,
               "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
               "load_average": {"before": load_before, "after": os.getloadavg()},
               "minutes": round((time.time() - started) / 60, 1)}
    RESULTS.write_text(json.dumps(results, indent=1))
    print(f"{model.label}: bulk capacity {ramp['capacity_rps']:.1f} requests/s of "
          f"{BULK_ROWS} rows; interactive {args.interactive_rps:g}/s")
    print(table(points))


if __name__ == "__main__":
    main()
