"""The hosts: one network namespace each, veth-linked to a bridge in its own namespace.

Layout for prefix ``mlpnet`` and two hosts::

    mlpnet-h1: eth0 198.18.0.1/15 --veth-- veth-h1 \
                                                mlpnet-br: bridge br0
    mlpnet-h2: eth0 198.18.0.2/15 --veth-- veth-h2 /

Every host calls its link ``eth0``, so one interface name serves Gloo, MPI and Spark on
all hosts. ``/etc/netns/<namespace>/hosts`` (mounted over /etc/hosts by ``ip netns
exec``) names every host, and maps the machine's own hostname to the host's address so
programs that resolve it (the JVM) stay inside the cluster. The run folder holds the
hosts file the shim reads and the ``ssh`` link horovodrun finds on PATH.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from lab.netlab.system import NetlabError, in_namespace, require_privileges, run
from models.project import PROJECT_ROOT

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "mlpnet"
NETWORK = ipaddress.ip_network("198.18.0.0/15")
HOST_IFNAME = "eth0"
RUN_ROOT = Path("/run/mlpipe-netlab")
NETNS_ETC = Path("/etc/netns")
SHIM = PROJECT_ROOT / "scripts" / "netns-exec"


@dataclass(frozen=True)
class Host:
    name: str
    namespace: str
    address: str


@dataclass(frozen=True)
class Cluster:
    """A running emulated cluster; launchers run on ``hosts[0]``, as on a head node."""

    prefix: str
    hosts: tuple[Host, ...]

    @property
    def bridge_namespace(self) -> str:
        return f"{self.prefix}-br"

    @property
    def run_dir(self) -> Path:
        return RUN_ROOT / self.prefix

    @property
    def ifname(self) -> str:
        return HOST_IFNAME

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if name in (h.name, h.address))

    def command(self, host: Host | str, argv: list[str]) -> list[str]:
        """``argv`` run on ``host`` (a Host, its name or its address)."""
        target = host if isinstance(host, Host) else self.host(host)
        return in_namespace(target.namespace, argv)

    def slots(self, per_host: int = 1) -> list[str]:
        """``name:slots`` per host, as horovodrun's and mpirun's ``-H`` take them."""
        return [f"{h.name}:{per_host}" for h in self.hosts]


def cluster_up(hosts: int, prefix: str = DEFAULT_PREFIX) -> Cluster:
    """Create the cluster, first removing whatever an earlier run with ``prefix`` left."""
    require_privileges()
    if not 1 <= hosts <= 250:
        raise NetlabError(f"hosts must be between 1 and 250, not {hosts}")
    cluster_down(prefix)
    cluster = Cluster(prefix, tuple(
        Host(f"h{i}", f"{prefix}-h{i}", str(NETWORK.network_address + i))
        for i in range(1, hosts + 1)))
    try:
        _create(cluster)
    except BaseException:
        cluster_down(prefix)
        raise
    log.info("netlab: %d hosts up (%s)", hosts,
             ", ".join(f"{h.name}={h.address}" for h in cluster.hosts))
    return cluster


def _create(cluster: Cluster) -> None:
    bridge = cluster.bridge_namespace
    run(["ip", "netns", "add", bridge])
    run(["ip", "-n", bridge, "link", "add", "br0", "type", "bridge"])
    run(["ip", "-n", bridge, "link", "set", "br0", "up"])
    names = "".join(f"{h.address} {h.name}\n" for h in cluster.hosts)
    for host in cluster.hosts:
        peer = f"veth-{host.name}"
        run(["ip", "netns", "add", host.namespace])
        run(["ip", "-n", bridge, "link", "add", peer, "type", "veth",
             "peer", "name", HOST_IFNAME, "netns", host.namespace])
        run(["ip", "-n", bridge, "link", "set", peer, "master", "br0", "up"])
        run(["ip", "-n", host.namespace, "addr", "add",
             f"{host.address}/{NETWORK.prefixlen}", "dev", HOST_IFNAME])
        run(["ip", "-n", host.namespace, "link", "set", HOST_IFNAME, "up"])
        run(["ip", "-n", host.namespace, "link", "set", "lo", "up"])
        etc = NETNS_ETC / host.namespace
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{host.address} {socket.gethostname()}"
                                   f"\n{names}")
    bin_dir = cluster.run_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (cluster.run_dir / "hosts").write_text(names)
    (bin_dir / "ssh").symlink_to(SHIM)


def cluster_down(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Remove every namespace, /etc/netns entry and run folder of ``prefix``; idempotent.

    Processes still inside a namespace keep it alive until they exit, but it loses its
    name, so a new cluster with the same prefix starts clean.
    """
    require_privileges()
    removed = _namespaces(prefix)
    for namespace in removed:
        run(["ip", "netns", "del", namespace], check=False)
        shutil.rmtree(NETNS_ETC / namespace, ignore_errors=True)
    for leftover in NETNS_ETC.glob(f"{prefix}-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.rmtree(RUN_ROOT / prefix, ignore_errors=True)
    if removed:
        log.info("netlab: removed %s", ", ".join(removed))
    return removed


def find_cluster(prefix: str = DEFAULT_PREFIX) -> Cluster | None:
    """The cluster ``cluster_up`` left running with ``prefix``, or None."""
    hosts_file = RUN_ROOT / prefix / "hosts"
    if not hosts_file.exists():
        return None
    hosts = [line.split() for line in hosts_file.read_text().splitlines() if line.strip()]
    return Cluster(prefix, tuple(Host(name, f"{prefix}-{name}", address)
                                 for address, name in hosts))


def cluster_status(prefix: str = DEFAULT_PREFIX) -> dict[str, object]:
    """Hosts with their addresses and link qdiscs, or the leftovers of a broken cluster."""
    cluster = find_cluster(prefix)
    if cluster is None:
        return {"prefix": prefix, "up": False, "leftover_namespaces": _namespaces(prefix)}
    links = {}
    for host in cluster.hosts:
        egress = run(["ip", "-n", host.namespace, "-o", "link", "show", HOST_IFNAME],
                     check=False)
        qdisc = run(["tc", "-n", host.namespace, "qdisc", "show", "dev", HOST_IFNAME],
                    check=False)
        links[host.name] = {"address": host.address, "namespace": host.namespace,
                            "link_up": "state UP" in egress.stdout or "LOWER_UP" in egress.stdout,
                            "qdisc": qdisc.stdout.strip().splitlines()[:1]}
    return {"prefix": prefix, "up": True, "bridge_namespace": cluster.bridge_namespace,
            "hosts": links}


def _namespaces(prefix: str) -> list[str]:
    listed = run(["ip", "netns", "list"], check=False).stdout.splitlines()
    return sorted(name for line in listed if (name := line.split()[0]).startswith(f"{prefix}-"))
