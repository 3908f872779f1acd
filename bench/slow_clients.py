"""Slow clients (slowloris) beside a normal client, against our server and `mlflow models serve`.

    python -m bench.slow_clients [--model models:/flight-delay-mlp@champion]
        [--tracking-uri URI] [--rate 100] [--duration 3] [--slow-headers 1000]
        [--slow-bodies 100] [--synthetic]

Each server runs on the model, reached directly (no balancer). The normal client is the
open-loop generator at `--rate` single-row requests/s (about half our server's capacity
on the flight MLP on 2 cores), first alone, then beside `--slow-headers` connections
sending their headers a byte a second and `--slow-bodies` whose body trickles a byte a
second (lab/loadtest/slow_clients.py). The table gives the normal client's p50/p99 and
errors in both phases, and what the slow clients were answered (408 from a server that
bounds them; nothing from one that waits for ever). `--synthetic` serves the synthetic
MLP of bench/serving.py instead, when the pipeline has not run.

Writes bench/out/slow-clients.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections import Counter

from bench.servers import ServerSpec, model_env, running
from bench.serving_wrk import OUT, Served, pipeline_tracking_uri, record_body, synthetic_model
from lab.loadtest.open_loop import Target, run_open_loop
from lab.loadtest.slow_clients import slow_clients_beside

log = logging.getLogger("bench.slow_clients")

# Our server's allowance for headers and for a body (conf/serving.yaml's default).
READ_TIMEOUT_S = 10


def answered(answers: list[bytes]) -> str:
    """How the slow clients were answered: `408 x1000`, `none x100`."""
    kinds = Counter(answer[9:12].decode() if answer.startswith(b"HTTP/1.1 ") else "none"
                    for answer in answers)
    return ", ".join(f"{kind} x{count}" for kind, count in sorted(kinds.items()))


def measure(port: int, body: bytes, args: argparse.Namespace) -> dict[str, str | float]:
    target = Target("127.0.0.1", port, "/invocations", body,
                    {"Content-Type": "application/json"})
    alone = asyncio.run(run_open_loop(target, rate=args.rate, duration_s=args.duration))
    load = asyncio.run(slow_clients_beside(
        target, rate=args.rate, duration_s=args.duration, slow_headers=args.slow_headers,
        slow_bodies=args.slow_bodies, answer_within_s=READ_TIMEOUT_S + 5))
    quiet, beside = alone.summary(), load.normal.summary()
    return {"alone_p50_ms": quiet["p50_ms"], "alone_p99_ms": quiet["p99_ms"],
            "alone_errors": quiet["errors"], "slow_p50_ms": beside["p50_ms"],
            "slow_p99_ms": beside["p99_ms"], "slow_errors": beside["errors"],
            "sent": beside["sent"], "headers_answered": answered(load.header_answers),
            "bodies_answered": answered(load.body_answers)}


def table(rows: dict[str, dict], args: argparse.Namespace) -> str:
    header = ("server", "alone p50 / p99 ms", "errors", "beside slow p50 / p99 ms", "errors",
              "slow headers got", "slow bodies got")
    cells = [(name, f"{r['alone_p50_ms']} / {r['alone_p99_ms']}", str(r["alone_errors"]),
              f"{r['slow_p50_ms']} / {r['slow_p99_ms']}", f"{r['slow_errors']} of {r['sent']}",
              str(r["headers_answered"]), str(r["bodies_answered"])) for name, r in rows.items()]
    return "\n".join([
        f"Normal client at {args.rate:g} req/s for {args.duration:g} s, alone and beside "
        f"{args.slow_headers} slow-header and {args.slow_bodies} slow-body connections", "",
        *("| " + " | ".join(line) + " |" for line in (header, ("---",) * len(header), *cells))])


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models:/flight-delay-mlp@champion")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--slow-headers", type=int, default=1000)
    parser.add_argument("--slow-bodies", type=int, default=100)
    parser.add_argument("--synthetic", action="store_true")
    args = parser.parse_args(argv)
    if args.synthetic:
        served = synthetic_model()
    else:
        tracking = args.tracking_uri or pipeline_tracking_uri()
        served = Served("flight-mlp", args.model, tracking, record_body(args.model, tracking))
    env = model_env(served.tracking_uri)
    specs = {"ours": ServerSpec("ours", served.uri, env=env),
             "mlflow models serve": ServerSpec("mlflow", served.uri, env=env)}
    rows = {}
    for name, spec in specs.items():  # one at a time: each has the machine to itself
        with running({name: spec}, OUT / "slow-clients-logs") as ports:
            rows[name] = measure(ports[name], served.body, args)
    report = table(rows, args)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "slow-clients.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
