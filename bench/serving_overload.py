"""Goodput under overload: many connections that resend at once, against one server.

    python -m bench.serving_overload [--model models:/flight-delay-mlp@champion]
        [--tracking-uri URI] [--duration 10] [--connections 512] [--rounds 2]
        [--variant 'label=--flag value ...' ...]

Each variant is our server on the model with `--max-queue 64` and the variant's flags
on top (no variant: the defaults of conf/serving.yaml); all variants run side by side
and are measured in turn, `--rounds` times. Per variant and round:

- capacity: the best 200s/s at p99 <= 50 ms with wrk at 8, 16 and 32 connections;
- overload: wrk with `--connections` connections (closed loop, no back-off after a
  503, client timeout 2 s), and meanwhile a probe (lab/loadtest/open_loop.py, open loop, 50
  requests/s) whose 200s give the exact latency of served requests. wrk's histogram
  covers every status; its bound on the 200s' p99 (lab/loadtest/wrk.py) is tight only when
  the 503s are the faster answers.

Writes bench/out/serving-overload-results.json and bench/out/serving-overload-table.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import subprocess
from pathlib import Path

from bench.servers import ServerSpec, model_env, running
from bench.serving_wrk import P99_GOAL_MS, pipeline_tracking_uri, record_body
from lab.loadtest.open_loop import Target, run_open_loop
from lab.loadtest.wrk import Request, parse_output, run_wrk, script_command

log = logging.getLogger("bench.serving_overload")

OUT = Path(__file__).resolve().parent / "out"
CAPACITY_CONNECTIONS = (8, 16, 32)
PROBE_RPS = 50
CLIENT_TIMEOUT_S = 2.0


def capacity(port: int, request: Request, duration_s: float) -> dict:
    """The best 200s/s with p99 <= 50 ms and only 200s, over a few connection counts."""
    runs = [run_wrk(port, request, count, duration_s) for count in CAPACITY_CONNECTIONS]
    good = [run for run in runs if run.all_ok and run.p99_ms <= P99_GOAL_MS]
    best = max(good or runs, key=lambda run: run.ok_rps)
    return {"ok_rps": round(best.ok_rps, 1), "connections": best.connections,
            "p99_ms": best.p99_ms, "met_goal": bool(good)}


def overload(port: int, request: Request, connections: int, duration_s: float) -> dict:
    """wrk's storm and, at the same time, the probe that times served requests exactly."""
    with script_command(port, request, connections, duration_s,
                        timeout_s=CLIENT_TIMEOUT_S) as command:
        storm = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        target = Target("127.0.0.1", port, request.path, request.body, request.headers)
        probe = asyncio.run(run_open_loop(target, rate=PROBE_RPS, duration_s=duration_s,
                                          timeout_s=CLIENT_TIMEOUT_S))
        stdout, stderr = storm.communicate(timeout=duration_s + 60)
    result = parse_output(stdout, connections, stderr)
    return {**result.summary(), "probe": probe.summary(),
            "probe_codes": {str(code): n for code, n in probe.codes.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models:/flight-delay-mlp@champion")
    parser.add_argument("--tracking-uri", default=None,
                        help="registry of --model (default: the pipeline's, conf/base.yaml)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=512)
    parser.add_argument("--max-queue", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variant", action="append", default=[],
                        help="label=FLAGS: server flags of one variant (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    tracking_uri = args.tracking_uri or pipeline_tracking_uri()
    request = Request("/invocations", record_body(args.model, tracking_uri))
    variants = dict(item.split("=", 1) for item in args.variant) or {"defaults": ""}
    env = model_env(tracking_uri)
    specs = {label: ServerSpec("ours", args.model,
                               ("--max-queue", str(args.max_queue), *shlex.split(flags)), env)
             for label, flags in variants.items()}
    load_before = os.getloadavg()[0]
    results = []
    with running(specs, OUT / "overload-logs") as ports:
        for round_index in range(args.rounds):
            for label, port in ports.items():
                entry = {"round": round_index, "variant": label, "flags": variants[label],
                         "capacity": capacity(port, request, args.duration / 2),
                         "overload": overload(port, request, args.connections, args.duration),
                         "load_1min": round(os.getloadavg()[0], 2)}
                log.info("%s", entry)
                results.append(entry)
    load = (load_before, os.getloadavg()[0])
    (OUT / "serving-overload-results.json").write_text(json.dumps(
        {"model": args.model, "connections": args.connections, "max_queue": args.max_queue,
         "load_average_1min": load, "results": results}, indent=1))
    markdown = table(results, args.connections, load)
    (OUT / "serving-overload-table.md").write_text(markdown + "\n")
    log.info("\n%s", markdown)


def table(results: list[dict], connections: int, load: tuple[float, float]) -> str:
    lines = [f"| variant (round) | capacity 200s/s (conn, p99 ms) | {connections} connections: "
             "answers/s | 200s/s (% of capacity) | statuses | 503s without Retry-After | "
             "client timeouts | 200s p99 ms: probe (wrk bound) | probe 200 p50 ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for entry in results:
        cap, storm, probe = entry["capacity"], entry["overload"], entry["overload"]["probe"]
        share = 100 * storm["ok_rps"] / cap["ok_rps"] if cap["ok_rps"] else 0.0
        statuses = ", ".join(f"{code}: {n}" for code, n in storm["statuses"].items())
        lines.append(
            f"| {entry['variant']} ({entry['round']}) | {cap['ok_rps']:,.0f} "
            f"({cap['connections']}, {cap['p99_ms']:.0f}) | {storm['rps']:,.0f} | "
            f"{storm['ok_rps']:,.0f} ({share:.0f}%) | {statuses} | "
            f"{storm['missing_retry_after']} | {storm['errors']['timeout']} | "
            f"{probe['p99_ms']:.0f} ({storm['ok_p99_bound_ms']:.0f}) | {probe['p50_ms']:.1f} |")
    lines.append(f"\n1-minute load average before / after: {load[0]:.1f} / {load[1]:.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
