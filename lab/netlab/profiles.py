"""Link profiles: a ``tbf`` rate on both directions of every host's link.

A host's link is shaped twice: at the egress of its own ``eth0`` (what it sends) and at
the egress of its bridge-side veth (what it receives), so a transfer between two hosts
meets the configured rate whichever way it flows. Latency and loss need ``sch_netem``,
which some kernels lack (these machines' among them): ``netem_available`` says whether
it is there, and where it is not, latency enters only through the cost model.
"""

from __future__ import annotations

import logging

from lab.netlab.namespaces import Cluster
from lab.netlab.system import run

log = logging.getLogger(__name__)

# Bits per second; None leaves the link unshaped (a veth pair runs at memory speed).
PROFILES: dict[str, int | None] = {"unlimited": None, "10gbit": 10**10, "1gbit": 10**9,
                                   "100mbit": 10**8}
# tbf's bucket must hold what arrives between two timer ticks (at HZ=250, 4 ms of the
# rate), or the shaper undershoots the rate; a GSO packet (64 KiB) is the floor.
TICK_S = 0.004
MIN_BURST_BYTES = 64 * 1024
# Queue that tbf allows before dropping, in time at the rate: bounded, as a switch's is.
QUEUE_LATENCY = "50ms"


def tbf_args(rate_bps: int) -> list[str]:
    """``tc`` arguments of the tbf qdisc for one direction of a link at ``rate_bps``."""
    burst = max(MIN_BURST_BYTES, int(rate_bps / 8 * TICK_S))
    return ["tbf", "rate", f"{rate_bps}bit", "burst", str(burst), "latency", QUEUE_LATENCY]


def apply_profile(cluster: Cluster, profile: str) -> dict[str, object]:
    """Shape every link of ``cluster`` to ``profile``; what was set, and whether netem is there."""
    if profile not in PROFILES:
        raise ValueError(f"unknown link profile {profile!r}; one of {', '.join(PROFILES)}")
    rate = PROFILES[profile]
    for host in cluster.hosts:
        for namespace, device in ((host.namespace, cluster.ifname),
                                  (cluster.bridge_namespace, f"veth-{host.name}")):
            # Deleting a root qdisc that was never set fails harmlessly: the default stays.
            run(["tc", "-n", namespace, "qdisc", "del", "dev", device, "root"], check=False)
            if rate is not None:
                run(["tc", "-n", namespace, "qdisc", "add", "dev", device, "root",
                     *tbf_args(rate)])
    netem = netem_available(cluster.bridge_namespace)
    if not netem:
        log.warning("netlab: sch_netem is not available in this kernel: no emulated latency "
                    "or loss; latency is covered by the cost model only")
    log.info("netlab: profile %s on %d links (both directions)", profile, len(cluster.hosts))
    return {"profile": profile, "rate_bps": rate, "netem": netem}


def netem_available(namespace: str) -> bool:
    """Whether ``tc ... netem`` works: tried on the loopback of ``namespace``, then removed.

    Use a namespace nothing talks over on loopback (the bridge's): the probe's qdisc
    lives on its ``lo`` for an instant.
    """
    added = run(["tc", "-n", namespace, "qdisc", "add", "dev", "lo", "root", "netem",
                 "delay", "1ms"], check=False)
    if added.returncode == 0:
        run(["tc", "-n", namespace, "qdisc", "del", "dev", "lo", "root"], check=False)
    return added.returncode == 0
