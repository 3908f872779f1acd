"""Build and run the open-loop load generator in Go (bench/openloop/), parse its report.

lab/loadtest/open_loop.py, in Python, tops out near 3,700 requests/s on this machine, so above
that it measures itself. The Go program sends the same kind of load (open loop, latency
from each request's due time, keep-alive connections opened as needed up to a cap) for
a fraction of the CPU, and adds bursty arrivals (a two-state Markov-modulated Poisson
process), request templates mixed by weight (e.g. two priority levels), a per-request
timeout, goodput within an SLO, and counts per `x-served-by` / `x-model-version`.

The binary is built with the Go toolchain into ~/.cache/mlpipe/bin/, named by a hash of
its sources, so it is rebuilt exactly when they change.

    python -m bench.openloop --self-check    # build, run 1 s against bench/noop_app.py
    python -m bench.openloop --ceiling 2000,4000,8000,12000   # against wrk, no-op endpoint
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from models.project import PROJECT_ROOT, cache_dir
from pipelines.services.processes import free_port, wait_for_http

log = logging.getLogger("bench.openloop")

SOURCE = Path(__file__).resolve().parent / "openloop"
BIN_DIR = cache_dir() / "bin"


@dataclass(frozen=True)
class Template:
    """One kind of request; each request picks a template at random by weight."""

    name: str
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    weight: float = 1.0
    method: str = "POST"


@dataclass(frozen=True)
class Arrivals:
    """The arrival process. `poisson`, or `mmpp`: a two-state Markov-modulated Poisson
    process that bursts at `burst_factor` times the mean rate for a `burst_fraction` of
    the time, in bursts of exponentially distributed length (mean `burst_mean_ms`), and
    is calmer in between so that the mean rate holds; `burst_fraction * burst_factor
    == 1` makes it an on/off source, silent between bursts."""

    process: str = "poisson"
    burst_factor: float = 0.0
    burst_fraction: float = 0.0
    burst_mean_ms: float = 0.0


POISSON = Arrivals()


@dataclass(frozen=True)
class Report:
    """The generator's report. Each group (`total`, one per template, one per
    `x-served-by` value) holds `requests`, `status` (counts by HTTP code or `timeout`,
    `connect_error`, `transport_error`), `ok`, `good` (200s within the SLO),
    `throughput_rps` (200s over the run until the last answer), `goodput_rps` (good
    over the window requests were due in) and p50/p99/p999/mean/max latency in ms of the
    200s, counted from each request's due time (None without a 200)."""

    sent: int
    offered_rps: float
    elapsed_s: float
    total: dict
    templates: dict[str, dict]
    served_by: dict[str, dict]
    model_version: dict[str, int]
    client_cpu_s: float
    client_lag_ms: dict[str, float]
    connections_opened: int
    connections_peak: int

    @classmethod
    def from_json(cls, raw: dict) -> Report:
        return cls(sent=raw["sent"], offered_rps=raw["offered_rps"],
                   elapsed_s=raw["elapsed_s"], total=raw["total"],
                   templates=raw["templates"], served_by=raw["served_by"],
                   model_version=raw["model_version"], client_cpu_s=raw["client_cpu_s"],
                   client_lag_ms=raw["client_lag_ms"] or {},
                   connections_opened=raw["connections_opened"],
                   connections_peak=raw["connections_peak"])

    def rejected_share(self, code: str = "503") -> float:
        """Share of all requests answered with `code`."""
        return self.total["status"].get(code, 0) / self.sent if self.sent else 0.0


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(SOURCE.glob("*")):
        if path.suffix == ".go" and not path.name.endswith("_test.go") or path.name == "go.mod":
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _go() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise FileNotFoundError("the Go toolchain (`go`) is needed to build bench/openloop")
    return go


def binary() -> Path:
    """The built generator, built now if its sources changed since the last build."""
    target = BIN_DIR / f"openloop-{_source_digest()}"
    if target.exists():
        return target
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
    log.info("building %s", target)
    subprocess.run([_go(), "build", "-trimpath", "-buildvcs=false", "-o", str(partial), "."],
                   cwd=SOURCE, env=env, check=True)
    partial.replace(target)  # atomic: a concurrent run sees the whole binary or none
    return target


def run(host: str, port: int, templates: list[Template], rate: float, duration_s: float, *,
        arrivals: Arrivals = POISSON, max_requests: int = 0, timeout_s: float = 10.0,
        max_connections: int = 512, slo_ms: float = 50.0, seed: int = 0) -> Report:
    """Offer `rate` requests/s for `duration_s` seconds (or `max_requests`, whichever
    ends first) and wait for the answers, each bounded by `timeout_s` from its due time."""
    executable = binary()
    with tempfile.TemporaryDirectory(prefix="openloop-") as folder:
        specs = []
        for index, template in enumerate(templates):
            body_file = Path(folder) / f"body-{index}"
            body_file.write_bytes(template.body)
            specs.append({"name": template.name, "method": template.method,
                          "path": template.path, "body_file": str(body_file),
                          "headers": template.headers, "weight": template.weight})
        spec = {"target": f"{host}:{port}", "rate": rate, "duration_s": duration_s,
                "max_requests": max_requests, "timeout_ms": timeout_s * 1e3,
                "max_connections": max_connections, "slo_ms": slo_ms, "seed": seed,
                "arrivals": asdict(arrivals), "templates": specs}
        completed = subprocess.run([str(executable), "-spec", "-"], input=json.dumps(spec),
                                   capture_output=True, text=True,
                                   timeout=duration_s + timeout_s + 60)
    if completed.returncode != 0:
        raise RuntimeError(f"openloop failed ({completed.returncode}): {completed.stderr}")
    return Report.from_json(json.loads(completed.stdout))


@contextlib.contextmanager
def noop_server() -> Iterator[int]:
    """The no-op endpoint (bench/noop_app.py) on a free port, for checks of the client."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.noop_app:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"], cwd=PROJECT_ROOT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", server, timeout_s=60)
        yield port
    finally:
        server.terminate()
        server.wait(30)


NOOP_BODY = json.dumps({"inputs": [[0.0] * 32]}).encode()
JSON = {"Content-Type": "application/json"}


def self_check(rate: float = 500.0, duration_s: float = 1.0) -> Report:
    """Run the built generator against the no-op endpoint with a 20/80 mix of two
    templates, and fail unless every request came back 200 in the right proportions."""
    with noop_server() as port:
        report = run("127.0.0.1", port, [
            Template("high", "/invocations", NOOP_BODY, {**JSON, "x-request-priority": "high"}, 1),
            Template("low", "/invocations", NOOP_BODY, {**JSON, "x-request-priority": "low"}, 4),
        ], rate, duration_s)
    low_share = report.templates["low"]["requests"] / max(report.sent, 1)
    if (report.total["ok"] != report.sent or abs(report.sent - rate * duration_s) > 0.2 * rate
            or abs(low_share - 0.8) > 0.1):
        raise AssertionError(f"self-check failed: {report}")
    return report


def ceiling(rates: list[float], duration_s: float) -> list[dict]:
    """The no-op endpoint driven by wrk (closed loop, 8 connections, as in the issue's
    reference figure) and then by this client at each open-loop rate: how far each
    client gets, and what this one costs in CPU."""
    from lab.loadtest.wrk import Request, run_wrk

    rows = []
    with noop_server() as port:
        run("127.0.0.1", port, [Template("warm-up", "/invocations", NOOP_BODY, JSON)], 200, 1)
        wrk = run_wrk(port, Request("/invocations", NOOP_BODY, JSON), 8, duration_s)
        rows.append({"client": "wrk, 8 connections (closed loop)", "ok_rps": round(wrk.ok_rps),
                     "p50_ms": wrk.p50_ms, "p99_ms": wrk.p99_ms})
        for rate in rates:
            report = run("127.0.0.1", port,
                         [Template("noop", "/invocations", NOOP_BODY, JSON)], rate, duration_s)
            total = report.total
            rows.append({"client": f"openloop at {rate:g}/s", "ok_rps": total["throughput_rps"],
                         "p50_ms": total["p50_ms"], "p99_ms": total["p99_ms"],
                         "client_cpu_us_per_request": round(
                             1e6 * report.client_cpu_s / max(report.sent, 1), 1)})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--self-check", action="store_true",
                        help="build, then run 1 s against bench/noop_app.py and check the report")
    parser.add_argument("--ceiling", metavar="RATES",
                        help="comma-separated rates: the no-op endpoint under wrk, then under "
                             "this client at each rate")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per --ceiling run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.self_check:
        report = self_check()
        print(json.dumps({"sent": report.sent, "total": report.total,
                          "client_cpu_s": report.client_cpu_s}, indent=1))
    elif args.ceiling:
        load_before = os.getloadavg()[0]
        rows = ceiling([float(rate) for rate in args.ceiling.split(",")], args.duration)
        for row in rows:
            print(json.dumps(row))
        print(f"1-minute load average before / after: {load_before:.1f} / "
              f"{os.getloadavg()[0]:.1f}")
    else:
        print(binary())


if __name__ == "__main__":
    main()
