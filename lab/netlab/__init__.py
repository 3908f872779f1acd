"""An emulated multi-host cluster on one machine: network namespaces joined by a bridge.

Each host is a Linux network namespace with its own address in 198.18.0.0/15 (the
benchmarking range, never routed), linked by a veth pair to a bridge that lives in a
namespace of its own; no host has a route out. ``tc`` shapes each link (profiles), and
the ssh stand-in ``scripts/netns-exec`` lets horovodrun, mpirun and Spark reach the
hosts as if they were machines. Used by the tests and by the network benchmark.
"""

from lab.netlab.namespaces import Cluster, Host, cluster_down, cluster_status, cluster_up
from lab.netlab.profiles import PROFILES, apply_profile, netem_available

__all__ = ["PROFILES", "Cluster", "Host", "apply_profile", "cluster_down", "cluster_status",
           "cluster_up", "netem_available"]
