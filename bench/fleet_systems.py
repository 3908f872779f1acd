"""The systems bench/serving_fleet.py measures, and what it reads from their replicas.

- One fleet of N replicas (serving/fleet's `Fleet`, HAProxy in front with the first
  HAProxy policy), one replica handicapped; then one more HAProxy per other policy, in
  front of the same replica processes, so every policy balances the very same replicas
  (same model copies, same handicap, same background load).
- `reuseport`: `python -m serving --replicas N --balance reuseport`, N replica processes
  each listening on the public port with SO_REUSEPORT, no balancer; one of them is moved
  into the handicap's cgroup (`handicap.join`) after it has started.
- Each replica's own counters from its /metrics: 200s answered, model calls and rows
  (the mean batch size). Behind HAProxy each replica has its own port; the uvicorn
  workers share one, so their /metrics are sampled over fresh connections until every
  worker has answered, each known by its process start and CPU times.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench.servers import ServerSpec, running
from lab.handicap import cpu_quota_prefix, join, remove_group
from pipelines.services.processes import free_port
from serving.fleet import Fleet
from serving.fleet.balancer import Balancer
from serving.fleet.haproxy_config import Server, render_config
from serving.settings import ServingSettings

log = logging.getLogger(__name__)

INFERENCE_ENDPOINTS = ("invocations", "kserve_infer")
# One cgroup per system, so the idle system's slow replica does not eat the other's quota.
CGROUPS = {"haproxy": "mlpipe-bench-slow-haproxy", "reuseport": "mlpipe-bench-slow-reuseport"}
# Connections at once that ask the uvicorn workers for /metrics (see `worker_counters`).
SAMPLE_THREADS = 8
READY_TIMEOUT_S = 300


@dataclass(frozen=True)
class Counters:
    """A replica's cumulative counters; subtract two readings for one run."""

    ok: float
    batches: float
    rows: float

    def __sub__(self, other: Counters) -> Counters:
        return Counters(self.ok - other.ok, self.batches - other.batches,
                        self.rows - other.rows)


@dataclass(frozen=True)
class Handicap:
    """One replica limited to `cpus` CPUs of time by a cgroup CPU quota (CFS, 100 ms
    period: a throttled replica stalls until the next period, as a container with a
    CPU limit does). The quota is set once the replica has loaded its model: loading
    at a quarter of a core would take minutes and measure nothing."""

    replica: str
    cpus: float


@dataclass(frozen=True)
class Identity:
    """What a /metrics answer says of the process that gave it."""

    start_time: float
    cpu_s: float


def parse_metrics(text: str) -> tuple[Identity, Counters]:
    """(the answering process, its counters) from one /metrics answer."""
    ok = batches = rows = start = cpu = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "mlpipe_serving_requests_total" and sample.labels["code"] == "200"
                    and sample.labels["endpoint"] in INFERENCE_ENDPOINTS):
                ok += sample.value
            elif sample.name == "mlpipe_serving_batch_rows_count":
                batches = sample.value
            elif sample.name == "mlpipe_serving_batch_rows_sum":
                rows = sample.value
            elif sample.name == "process_start_time_seconds":
                start = sample.value
            elif sample.name == "process_cpu_seconds_total":
                cpu = sample.value
    return Identity(start, cpu), Counters(ok, batches, rows)


def read_metrics(port: int) -> tuple[Identity, Counters]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return parse_metrics(response.read().decode())


def process_identity(pid: int) -> Identity:
    """A process's start time and CPU time, computed as prometheus_client's
    ProcessCollector computes them for /metrics."""
    ticks = os.sysconf("SC_CLK_TCK")
    stat = Path(f"/proc/{pid}/stat").read_bytes().split(b")")[-1].split()
    boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime"))
    return Identity(float(stat[19]) / ticks + boot, (float(stat[11]) + float(stat[12])) / ticks)


class HAProxyFleet:
    """The fleet plus one extra HAProxy per further policy, on the same replicas."""

    def __init__(self, fleet: Fleet, ports: dict[str, int]) -> None:
        self.fleet = fleet
        self.ports = ports

    def counters(self) -> dict[str, Counters]:
        return {name: read_metrics(replica.port)[1]
                for name, replica in self.fleet.replicas.items()}


@contextlib.contextmanager
def haproxy_fleet(model_uri: str, settings: ServingSettings, policies: list[str],
                  handicap: Handicap, workdir: Path) -> Iterator[HAProxyFleet]:
    """Start the fleet (HAProxy with `policies[0]`), then an HAProxy for each other policy."""
    group = CGROUPS["haproxy"]

    def prefix(name: str) -> list[str]:  # the group starts unlimited: all the cores
        return cpu_quota_prefix(group, os.cpu_count() or 1) if name == handicap.replica else []

    fleet = Fleet(model_uri, settings.model_copy(update={"balance": policies[0], "port": 0}),
                  command_prefix=prefix)
    balancers: list[Balancer] = []
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        fleet.start()
        cpu_quota_prefix(group, handicap.cpus)  # sets the quota of the existing group
        ports = {policies[0]: fleet.port}
        servers = [Server(name, "127.0.0.1", replica.port)
                   for name, replica in fleet.replicas.items()]
        for policy in policies[1:]:
            ports[policy] = free_port()
            socket_path = workdir / f"haproxy-{policy}.sock"
            config = render_config(settings.model_copy(update={"balance": policy}), servers,
                                   socket_path, port=ports[policy])
            balancer = Balancer(config, workdir, socket_path, name=f"haproxy-{policy}")
            balancers.append(balancer)
            balancer.start()
            balancer.wait_until_up([server.name for server in servers], 60)
        yield HAProxyFleet(fleet, ports)
    finally:
        for balancer in balancers:
            balancer.soft_stop(5)
        fleet.stop()
        _remove_group(group)


class WorkerFleet:
    """uvicorn workers sharing one port (`balance: reuseport`)."""

    def __init__(self, port: int, pids: list[int], slow_pid: int) -> None:
        self.port = port
        self.names = {pid: f"w{index}" for index, pid in enumerate(sorted(pids), 1)}
        self.names[slow_pid] = "slow"

    def counters(self) -> dict[str, Counters]:
        """Counters by worker: `slow` for the handicapped one, `w1`, `w2`... for the rest."""
        return {self.names[pid]: counters
                for pid, counters in worker_counters(self.port, list(self.names)).items()}


def worker_counters(port: int, pids: list[int], timeout_s: float = 30) -> dict[int, Counters]:
    """Each worker's counters, by pid. Every connection is accepted by whichever worker
    takes it first, so ask over fresh connections, several at once, until every worker
    has answered (one still loading answers none)."""
    seen: dict[int, Counters] = {}
    deadline = time.monotonic() + timeout_s
    with ThreadPoolExecutor(SAMPLE_THREADS) as pool:
        while time.monotonic() < deadline:
            answers = list(pool.map(lambda _: read_metrics(port), range(SAMPLE_THREADS)))
            processes = {pid: process_identity(pid) for pid in pids}
            for identity, counters in answers:
                pid = _match(identity, processes)
                if pid is not None:
                    seen[pid] = counters
            if len(seen) == len(pids):
                return seen
    raise RuntimeError(f"only {len(seen)} of {len(pids)} workers answered /metrics "
                       f"within {timeout_s:.0f} s")


def _match(identity: Identity, processes: dict[int, Identity]) -> int | None:
    """The worker that gave an answer: the start time has only 10 ms resolution and
    workers start together, so among those started then, the one whose CPU time (read
    just after) is within 50 ms of the answer's, if exactly one is."""
    candidates = [pid for pid, process in processes.items()
                  if abs(process.start_time - identity.start_time) < 0.015
                  and -0.005 <= process.cpu_s - identity.cpu_s < 0.05]
    return candidates[0] if len(candidates) == 1 else None


@contextlib.contextmanager
def worker_fleet(model_uri: str, replicas: int, handicap: Handicap, env: dict[str, str],
                 log_dir: Path) -> Iterator[WorkerFleet]:
    """`--balance reuseport` with one worker (the last started) in the handicap's cgroup."""
    spec = ServerSpec("ours", model_uri, ("--replicas", str(replicas), "--balance",
                                          "reuseport"), env)
    try:
        with running({"reuseport": spec}, log_dir) as ports:
            port = ports["reuseport"]
            workers = _worker_pids(port)
            worker_counters(port, workers, READY_TIMEOUT_S)  # every worker has loaded
            slow = max(workers)
            cpu_quota_prefix(CGROUPS["reuseport"], handicap.cpus)  # creates the group
            join(CGROUPS["reuseport"], slow)
            log.info("reuseport workers %s; %d is held to %.2f CPUs", workers, slow,
                     handicap.cpus)
            yield WorkerFleet(port, workers, slow)
    finally:
        _remove_group(CGROUPS["reuseport"])


def _worker_pids(port: int) -> list[int]:
    """The replica processes (`python -m serving` children) of our server on `port`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            parent = int((entry / "stat").read_bytes().split(b")")[-1].split()[1])
        except (OSError, ValueError):
            continue
        if b"serving" in command.split(b"\0") and _serves_on(parent, port):
            pids.append(int(entry.name))
    return pids


def _serves_on(pid: int, port: int) -> bool:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serving" in words and b"--port" in words and str(port).encode() in words


def _remove_group(group: str) -> None:
    with contextlib.suppress(OSError):  # a process of it still exiting: leave it
        remove_group(group)
