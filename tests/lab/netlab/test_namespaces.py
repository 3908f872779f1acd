"""The emulated cluster itself: hosts, isolation, link shaping, crash clean-up, the shim."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lab.netlab import Cluster, apply_profile, cluster_status
from lab.netlab.launchers import launch_env
from lab.netlab.namespaces import SHIM
from models.project import PROJECT_ROOT

TRANSFER = "tests.lab.netlab.transfer"


def on(cluster: Cluster, host: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(cluster.command(host, list(argv)), capture_output=True, text=True,
                          timeout=60, cwd=PROJECT_ROOT)


def transfer_seconds(cluster: Cluster, sender: str, receiver: str, size: int,
                     port: int = 5301) -> float:
    """Seconds to push ``size`` bytes over TCP from one host to another."""
    server = subprocess.Popen(cluster.command(receiver, [sys.executable, "-m", TRANSFER,
                                                         "serve", str(port)]),
                              stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
    try:
        assert server.stdout.readline().strip() == "ready"
        sent = on(cluster, sender, sys.executable, "-m", TRANSFER, "send",
                  cluster.host(receiver).address, str(port), str(size))
        assert sent.returncode == 0, sent.stderr
        result = json.loads(sent.stdout)
        assert result["received"] == size
        return result["seconds"]
    finally:
        server.wait(timeout=30)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.netlab", *args],
                          capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
                          env=env)


def test_hosts_have_their_own_addresses_names_and_no_route_out(unshaped: Cluster) -> None:
    h1, h2 = unshaped.hosts
    assert (h1.address, h2.address) == ("198.18.0.1", "198.18.0.2")
    shown = on(unshaped, "h1", "ip", "-4", "-o", "addr", "show", "eth0")
    assert "inet 198.18.0.1/15" in shown.stdout
    assert on(unshaped, "h1", "getent", "hosts", "h2").stdout.split()[0] == h2.address
    outside = on(unshaped, "h1", "ip", "route", "get", "192.0.2.1")
    assert outside.returncode != 0 and "unreachable" in outside.stderr
    assert transfer_seconds(unshaped, "h1", "h2", 1 << 20) < 5
    status = cluster_status(unshaped.prefix)
    assert status["up"] and set(status["hosts"]) == {"h1", "h2"}
    assert all(link["link_up"] for link in status["hosts"].values())


def test_a_profile_limits_both_directions_of_every_link(unshaped: Cluster) -> None:
    size = 4 << 20
    fast = transfer_seconds(unshaped, "h1", "h2", size)
    applied = apply_profile(unshaped, "100mbit")
    assert applied["rate_bps"] == 10**8 and isinstance(applied["netem"], bool)
    for host in unshaped.hosts:
        for namespace, device in ((host.namespace, "eth0"),
                                  (unshaped.bridge_namespace, f"veth-{host.name}")):
            qdisc = subprocess.run(["tc", "-n", namespace, "qdisc", "show", "dev", device],
                                   capture_output=True, text=True).stdout
            assert "tbf" in qdisc and "rate 100Mbit" in qdisc, (namespace, device, qdisc)
    wire_s = size * 8 / 10**8  # no transfer can beat the configured rate
    forward = transfer_seconds(unshaped, "h1", "h2", size)
    backward = transfer_seconds(unshaped, "h2", "h1", size)
    assert forward > 0.9 * wire_s and backward > 0.9 * wire_s
    assert forward < 2 * wire_s  # and it is the shaper, not something slower, that limits it
    assert fast < wire_s / 3


def test_shim_runs_a_command_on_a_host_by_name_or_address_with_the_environment(
        unshaped: Cluster) -> None:
    env = {**launch_env(unshaped), "NETLAB_PROBE": "kept"}
    # As horovodrun calls ssh: options before and after the host, one quoted command.
    by_name = subprocess.run([str(SHIM), "-o", "StrictHostKeyChecking=no", "h2",
                              "-o", "ConnectTimeout=10", "echo $NETLAB_PROBE; pwd; "
                              "ip -4 -o addr show eth0"], capture_output=True, text=True,
                             env=env, cwd=PROJECT_ROOT, timeout=30)
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout.splitlines()[:2] == ["kept", str(PROJECT_ROOT)]
    assert "198.18.0.2/15" in by_name.stdout
    # As mpirun calls its rsh agent: the host, then the command's words.
    by_address = subprocess.run([str(SHIM), "198.18.0.1", "ip", "-4", "-o", "addr", "show",
                                 "eth0"], capture_output=True, text=True, env=env, timeout=30)
    assert "198.18.0.1/15" in by_address.stdout
    unknown = subprocess.run([str(SHIM), "h9", "true"], capture_output=True, text=True,
                             env=env, timeout=30)
    assert unknown.returncode == 255 and "no host h9" in unknown.stderr
    # horovodrun finds the shim as ssh on the launch PATH.
    assert subprocess.run(["which", "ssh"], capture_output=True, text=True,
                          env=env).stdout.strip() == str(unshaped.run_dir / "bin" / "ssh")


def test_up_removes_what_a_crashed_run_left_and_down_removes_everything() -> None:
    prefix = "mlpcrash"
    try:
        assert cli("--prefix", prefix, "up", "--hosts", "3").returncode == 0
        # A crash leaves namespaces behind; the next `up` starts from a clean slate.
        second = cli("--prefix", prefix, "up", "--hosts", "2", "--profile", "1gbit")
        assert second.returncode == 0, second.stderr
        assert "removed" in second.stderr and f"{prefix}-h3" in second.stderr
        shaped = json.loads(second.stdout.split("\n", 1)[0])
        assert shaped["profile"] == "1gbit"
        if not shaped["netem"]:
            assert "sch_netem is not available" in second.stderr
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True,
                                    text=True).stdout
        assert sorted(line.split()[0] for line in namespaces.splitlines()
                      if line.startswith(f"{prefix}-")) == [f"{prefix}-br", f"{prefix}-h1",
                                                            f"{prefix}-h2"]
        status = json.loads(cli("--prefix", prefix, "status").stdout)
        assert "rate 1Gbit" in status["hosts"]["h2"]["qdisc"][0]
    finally:
        down = cli("--prefix", prefix, "down")
    assert down.returncode == 0
    assert json.loads(cli("--prefix", prefix, "status").stdout) == {
        "prefix": prefix, "up": False, "leftover_namespaces": []}
    assert not any(name.startswith(f"{prefix}-") for name in os.listdir("/etc/netns"))


@pytest.mark.parametrize("how", ["no iproute2", "no privileges"])
def test_refuses_without_tools_or_privileges_and_says_why(how: str) -> None:
    if how == "no iproute2":
        result = cli("up", "--hosts", "2", env={**os.environ, "PATH": "/nonexistent"})
        expected = "needs ip and tc"
    else:
        # Root without any capability: the same user (so the checkout stays readable,
        # wherever CI cloned it), no CAP_NET_ADMIN.
        no_capabilities = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]
        result = subprocess.run([*no_capabilities, sys.executable, "-m", "lab.netlab", "up",
                                 "--hosts", "2"], capture_output=True, text=True, timeout=120,
                                cwd=PROJECT_ROOT)
        expected = "CAP_NET_ADMIN"
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
