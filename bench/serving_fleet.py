"""Serving as a fleet: balancing policies, request priorities, latency-target batching.

    python -m bench.serving_fleet [--quick] [--model models:/flight-delay-mlp@champion]
        [--tracking-uri URI] [--replicas 3] [--slow-cpus 0.25] [--replot] [--sweep]

On this machine, N replicas (default 3) of the model, one of them slow: held to
`--slow-cpus` CPUs by a cgroup CPU quota (lab/handicap.py; CFS, 100 ms period,
so the slow replica both runs slower and stalls when throttled, as a container at its
CPU limit does). The quota is set once every replica has loaded its model. The model is
the pipeline's flight MLP over one raw `dataframe_records` row; when the pipeline has not
registered it yet, the synthetic 32-input MLP of bench/serving.py in a throwaway
registry under bench/out/ (the results name the model used). The client is the Go
open-loop generator (bench/openloop.py): Poisson arrivals, latency from each request's
due time, every request bounded by a 5 s timeout (sent along as `x-request-timeout-ms`).

1. Capacity: an open-loop ramp (x1.4 per step) against the fleet under `leastconn` until
   it stops keeping up; the capacity is the most 200s/s of a step that kept up (see
   `capacity`).
2. Policies (`leastconn`, `roundrobin`, `random2` behind HAProxy, and `reuseport`: uvicorn
   workers on one port, no balancer), each at 50%, 80% and 100% of that capacity, the
   policies in turn at each load: p50/p99/p99.9 of the 200s, goodput (200s within the
   50 ms SLO), 503s, and per replica its share of the 200s and its mean batch size (both
   from the replica's /metrics); then once more at a mean of 50% with bursty arrivals
   (`BURSTY`, bursts to 125% of capacity). The HAProxy policies balance the very same
   replica processes (one HAProxy each); reuseport has its own workers, one slowed.
3. Priorities near and past capacity: 20% of requests `x-request-priority: high`, 80%
   `low`, against the same mix with no priority header; on the `leastconn` fleet, and on
   one server with the default settings (there the batcher's queue is the only queue).
4. Latency target, on single servers side by side: `--latency-target-ms 50` against fixed
   `--max-delay-ms` settings (always including the default), over a load sweep from 10%
   to 120% of one server's capacity (measured by a ramp as in 1), and bursty at a mean of
   50%; the best and worst fixed settings are those with the most and least goodput
   summed over the Poisson sweep.

Writes bench/out/serving-fleet-results.json, bench/out/serving-fleet-table.md and the plot
bench/serving_fleet.png; `--sweep` runs 4 alone (and the one-server priorities of 3) and
prints its table, results in bench/out/serving-sweep-results.json. About 12-13 minutes on
the busy machine; `--quick` about 4-5 (shorter points, fewer loads).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from bench import openloop
from bench.fleet_systems import Counters, Handicap, haproxy_fleet, read_metrics, worker_fleet
from bench.openloop import POISSON, Arrivals, Report, Template
from bench.servers import ServerSpec, model_env, running
from serving.settings import DEFAULT_CONF, ServingSettings, load_settings

log = logging.getLogger("bench.serving_fleet")

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out"
RESULTS = OUT / "serving-fleet-results.json"
SWEEP_RESULTS = OUT / "serving-sweep-results.json"
FLIGHT_MODEL = "models:/flight-delay-mlp@champion"
SLO_MS = 50.0
CLIENT_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 1024
# HAProxy policies first: the fleet itself runs the first; reuseport needs no balancer.
POLICIES = ("leastconn", "roundrobin", "random2", "reuseport")
POLICY_LOADS = (0.5, 0.8, 1.0)
HIGH_SHARE = 0.2
LATENCY_TARGET_MS = 50.0
RAMP_START_RPS = 100.0
RAMP_FACTOR = 1.4
RAMP_MAX_STEPS = 16
SETTLE_S = 1.0
# Bursty arrivals: a two-state Markov-modulated Poisson process at a mean of BURSTY_LOAD
# of capacity, bursting to 2.5x that mean (125% of capacity) a fifth of the time, in
# bursts of 0.5 s on average, and at 0.625x the mean in between.
BURSTY = Arrivals("mmpp", burst_factor=2.5, burst_fraction=0.2, burst_mean_ms=500)
BURSTY_LOAD = 0.5


@dataclass(frozen=True)
class Plan:
    """How long and how finely to measure."""

    point_s: float  # load per measured point
    ramp_s: float  # per step of a capacity ramp
    priority_loads: tuple[float, ...]  # fractions of the fleet's capacity
    sweep_loads: tuple[float, ...]  # fractions of one server's capacity
    sweep_point_s: float
    fixed_delays_ms: tuple[float, ...]


PLANS = {
    "full": Plan(10, 3, (0.9, 1.2), (0.1, 0.3, 0.6, 0.9, 1.2), 6, (0, 2, 10, 25)),
    "quick": Plan(3, 1.5, (1.1,), (0.15, 0.6, 1.1), 2.5, (10,)),
}


@dataclass(frozen=True)
class Model:
    """What the fleet serves and the one request body sent to it."""

    label: str
    uri: str
    tracking_uri: str
    body: bytes


def choose_model(uri: str, tracking_uri: str | None) -> Model:
    """The pipeline's model if it is registered, else the synthetic MLP (logged now)."""
    from mlflow.exceptions import MlflowException

    from bench.serving_wrk import pipeline_tracking_uri, record_body

    tracking_uri = tracking_uri or pipeline_tracking_uri()
    try:
        return Model(uri, uri, tracking_uri, record_body(uri, tracking_uri))
    except MlflowException as error:
        log.warning("%s is not registered in %s (%s): measuring the synthetic MLP instead",
                    uri, tracking_uri, str(error).splitlines()[0])
    from bench.serving import bodies, log_model

    registry = OUT / f"registry-{int(time.time())}"
    registry.mkdir(parents=True)
    synthetic = log_model(registry)
    return Model("synthetic 32-256-256-1 MLP", synthetic, f"sqlite:///{registry}/mlflow.db",
                 bodies()["single"][1])


def templates(model: Model, mix: dict[str, str | None] | None = None) -> list[Template]:
    """One request template, or one per priority level (`{name: header value or None}`)
    weighted HIGH_SHARE / rest."""
    headers = {"Content-Type": "application/json",
               "x-request-timeout-ms": str(int(CLIENT_TIMEOUT_S * 1000))}
    if mix is None:
        return [Template("request", "/invocations", model.body, headers)]
    return [Template(name, "/invocations", model.body,
                     {**headers, **({"x-request-priority": level} if level else {})},
                     HIGH_SHARE if name == "high" else 1 - HIGH_SHARE)
            for name, level in mix.items()]


def load(port: int, rate: float, duration_s: float, kinds: list[Template],
         seed: int = 0, arrivals: Arrivals = POISSON) -> Report:
    return openloop.run("127.0.0.1", port, kinds, rate, duration_s, arrivals=arrivals,
                        timeout_s=CLIENT_TIMEOUT_S, max_connections=MAX_CONNECTIONS,
                        slo_ms=SLO_MS, seed=seed)


def summary(group: dict, sent: int) -> dict:
    """The figures of one group of a report that the tables show."""
    status = group["status"]
    return {"requests": group["requests"], "p50_ms": group["p50_ms"],
            "p99_ms": group["p99_ms"], "p999_ms": group["p999_ms"],
            "throughput_rps": group["throughput_rps"], "goodput_rps": group["goodput_rps"],
            "good_share": round(group["good"] / sent, 4) if sent else 0.0,
            "rate_503": round(status.get("503", 0) / sent, 4) if sent else 0.0,
            "other_errors": sum(count for code, count in status.items()
                                if code not in ("200", "503"))}


def capacity(port: int, kinds: list[Template], step_s: float,
             start_rps: float = RAMP_START_RPS) -> dict:
    """An open-loop ramp that ends once the system has failed to keep up (answer 90% of
    the offered rate with p99 under 1 s) at two steps in a row: one step can fail to a
    stall of the shared machine. The capacity is the most 200s/s of a step that kept up
    (an overloaded step can show more, from batches that grew while its queue did);
    `slo_capacity_rps` the most of a step whose p99 also met the SLO."""
    steps, rate, failed = [], start_rps, 0
    while failed < 2 and len(steps) < RAMP_MAX_STEPS:
        report = load(port, rate, step_s, kinds, seed=len(steps))
        p99 = report.total["p99_ms"]
        kept_up = (report.total["throughput_rps"] >= 0.9 * report.offered_rps
                   and p99 is not None and p99 < 1000)
        step = {"offered_rps": report.offered_rps, "kept_up": kept_up,
                **summary(report.total, report.sent)}
        log.info("ramp %s", step)
        steps.append(step)
        failed = 0 if kept_up else failed + 1
        rate *= RAMP_FACTOR
        time.sleep(SETTLE_S if kept_up else 3 * SETTLE_S)  # let an overload drain
    good = [step for step in steps if step["kept_up"]] or steps
    within_slo = [step["throughput_rps"] for step in good
                  if step["p99_ms"] is not None and step["p99_ms"] <= SLO_MS]
    return {"capacity_rps": max(step["throughput_rps"] for step in good),
            "slo_capacity_rps": max(within_slo, default=None), "steps": steps}


def rotated(items: Sequence[str], steps: int) -> list[str]:
    """`items` starting at a different one each load level, so that no system is always
    measured first (or right after the same other one)."""
    steps %= len(items)
    return [*items[steps:], *items[:steps]]


def measured_point(port: int, rate: float, duration_s: float, kinds: list[Template],
                   counters: Callable[[], dict[str, Counters]], seed: int,
                   arrivals: Arrivals = POISSON) -> dict:
    """One load run, with each replica's share of the 200s and mean batch size in it."""
    before = counters()
    report = load(port, rate, duration_s, kinds, seed, arrivals)
    after = counters()
    deltas = {name: after[name] - before[name] for name in after if name in before}
    answered = sum(delta.ok for delta in deltas.values()) or 1
    point = {"arrivals": arrivals.process, "offered_rps": report.offered_rps,
             "client_cpu_s": report.client_cpu_s,
             "load_1min": round(os.getloadavg()[0], 1),
             "client_lag_p99_ms": report.client_lag_ms.get("p99"),
             **summary(report.total, report.sent),
             "share": {name: round(delta.ok / answered, 3) for name, delta in deltas.items()},
             "mean_batch": {name: round(delta.rows / delta.batches, 2) if delta.batches else None
                            for name, delta in deltas.items()},
             "served_by": {name: {"requests": group["requests"], "p99_ms": group["p99_ms"]}
                           for name, group in report.served_by.items()},
             "templates": {name: summary(group, report.sent)
                           for name, group in report.templates.items()}}
    time.sleep(SETTLE_S)
    return point


def measure_fleet(model: Model, settings: ServingSettings, handicap: Handicap, plan: Plan,
                  env: dict[str, str]) -> dict:
    """Capacity, the policies at each load, and the priorities."""
    single = templates(model)
    results: dict = {"policies": [], "priorities": []}
    with haproxy_fleet(model.uri, settings, list(POLICIES[:-1]), handicap,
                       OUT / "fleet") as fleet, \
            worker_fleet(model.uri, settings.replicas, handicap, env,
                         OUT / "fleet-logs") as workers:
        systems = {policy: (port, fleet.counters) for policy, port in fleet.ports.items()}
        systems["reuseport"] = (workers.port, workers.counters)
        results["capacity"] = capacity(fleet.ports["leastconn"], single, plan.ramp_s)
        rate = results["capacity"]["capacity_rps"]
        levels = [(fraction, POISSON) for fraction in POLICY_LOADS] + [(BURSTY_LOAD, BURSTY)]
        for index, (fraction, arrivals) in enumerate(levels):
            for policy in rotated(POLICIES, index):
                port, counters = systems[policy]
                point = measured_point(port, fraction * rate, plan.point_s, single, counters,
                                       seed=index, arrivals=arrivals)
                point.update(policy=policy, load=fraction)
                log.info("%s at %.0f%%: %s", policy, 100 * fraction,
                         {k: point[k] for k in ("p99_ms", "good_share", "rate_503", "share")})
                results["policies"].append(point)
        results["priorities"] = measure_priorities(
            model, fleet.ports["leastconn"], rate, plan, fleet.counters)
    return results


def measure_priorities(model: Model, port: int, capacity_rps: float, plan: Plan,
                       counters: Callable[[], dict[str, Counters]]) -> list[dict]:
    """The high level's latency with 80% of requests at the low level, and with the
    same mix sent without priorities, near and past capacity."""
    points = []
    for fraction in plan.priority_loads:
        for mode, mix in (("priorities", {"high": "high", "low": "low"}),
                          ("none", {"high": None, "low": None})):
            point = measured_point(port, fraction * capacity_rps, plan.point_s,
                                   templates(model, mix), counters, seed=7)
            point.update(mode=mode, load=fraction)
            log.info("priorities %s at %.0f%%: high %s", mode, 100 * fraction,
                     point["templates"]["high"])
            points.append(point)
    return points


def server_counters(port: int) -> dict[str, Counters]:
    return {"server": read_metrics(port)[1]}


def measure_single(model: Model, settings: ServingSettings, plan: Plan,
                   env: dict[str, str]) -> dict:
    """Single servers side by side: the latency target and each fixed delay over a load
    sweep; then the priorities on the server with the default settings."""
    delays = sorted({*plan.fixed_delays_ms, settings.max_delay_ms})
    configs = {f"fixed {delay:g} ms": ("--max-delay-ms", str(delay)) for delay in delays}
    configs[f"target {LATENCY_TARGET_MS:g} ms"] = ("--latency-target-ms", str(LATENCY_TARGET_MS))
    default = f"fixed {settings.max_delay_ms:g} ms"
    specs = {name: ServerSpec("ours", model.uri, flags, env) for name, flags in configs.items()}
    single = templates(model)
    points = []
    with running(specs, OUT / "fleet-logs") as ports:
        result = {"default": default, "configs": list(configs),
                  "capacity": capacity(ports[default], single, plan.ramp_s)}
        rate = result["capacity"]["capacity_rps"]
        levels = [(fraction, POISSON) for fraction in plan.sweep_loads]
        for index, (fraction, arrivals) in enumerate([*levels, (BURSTY_LOAD, BURSTY)]):
            for name in rotated(list(configs), index):
                point = measured_point(ports[name], fraction * rate, plan.sweep_point_s, single,
                                       partial(server_counters, ports[name]), seed=index,
                                       arrivals=arrivals)
                point.update(config=name, load=fraction)
                log.info("%s at %.0f%%: p99 %s good %s", name, 100 * fraction,
                         point["p99_ms"], point["good_share"])
                points.append(point)
        result["points"] = points
        result["priorities"] = measure_priorities(model, ports[default], rate, plan,
                                                  partial(server_counters, ports[default]))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter points, fewer loads")
    parser.add_argument("--model", default=FLIGHT_MODEL)
    parser.add_argument("--tracking-uri", default=None,
                        help="registry of --model (default: the pipeline's, conf/base.yaml)")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--slow-cpus", type=float, default=0.25,
                        help="CPU quota of the slow replica (CPUs), the handicap")
    parser.add_argument("--replot", action="store_true",
                        help="redraw the plot and table from the last results, measure nothing")
    parser.add_argument("--sweep", action="store_true",
                        help="only part 4 and the one-server priorities (~7 minutes); "
                             f"results in {SWEEP_RESULTS.name}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from bench.serving_fleet_report import report, sweep_report

    if args.replot:
        report(json.loads(RESULTS.read_text()))
        return
    plan = PLANS["quick" if args.quick else "full"]
    OUT.mkdir(exist_ok=True)
    openloop.binary()  # build the client before any server takes the cores
    model = choose_model(args.model, args.tracking_uri)
    os.environ["MLFLOW_TRACKING_URI"] = model.tracking_uri  # the fleet resolves and inherits it
    env = model_env(model.tracking_uri)
    settings = load_settings(DEFAULT_CONF, replicas=args.replicas, log_level="warning")
    handicap = Handicap(f"r{args.replicas}", args.slow_cpus)
    load_before, started = os.getloadavg(), time.time()
    results = {"model": model.label, "model_uri": model.uri, "plan": asdict(plan),
               "handicap": asdict(handicap), "slo_ms": SLO_MS, "high_share": HIGH_SHARE,
               "started_utc":
               time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))}
    if not args.sweep:
        results["fleet"] = measure_fleet(model, settings, handicap, plan, env)
    results["single"] = measure_single(model, settings, plan, env)
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    results["minutes"] = round((time.time() - started) / 60, 1)
    (SWEEP_RESULTS if args.sweep else RESULTS).write_text(json.dumps(results, indent=1))
    (sweep_report if args.sweep else report)(results)


if __name__ == "__main__":
    main()
