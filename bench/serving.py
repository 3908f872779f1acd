"""Serving benchmark: latency against throughput, open-loop, for our server and the limits.

    python -m bench.serving [--duration 3] [--systems ours,ours-b1,mlflow,noop]

It logs a 32-input MLP (two hidden layers of 256) to a throwaway MLflow registry under
bench/out/, then, for each system and request kind, sweeps the offered rate (Poisson
arrivals, lab/loadtest/open_loop.py) until the system saturates. Systems: our server batched,
our server with max_batch_size=1, `mlflow models serve --env-manager local`, and a no-op
endpoint on the same uvicorn + Starlette stack; plus in-process predict on full batches,
what the model computes at all. Kinds: 1 row per request (JSON), 256 rows (JSON), and
256 rows as KServe binary tensors. Everything runs on loopback; every load run is
bounded by rate x duration requests and a timeout.

Writes bench/out/serving-results.json, bench/out/serving-table.md and the plot
bench/serving_latency_throughput.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.servers import ServerSpec, model_env, running
from lab.loadtest.open_loop import LoadResult, Target, run_open_loop

log = logging.getLogger("bench.serving")

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out"
PLOT = BENCH_DIR / "serving_latency_throughput.png"
MODEL_NAME = "bench-mlp"
FEATURES = 32
P99_GOAL_S = 0.050

# Offered rates (requests/s) per system and kind; a sweep stops at saturation.
RATES = {
    ("ours", "single"): [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000],
    ("ours-b1", "single"): [250, 500, 750, 1000, 1500, 2000],
    ("mlflow", "single"): [10, 20, 30, 45, 60],
    ("noop", "single"): [1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000],
    ("ours", "json256"): [25, 50, 75, 100, 150, 200, 300],
    ("ours-b1", "json256"): [25, 50, 75, 100, 150, 200, 300],
    ("mlflow", "json256"): [5, 10, 20, 30, 40],
    ("noop", "json256"): [25, 50, 75, 100, 150, 200, 300, 400],
    ("ours", "binary256"): [100, 200, 300, 400, 500, 600, 800, 1000, 1200],
    ("ours-b1", "binary256"): [100, 200, 300, 400, 500, 600, 800, 1000, 1200],
    ("noop", "binary256"): [500, 1000, 1500, 2000, 3000, 4000],
}
COLORS = {"ours": "C0", "ours-b1": "C1", "mlflow": "C2", "noop": "C3"}
ROWS = {"single": 1, "json256": 256, "binary256": 256}


@dataclass
class Point:
    system: str
    kind: str
    summary: dict


def log_model(registry: Path) -> str:
    """The benchmark model, registered in a throwaway local registry."""
    import keras
    import mlflow
    from mlflow.models import infer_signature

    from lab.registry import register_released

    mlflow.set_tracking_uri(f"sqlite:///{registry}/mlflow.db")
    experiment = mlflow.set_experiment("serving-bench")
    if experiment.artifact_location.startswith("mlflow-artifacts"):
        raise RuntimeError("expected a local artifact store")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((FEATURES,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(1),
    ])
    example = np.random.default_rng(0).normal(size=(4, FEATURES)).astype(np.float32)
    with mlflow.start_run():
        info = mlflow.tensorflow.log_model(
            model, name="model", signature=infer_signature(example, model(example).numpy()),
            pip_requirements=["tensorflow"])
    return f"models:/{MODEL_NAME}/{register_released(MODEL_NAME, info.model_uri, info.run_id)}"


def in_process_limit(model_uri: str, seconds: float) -> dict[str, float]:
    """Rows/s of our runtime's compiled predict on full batches of 256 and on single rows."""
    from serving.runtime import load_runtime

    runtime = load_runtime(model_uri, (1, 256), deployment="")
    limits = {}
    for batch in (256, 1):
        columns = {"input": np.random.default_rng(1).normal(size=(batch, FEATURES))
                   .astype(np.float32)}
        calls = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            runtime.predict(columns, batch)
            calls += 1
        limits[f"rows_per_s_batch{batch}"] = calls * batch / (time.perf_counter() - start)
    return limits


def bodies() -> dict[str, tuple[str, bytes, dict[str, str]]]:
    """(path kind, body, headers) per request kind; the same body is sent every time."""
    import tritonclient.http as triton

    rng = np.random.default_rng(2)
    single = rng.normal(size=(1, FEATURES)).astype(np.float32)
    block = rng.normal(size=(256, FEATURES)).astype(np.float32)
    tensor = triton.InferInput("input", list(block.shape), "FP32")
    tensor.set_data_from_numpy(block, binary_data=True)
    binary, header_length = triton.InferenceServerClient.generate_request_body(
        [tensor], outputs=[triton.InferRequestedOutput("predictions", binary_data=True)])
    json_headers = {"Content-Type": "application/json"}
    return {
        "single": ("scoring", json.dumps({"inputs": single.tolist()}).encode(), json_headers),
        "json256": ("scoring", json.dumps({"inputs": block.tolist()}).encode(), json_headers),
        "binary256": ("kserve", binary, {"Content-Type": "application/octet-stream",
                                         "Inference-Header-Content-Length": str(header_length)}),
    }


def server_specs(systems: list[str], model_uri: str, env: dict[str, str]
                 ) -> dict[str, ServerSpec]:
    flags = {"ours-b1": ("--max-batch-size", "1")}
    kinds = {"ours-b1": "ours"}
    return {system: ServerSpec(kinds.get(system, system), model_uri, flags.get(system, ()), env)
            for system in systems}


def measure_interleaved(ports: dict[str, int], kind: str, duration_s: float) -> list[Point]:
    """Sweep every system's rates for one request kind, one step of each in turn.

    Taking the systems in rounds, rather than one whole sweep after another, exposes
    them to the same background load: on a shared machine that drifts by the minute.
    A system leaves the rounds once saturated (p99 past 1 s, or requests failing).
    """
    path_kind, body, headers = bodies()[kind]
    path = "/invocations" if path_kind == "scoring" else f"/v2/models/{MODEL_NAME}/infer"
    targets = {system: Target("127.0.0.1", port, path, body, headers, rows=ROWS[kind])
               for system, port in ports.items() if (system, kind) in RATES}
    for target in targets.values():  # open connections, warm caches
        asyncio.run(run_open_loop(target, rate=20, duration_s=1))
    points = []
    for step in range(max(len(RATES[(system, kind)]) for system in targets)):
        for system, target in list(targets.items()):
            rates = RATES[(system, kind)]
            if step >= len(rates):
                del targets[system]
                continue
            result: LoadResult = asyncio.run(
                run_open_loop(target, rate=rates[step], duration_s=duration_s))
            summary = result.summary()
            log.info("%-8s %-9s %s", system, kind, summary)
            points.append(Point(system, kind, summary))
            if result.percentile(99) > 1.0 or result.ok < 0.99 * sum(result.codes.values()):
                del targets[system]
    return points


def best_under_goal(points: list[Point]) -> dict | None:
    """The highest throughput point whose p99 meets the goal without errors."""
    good = [p.summary for p in points
            if p.summary["p99_ms"] <= P99_GOAL_S * 1e3 and p.summary["errors"] == 0]
    return max(good, key=lambda s: s["ok_rps"]) if good else None


def plot(points: list[Point], limits: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axes = plt.subplots(1, 3, figsize=(17, 5))
    for axis, kind in zip(axes, ("single", "json256", "binary256"), strict=True):
        for system in ("ours", "ours-b1", "mlflow", "noop"):
            series = [p.summary for p in points if p.system == system and p.kind == kind]
            if not series:
                continue
            rows = [s["ok_rows_per_s"] for s in series]
            color = COLORS[system]
            axis.plot(rows, [s["p99_ms"] for s in series], "o-", color=color,
                      label=f"{system} p99")
            axis.plot(rows, [s["p50_ms"] for s in series], "x--", color=color, alpha=0.6,
                      label=f"{system} p50")
        if kind != "single":
            axis.axvline(limits["rows_per_s_batch256"], color="k", ls=":",
                         label="in-process predict, batch 256")
        axis.axhline(P99_GOAL_S * 1e3, color="r", ls=":", label="p99 goal 50 ms")
        axis.set(xscale="log", yscale="log", xlabel="rows/s answered (200)",
                 ylabel="latency (ms)", title={"single": "1 row per request (JSON)",
                                               "json256": "256 rows per request (JSON)",
                                               "binary256": "256 rows, KServe binary tensors"
                                               }[kind])
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle("Serving a 32-256-256-1 MLP, open-loop Poisson load on the same 2 cores")
    figure.tight_layout()
    figure.savefig(PLOT, dpi=110)


def table(points: list[Point], limits: dict[str, float]) -> str:
    lines = ["| system | request | best rows/s at p99 <= 50 ms (req/s) | p50 / p99 there (ms) "
             "| highest offered rate, its rows/s and p99 |", "|---|---|---|---|---|"]
    for kind in ("single", "json256", "binary256"):
        for system in ("ours", "ours-b1", "mlflow", "noop"):
            series = [p for p in points if p.system == system and p.kind == kind]
            if not series:
                continue
            best = best_under_goal(series)
            last = series[-1].summary
            cell = (f"{best['ok_rows_per_s']:,.0f} ({best['ok_rps']:,.0f})",
                    f"{best['p50_ms']} / {best['p99_ms']}") if best else ("none", "-")
            lines.append(f"| {system} | {kind} | {cell[0]} | {cell[1]} | {last['offered_rps']}/s "
                         f"offered: {last['ok_rows_per_s']:,.0f} rows/s, p99 {last['p99_ms']} ms, "
                         f"{last['errors']} errors |")
    lines.append(f"| in-process predict | batch 256 | {limits['rows_per_s_batch256']:,.0f} | | |")
    lines.append(f"| in-process predict | batch 1 | {limits['rows_per_s_batch1']:,.0f} | | |")
    before, after = limits["load_average_1min_before_after"]
    lines.append(f"\n1-minute load average before / after the run: {before:.1f} / {after:.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per rate")
    parser.add_argument("--systems", default="ours,ours-b1,mlflow,noop")
    parser.add_argument("--replot", action="store_true",
                        help="redraw the plot and table from the last results, measure nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:  # the load generator shares the cores: give it the faster event loop when present
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    if args.replot:
        saved = json.loads((OUT / "serving-results.json").read_text())
        report([Point(**point) for point in saved["points"]], saved["limits"])
        return
    OUT.mkdir(exist_ok=True)
    registry = OUT / f"registry-{int(time.time())}"
    registry.mkdir()
    model_uri = log_model(registry)
    env = model_env(f"sqlite:///{registry}/mlflow.db")
    limits = in_process_limit(model_uri, seconds=3)
    log.info("in-process limits: %s", limits)
    load_before = os.getloadavg()
    specs = server_specs(args.systems.split(","), model_uri, env)
    with running(specs, OUT) as ports:
        points = [point for kind in ("single", "json256", "binary256")
                  for point in measure_interleaved(ports, kind, args.duration)]
    limits["load_average_1min_before_after"] = [load_before[0], os.getloadavg()[0]]
    (OUT / "serving-results.json").write_text(json.dumps(
        {"limits": limits, "points": [p.__dict__ for p in points]}, indent=1))
    report(points, limits)


def report(points: list[Point], limits: dict) -> None:
    markdown = table(points, limits)
    (OUT / "serving-table.md").write_text(markdown + "\n")
    plot(points, limits)
    log.info("\n%s\nplot: %s", markdown, PLOT)


if __name__ == "__main__":
    main()
