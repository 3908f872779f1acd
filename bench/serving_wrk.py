"""Single-row serving throughput with wrk: the pipeline's registered models, side by side.

    python -m bench.serving_wrk [--duration 5] [--connections 1,4,8,16,32,64] [--rounds 2]
        [--models flight-mlp=models:/flight-delay-mlp@champion,...] [--tracking-uri URI]
        [--no-synthetic] [--workers 2]

Systems, started together: for the synthetic 32-input MLP of bench/serving.py (logged to
a throwaway registry under bench/out/) and for each registered model of the pipeline
(by default the flight MLP and the linear model over raw flight records, from the
pipeline's own MLflow store, conf/base.yaml), our server with the defaults of
conf/serving.yaml and `mlflow models serve --env-manager local` on the same model; plus
the no-op endpoint (bench/noop_app.py) on Starlette, the yardstick, and as plain ASGI;
and the no-op and our server as `--workers` uvicorn processes. Every system gets the
same client, wrk, closed loop, one request per round trip: `/invocations` with one
row, for the pipeline's models one `dataframe_records` row of a real flight (the first
row of the input example the model was logged with). For each connection count each
system is measured in turn, so all see the same background load; `--rounds` repeats
the whole sweep.

The figure of merit is requests/s at p99 <= 50 ms with every answer a 200 (the best
connection count), against the no-op endpoint and against `mlflow models serve` on the
same model. Writes bench/out/serving-wrk-results.json and bench/out/serving-wrk-table.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.servers import ServerSpec, model_env, running
from lab.loadtest.wrk import Request, run_wrk

log = logging.getLogger("bench.serving_wrk")

OUT = Path(__file__).resolve().parent / "out"
P99_GOAL_MS = 50.0
DEFAULT_MODELS = ("flight-mlp=models:/flight-delay-mlp@champion,"
                  "flight-linear=models:/flight-delay-linear@champion")


@dataclass(frozen=True)
class Served:
    """A model to serve: a label, its URI, the registry that holds it, one request body."""

    label: str
    uri: str
    tracking_uri: str
    body: bytes


def pipeline_tracking_uri() -> str:
    """The pipeline's MLflow store, as `mlpipe run` configured it."""
    from pipelines.platform.config import load_config
    from pipelines.platform.tracking import resolve_target

    return resolve_target(load_config()).tracking_uri


def record_body(model_uri: str, tracking_uri: str) -> bytes:
    """`{"dataframe_records": [row]}` with the first row of the model's logged example.

    MLflow writes that example as a scoring payload (`serving_input_example.json`) that
    it has checked against the model, so both servers accept it as it is.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    example = json.loads((local / "serving_input_example.json").read_text())
    split = example["dataframe_split"]
    record = dict(zip(split["columns"], split["data"][0], strict=True))
    return json.dumps({"dataframe_records": [record]}).encode()


def synthetic_model() -> Served:
    """The synthetic MLP of bench/serving.py and its single-row JSON body."""
    from bench.serving import bodies, log_model

    registry = OUT / f"registry-{int(time.time())}"
    registry.mkdir(parents=True)
    uri = log_model(registry)
    return Served("synthetic", uri, f"sqlite:///{registry}/mlflow.db", bodies()["single"][1])


def systems(models: list[Served], workers: list[int]
            ) -> tuple[dict[str, ServerSpec], dict[str, bytes]]:
    """Server specs and request bodies by system name (`<model>.ours`, `<model>.mlflow`).

    For each count in `workers` the no-op and our server also run as that many uvicorn
    worker processes (`noop-2w`, `<model>.ours-2w`): one process uses one core at most.
    """
    specs = {"noop": ServerSpec("noop"), "noop-asgi": ServerSpec("noop-asgi")}
    specs.update({f"noop-{count}w": ServerSpec("noop", flags=("--workers", str(count)))
                  for count in workers})
    requests = dict.fromkeys(specs, models[0].body)
    for model in models:
        env = model_env(model.tracking_uri)
        for kind in ("ours", "mlflow"):
            name = f"{model.label}.{kind}"
            specs[name] = ServerSpec(kind, model.uri, env=env)
            requests[name] = model.body
        for count in workers:
            name = f"{model.label}.ours-{count}w"
            specs[name] = ServerSpec("ours", model.uri, flags=("--workers", str(count)), env=env)
            requests[name] = model.body
    return specs, requests


def yardstick(name: str) -> str:
    """The no-op a system is compared with: the one with as many worker processes."""
    workers = name.rpartition("-")[2] if name.endswith("w") and "-" in name else ""
    return f"noop-{workers}" if workers[:-1].isdigit() else "noop"


def measure(ports: dict[str, int], bodies: dict[str, bytes], connections: list[int],
            duration_s: float, rounds: int) -> list[dict]:
    """Every system at every connection count, one system after another, `rounds` times."""
    requests = {name: Request("/invocations", body) for name, body in bodies.items()}
    for name, port in ports.items():  # open connections, fill caches
        run_wrk(port, requests[name], 4, 1)
    points = []
    for round_index in range(rounds):
        for count in connections:
            for name, port in ports.items():
                result = run_wrk(port, requests[name], count, duration_s)
                point = {"round": round_index, "system": name, "all_ok": result.all_ok,
                         "load_1min": round(os.getloadavg()[0], 2), **result.summary()}
                log.info("%s", point)
                points.append(point)
    return points


def best_under_goal(points: list[dict]) -> dict | None:
    """The highest-throughput point with p99 <= 50 ms and nothing but 200s."""
    good = [p for p in points if p["all_ok"] and p["p99_ms"] <= P99_GOAL_MS]
    return max(good, key=lambda p: p["ok_rps"]) if good else None


def summarise(points: list[dict]) -> dict[str, dict]:
    """Per system: the best rate under the goal in each round, and its median."""
    summary = {}
    for name in dict.fromkeys(p["system"] for p in points):
        rounds = sorted({p["round"] for p in points if p["system"] == name})
        bests = [best_under_goal([p for p in points
                                  if p["system"] == name and p["round"] == r]) for r in rounds]
        rates = [best["ok_rps"] if best else 0.0 for best in bests]
        summary[name] = {"median_rps": statistics.median(rates), "rounds_rps": rates,
                         "bests": bests,
                         "peak_rps": max(p["ok_rps"] for p in points if p["system"] == name)}
    return summary


def table(points: list[dict], load_average: tuple[float, float]) -> str:
    summary = summarise(points)
    lines = ["| system | req/s at p99 <= 50 ms, median (each round) | connections, p50 / p99 "
             "(ms) there | vs no-op (as many processes) | vs mlflow serve | peak req/s at "
             "any p99 |",
             "|---|---|---|---|---|---|"]
    for name, entry in summary.items():
        rate = entry["median_rps"]
        model, _, kind = name.partition(".")
        mlflow_rate = summary.get(f"{model}.mlflow", {}).get("median_rps")
        versus_mlflow = "-"
        if kind.startswith("ours") and mlflow_rate:
            versus_mlflow = f"{rate / mlflow_rate:.0f}x"
        elif kind.startswith("ours") and f"{model}.mlflow" in summary:  # it never met the goal
            versus_mlflow = f"{rate / summary[f'{model}.mlflow']['peak_rps']:.0f}x its peak"
        there = "; ".join(f"{best['connections']}: {best['p50_ms']:.1f} / {best['p99_ms']:.1f}"
                          if best else "none" for best in entry["bests"])
        rounds = ", ".join(f"{value:,.0f}" for value in entry["rounds_rps"])
        noop = summary[yardstick(name)]["median_rps"]
        lines.append(f"| {name} | **{rate:,.0f}** ({rounds}) | {there} | "
                     f"{100 * rate / noop:.0f}% | {versus_mlflow} | {entry['peak_rps']:,.0f} |")
    lines += ["", "Every point (median over rounds): req/s answered, p99 ms", "",
              "| system | " + " | ".join(f"{c} conn" for c in _connections(points)) + " |",
              "|---|" + "---|" * len(_connections(points))]
    for name in summary:
        cells = []
        for count in _connections(points):
            runs = [p for p in points if p["system"] == name and p["connections"] == count]
            cells.append(f"{statistics.median(p['ok_rps'] for p in runs):,.0f}, "
                         f"{statistics.median(p['p99_ms'] for p in runs):.1f}"
                         + ("" if all(p["all_ok"] for p in runs) else " (errors)"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(f"\n1-minute load average before / after: {load_average[0]:.1f} / "
                 f"{load_average[1]:.1f}")
    return "\n".join(lines)


def _connections(points: list[dict]) -> list[int]:
    return sorted({p["connections"] for p in points})


def parse_models(text: str, tracking_uri: str) -> list[Served]:
    models = []
    for item in filter(None, text.split(",")):
        label, uri = item.split("=", 1)
        models.append(Served(label, uri, tracking_uri, record_body(uri, tracking_uri)))
    return models


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", default="1,4,8,16,32,64")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help="label=MODEL_URI,... of raw-record models (empty: none)")
    parser.add_argument("--tracking-uri", default=None,
                        help="registry of --models (default: the pipeline's, conf/base.yaml)")
    parser.add_argument("--no-synthetic", action="store_true",
                        help="leave out the synthetic 32-input MLP")
    parser.add_argument("--workers", default="2",
                        help="worker process counts to run the no-op and our server with "
                             "as well (comma-separated; empty: one process only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    OUT.mkdir(exist_ok=True)
    models = parse_models(args.models, args.tracking_uri or pipeline_tracking_uri())
    if not args.no_synthetic:
        models.append(synthetic_model())
    specs, bodies = systems(models, [int(count) for count in filter(None,
                                                                     args.workers.split(","))])
    load_before = os.getloadavg()[0]
    with running(specs, OUT / "wrk-logs") as ports:
        points = measure(ports, bodies, [int(c) for c in args.connections.split(",")],
                         args.duration, args.rounds)
    load = (load_before, os.getloadavg()[0])
    (OUT / "serving-wrk-results.json").write_text(json.dumps(
        {"models": {m.label: m.uri for m in models}, "load_average_1min": load,
         "points": points}, indent=1))
    markdown = table(points, load)
    (OUT / "serving-wrk-table.md").write_text(markdown + "\n")
    log.info("\n%s", markdown)


if __name__ == "__main__":
    main()
