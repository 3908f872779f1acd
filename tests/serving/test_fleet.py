"""`--replicas N`: real replica processes behind a real HAProxy, healed, rolled and drained.

One fleet of 3 replicas (Python API) is shared by the balancing and healing tests; the roll
and the drain each start a `python -m serving --replicas 2 --watch` process.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest
import tritonclient.http as triton

from lab.handicap import cpu_quota_prefix, remove_group
from pipelines.services.processes import wait_for_http
from serving.fleet import Fleet
from serving.fleet.balancer import Balancer
from serving.fleet.haproxy_config import ALGORITHMS, Server, render_config
from serving.fleet.replicas import free_port
from serving.settings import ServingSettings, load_settings
from tests.serving.conftest import GRACEFUL_EXIT, ServerProcess, start_server
from tests.serving.models import flight_records, log_linear_model
from tests.serving.test_protocols import triton_inputs

pytestmark = pytest.mark.slow

FAST = dict(health_check_interval_ms=200, graceful_shutdown_s=10)
RECORD = flight_records(1, seed=5)
BODY = json.dumps({"dataframe_split": RECORD.to_dict(orient="split", index=False)})
HEADERS = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def fleet(linear_uri: str) -> Iterator[Fleet]:
    """3 replicas of the linear model; a 20 ms batch delay so that each holds requests.

    r3 runs behind a command prefix (pinned to core 0), as a benchmark's slow replica would.
    """
    settings = load_settings(replicas=3, balance="roundrobin", port=0, max_delay_ms=20,
                             log_level="warning", **FAST)
    pin_r3 = lambda name: ["taskset", "-c", "0"] if name == "r3" else []  # noqa: E731
    with Fleet(linear_uri, settings, command_prefix=pin_r3) as started:
        yield started


def served_by(url: str, requests: int) -> Counter:
    with httpx.Client(base_url=url, headers=HEADERS) as client:
        responses = [client.post("/invocations", content=BODY) for _ in range(requests)]
    assert [response.status_code for response in responses] == [200] * requests
    return Counter(response.headers["x-served-by"] for response in responses)


@pytest.mark.parametrize("policy", sorted(ALGORITHMS))
def test_each_policy_renders_a_config_haproxy_accepts(policy: str, tmp_path: Path) -> None:
    settings = load_settings(replicas=2, balance=policy, replica_max_connections=7)
    servers = [Server("r1", "127.0.0.1", 9001), Server("r2", "127.0.0.1", 9002)]
    text = render_config(settings, servers, tmp_path / "admin.sock")
    assert f"    balance {ALGORITHMS[policy]}\n" in text
    assert "option httpchk GET /v2/health/ready" in text
    assert "maxconn 7" in text and "inter 500ms" in text
    assert "timeout http-request 10s" in text and "timeout check 2000ms" in text
    assert "server r2 127.0.0.1:9002" in text
    assert ("    http-request set-priority-class int(1) if "
            "{ req.hdr(x-request-priority) -i low }\n") in text
    (tmp_path / "haproxy.cfg").write_text(text)
    check = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def balancer_without_replicas(settings: ServingSettings, folder: Path) -> tuple[Balancer, int]:
    """A started HAProxy in front of one replica address where nothing listens, and its port."""
    port = free_port()
    balancer = Balancer(render_config(settings, [Server("r1", "127.0.0.1", free_port())],
                                      folder / "s.sock", port=port),
                        folder, folder / "s.sock")
    balancer.start()
    return balancer, port


def test_balancer_refusals_carry_retry_after(tmp_path: Path) -> None:
    """With no replica up, HAProxy's own 503 tells clients when to come back, and its log
    (a file) records the refusal."""
    settings = load_settings(replicas=2, balance="leastconn", health_check_interval_ms=100)
    balancer, port = balancer_without_replicas(settings, tmp_path)
    try:
        deadline = time.monotonic() + 10
        while balancer.admin.stats()["r1"]["status"] != "DOWN" and time.monotonic() < deadline:
            time.sleep(0.05)
        response = httpx.post(f"http://127.0.0.1:{port}/invocations", content=BODY)
        assert response.status_code == 503
        assert response.headers["retry-after"] == str(settings.retry_after_s)
    finally:
        assert balancer.soft_stop(timeout_s=5) == 0
    # HAProxy's log is a file of the work dir, each event once (no console copy).
    logged = balancer.log_path.read_text()
    assert balancer.log_path == tmp_path / "haproxy.log"
    assert logged.count("Server replicas/r1 is DOWN") == 1, logged
    assert logged.count(" 503 ") == 1 and '"POST /invocations HTTP/1.1"' in logged, logged


def test_a_client_that_sends_slowly_is_cut_off_at_the_balancer_with_408(
        tmp_path: Path) -> None:
    """Headers a byte at a time (slowloris): HAProxy answers 408 once the read timeout
    passes, and the request never reaches a replica (here there is none to reach)."""
    settings = load_settings(replicas=2, request_read_timeout_s=1)
    balancer, port = balancer_without_replicas(settings, tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            started = time.monotonic()
            for byte in b"POST /invocations HTTP/1.1\r\nHost: x\r\n":
                if select.select([slow], [], [], 0.1)[0]:  # answered: stop before a reset
                    break
                slow.sendall(bytes([byte]))
            reply = slow.recv(4096)
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert time.monotonic() - started < 5
    finally:
        assert balancer.soft_stop(timeout_s=5) == 0


def test_reuseport_has_no_balancer_config(tmp_path: Path) -> None:
    settings = load_settings(replicas=2, balance="reuseport")
    with pytest.raises(ValueError, match="without a balancer"):
        render_config(settings, [], tmp_path / "admin.sock")
    with pytest.raises(ValueError, match="replicas .* or workers"):
        load_settings(replicas=2, workers=2)


def test_fleet_answers_through_haproxy_with_tritonclient(fleet: Fleet, linear_uri: str) -> None:
    client = triton.InferenceServerClient(fleet.url.removeprefix("http://"))
    assert client.is_server_ready() and client.is_model_ready("flight-delay-linear")
    records = flight_records(50, seed=1)
    result = client.infer("flight-delay-linear", triton_inputs(records, binary=True))
    np.testing.assert_allclose(result.as_numpy("predictions"),
                               mlflow.pyfunc.load_model(linear_uri).predict(records), rtol=1e-6)
    assert len({replica.pid for replica in fleet.replicas.values()}) == 3
    assert os.sched_getaffinity(fleet.replicas["r3"].pid) == {0}
    assert os.sched_getaffinity(fleet.replicas["r1"].pid) == os.sched_getaffinity(0)


def test_cpu_quota_prefix_slows_the_process_it_starts() -> None:
    """The cgroup handicap: 0.3 s of CPU at a quota of 0.25 CPU takes over 1 s."""
    try:
        prefix = cpu_quota_prefix("mlpipe-test-quota", 0.25)
    except PermissionError as error:
        pytest.skip(str(error))
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    try:
        started = time.monotonic()
        subprocess.run([*prefix, sys.executable, "-c", spin], check=True)
        assert time.monotonic() - started > 0.8
    finally:
        remove_group("mlpipe-test-quota")


def test_round_robin_reaches_every_replica_equally(fleet: Fleet) -> None:
    before = {name: int(row["stot"]) for name, row in fleet.stats().items()}
    assert served_by(fleet.url, 30) == {"r1": 10, "r2": 10, "r3": 10}
    after = fleet.stats()
    assert all(int(after[name]["stot"]) - before[name] == 10 for name in fleet.replicas)


# The `algo` column of `show stat` on the backend's row, per policy. HAProxy 2.6 names
# no random algorithm there ("unknown"); later releases say "random".
REPORTED_ALGORITHM = {"roundrobin": {"roundrobin"}, "leastconn": {"leastconn"},
                      "random2": {"random", "unknown"}}


@pytest.mark.parametrize("policy", sorted(ALGORITHMS))
def test_each_policy_balances_the_same_replicas(fleet: Fleet, policy: str,
                                                tmp_path: Path) -> None:
    """A second HAProxy with the policy in front of the running replicas: HAProxy runs the
    policy asked for, and it reaches every replica."""
    settings = fleet.settings.model_copy(update={"balance": policy})
    servers = [Server(name, "127.0.0.1", replica.port)
               for name, replica in fleet.replicas.items()]
    port = free_port()
    balancer = Balancer(render_config(settings, servers, tmp_path / "s.sock", port=port),
                        tmp_path, tmp_path / "s.sock")
    balancer.start()
    try:
        balancer.wait_until_up(list(fleet.replicas), timeout_s=10)
        assert balancer.admin.stats()["BACKEND"]["algo"] in REPORTED_ALGORITHM[policy]
        shares = served_by(f"http://127.0.0.1:{port}", 60)
        assert set(shares) == set(fleet.replicas), shares
    finally:
        balancer.soft_stop(timeout_s=10)


class SteadyLoad:
    """Closed-loop clients, each on its own keep-alive connection, until `stop()`.

    Records, per answer: status (or the exception's name), x-served-by, x-model-version,
    and the prediction, so a test can check every answer against the version that ran.
    """

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.answers: list[tuple[object, str, str, float]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, headers=HEADERS, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/invocations", content=BODY)
                except httpx.HTTPError as error:
                    self.answers.append((type(error).__name__, "", "", float("nan")))
                    continue
                prediction = response.json()["predictions"][0] \
                    if response.status_code == 200 else float("nan")
                self.answers.append((response.status_code, response.headers.get("x-served-by", ""),
                                     response.headers.get("x-model-version", ""), prediction))

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def statuses(self) -> Counter:
        return Counter(answer[0] for answer in self.answers)


def test_killed_replica_is_taken_out_and_restarted_without_a_failed_request(
        fleet: Fleet) -> None:
    """SIGKILL under load: what it held is replayed elsewhere (small bodies: the documented
    bound of lost requests is 0), and the slot comes back with a new process.

    HAProxy counts the attempts that failed on the dead replica: at most what it may hold.
    """
    victim = fleet.replicas["r2"]
    with SteadyLoad(fleet.url, clients=6) as load:
        time.sleep(1.5)
        os.kill(victim.pid, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while not fleet.restarts and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
    (restart,) = fleet.restarts
    assert restart.old_pid == victim.pid and restart.exit_code == -signal.SIGKILL
    assert restart.new_pid == fleet.replicas["r2"].pid != victim.pid
    assert load.statuses() == {200: len(load.answers)}, load.statuses()
    assert restart.failed_attempts <= fleet.settings.replica_max_connections
    assert len(load.answers) > 100
    assert fleet.stats()["r2"]["status"] == "UP"
    assert served_by(fleet.url, 6)["r2"] == 2


def test_a_killed_balancer_is_started_again_in_front_of_the_same_replicas(
        fleet: Fleet) -> None:
    dead = fleet.balancer.process.pid
    replicas = {name: replica.pid for name, replica in fleet.replicas.items()}
    os.kill(dead, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while fleet.balancer_restarts == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fleet.balancer_restarts == 1 and not fleet.failed.is_set()
    assert fleet.balancer.process.pid != dead
    assert {name: replica.pid for name, replica in fleet.replicas.items()} == replicas
    assert served_by(fleet.url, 6) == {"r1": 2, "r2": 2, "r3": 2}


def listening_inodes(port: int) -> set[int]:
    """The inodes of the IPv4 TCP sockets listening on `port` (/proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process `pid` holds open."""
    targets = (os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir())
    return {int(target[8:-1]) for target in targets if target.startswith("socket:[")}


def supervised(pid: int) -> set[int]:
    """The child processes of `pid` (of any of its threads: the monitor restarts replicas)."""
    return {int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()}


def invocations(replica_port: int) -> int:
    """/invocations answered 200 by the replica on `replica_port` (its own /metrics)."""
    text = httpx.get(f"http://127.0.0.1:{replica_port}/metrics").text
    return sum(int(float(line.split()[-1])) for line in text.splitlines()
               if line.startswith("mlpipe_serving_requests_total")
               and "invocations" in line and 'code="200"' in line)


def test_reuseport_replicas_each_listen_on_the_public_port(linear_uri: str,
                                                           tmp_path: Path) -> None:
    """The baseline without a balancer: each replica binds the public port itself with
    SO_REUSEPORT (without it Linux refuses a second listening socket on one address), and
    the kernel's reuseport hash spreads new connections among them."""
    server = start_server(linear_uri, tmp_path, "--replicas", "2", "--balance", "reuseport",
                          "--graceful-shutdown-s", "5")
    try:
        pid = server.process.pid
        replicas = [int(child) for child in
                    Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        assert len(replicas) == 2, replicas
        listening = listening_inodes(server.port)
        owned = [socket_inodes(replica) & listening for replica in replicas]
        assert [len(inodes) for inodes in owned] == [1, 1] and owned[0] != owned[1], owned
        assert listening == owned[0] | owned[1]  # the supervisor itself listens on none
        ports = []  # each replica's own port, where the supervisor checks its readiness
        for replica in replicas:
            words = Path(f"/proc/{replica}/cmdline").read_text().split("\0")
            ports.append(int(words[words.index("--port") + 1]))
        for port in ports:  # the public port answered ready once one replica was
            wait_for_http(f"http://127.0.0.1:{port}/v2/health/ready", server.process, 120)
        before = [invocations(port) for port in ports]
        for _ in range(40):  # a new connection each
            response = httpx.post(f"{server.url}/invocations", content=BODY, headers=HEADERS)
            assert response.status_code == 200 and "x-served-by" not in response.headers
        shares = [invocations(port) - count for port, count in zip(ports, before, strict=True)]
        assert sum(shares) == 40 and min(shares) > 0, shares
        # Supervised: a replica that dies is restarted and binds the port again.
        os.kill(replicas[0], signal.SIGKILL)
        deadline = time.monotonic() + 120
        while len(listening_inodes(server.port)) < 2 or replicas[0] in supervised(pid):
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.2)
        assert len(supervised(pid)) == 2
    finally:
        assert server.stop() in GRACEFUL_EXIT


def test_uvicorn_workers_share_one_port(linear_uri: str, tmp_path: Path) -> None:
    """`workers: N`, uvicorn's own processes on its one listening socket, still serves."""
    server = start_server(linear_uri, tmp_path, "--workers", "2", "--graceful-shutdown-s", "5")
    try:
        pid = server.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        workers = [child for child in children
                   if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text()]
        assert len(workers) == 2, children
        assert len(listening_inodes(server.port)) == 1
        # Ready means one worker is; each new connection may reach either (503 while loading).
        deadline, answered = time.monotonic() + 120, []
        while answered[-8:] != [200] * 8 and time.monotonic() < deadline:
            response = httpx.post(f"{server.url}/invocations", content=BODY, headers=HEADERS)
            answered.append(response.status_code)
        assert answered[-8:] == [200] * 8, answered
    finally:
        assert server.stop() in GRACEFUL_EXIT


@pytest.fixture
def watched_fleet(registry: Path, tmp_path: Path,
                  request: pytest.FixtureRequest) -> Iterator[tuple[str, ServerProcess]]:
    """`python -m serving --replicas 2 --watch` on a model of the test's own, whose version 1
    is the champion; each request waits ~200 ms in the batcher, so requests are always in
    flight when a replica drains or the fleet stops. Each test gets its own fleet (the
    drain ends it), so the file passes in any order."""
    name = f"fleet-{request.node.name.removeprefix('test_')[:40]}"
    mlflow.MlflowClient().set_registered_model_alias(
        name, "champion", log_linear_model(name, intercept=5.0))
    server = start_server(f"models:/{name}@champion", tmp_path, "--replicas", "2",
                          "--balance", "leastconn", "--watch",
                          "--watch-interval-s", "0.5", "--max-delay-ms", "200",
                          *(f"--{key.replace('_', '-')}={value}" for key, value in FAST.items()))
    yield name, server
    server.stop()


def test_watch_rolls_a_new_version_through_the_replicas_under_load(
        watched_fleet: tuple[str, ServerProcess]) -> None:
    name, server = watched_fleet
    version_2 = log_linear_model(name, intercept=105.0)  # predicts exactly 100 more
    with SteadyLoad(server.url, clients=4) as load:
        time.sleep(1)
        mlflow.MlflowClient().set_registered_model_alias(name, "champion", version_2)
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            recent = load.answers[-20:]
            if len(recent) == 20 and {answer[1:3] for answer in recent} == {("r1", "2"),
                                                                            ("r2", "2")}:
                break
            time.sleep(0.5)
    answers = load.answers
    assert load.statuses() == {200: len(answers)}, load.statuses()
    assert answers[0][2] == "1"
    base = answers[0][3]
    for _status, replica, version, prediction in answers:
        assert replica in ("r1", "r2")
        assert version in ("1", "2")
        # The version a response names is the version that computed it.
        assert prediction == pytest.approx(base + (100.0 if version == "2" else 0.0))
    assert {answer[1:3] for answer in answers[-20:]} == {("r1", "2"), ("r2", "2")}


def test_sigterm_drains_the_balancer_then_the_replicas(
        watched_fleet: tuple[str, ServerProcess]) -> None:
    """Requests in flight at SIGTERM all finish; then no new connection; exit code 0."""
    _, server = watched_fleet
    clients = [httpx.Client(base_url=server.url, headers=HEADERS, timeout=30)
               for _ in range(8)]
    for client in clients:  # connected beforehand, so each request is sent at once
        assert client.get("/v2/health/ready").status_code == 200
    results: list[int | str] = []

    def one(client: httpx.Client) -> None:
        try:
            results.append(client.post("/invocations", content=BODY).status_code)
        except httpx.HTTPError as error:
            results.append(type(error).__name__)

    threads = [threading.Thread(target=one, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    time.sleep(0.1)  # sent, and waiting in the replicas' batchers (max_delay_ms 200)
    server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert results == [200] * 8
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/v2/health/ready", timeout=2)
    assert server.process.wait(30) == 0
    log = server.log_tail()
    assert log.index("draining HAProxy") < log.index("HAProxy drained")
