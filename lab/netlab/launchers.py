"""horovodrun and mpirun across the emulated hosts, started from the first host.

Launchers run inside ``hosts[0]``'s namespace, as on a cluster's head node: the
rendezvous server (Gloo) and mpirun's out-of-band listener must be reachable from the
other hosts, which see nothing outside the bridge. The other hosts are reached through
the shim (``scripts/netns-exec``): horovodrun runs ``ssh`` from PATH, so the cluster's
run folder puts the shim there under that name; mpirun is told with ``plm_rsh_agent``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import replace

from lab.netlab.namespaces import SHIM, Cluster
from models.project import PROJECT_ROOT
from models.training.launch import LaunchSettings, gloo_launcher
from models.training.mpi import MpiSettings, mpi_launcher

# What mpirun refuses without when run as root (CI's containers run as root).
MPI_AS_ROOT = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def launch_env(cluster: Cluster, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The launcher's environment: the shim as ``ssh`` first on PATH, the cluster named,
    and the repository first on PYTHONPATH.

    The ranks run lab modules (``python -m lab.netlab.allreduce``), and ``lab`` is not
    installed: the shim and both launchers pass this environment on to every rank, so
    they import it whatever folder the launch starts in.
    """
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{cluster.run_dir / 'bin'}:{env.get('PATH', os.defpath)}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env["MLPIPE_NETLAB_PREFIX"] = cluster.prefix
    if os.geteuid() == 0:
        env |= MPI_AS_ROOT
    return env


def cluster_launch_settings(cluster: Cluster, settings: LaunchSettings,
                            per_host: int = 1) -> LaunchSettings:
    """``settings`` with one rank per slot on every host, talking over the hosts' link."""
    return replace(settings, num_proc=per_host * len(cluster.hosts),
                   network_interface=cluster.ifname)


def mpi_settings(cluster: Cluster, per_host: int = 1,
                 python: str = sys.executable) -> MpiSettings:
    """``launcher: mpi`` with ``transport: tcp`` over the hosts, through the shim."""
    return MpiSettings(hosts=tuple(cluster.slots(per_host)), transport="tcp", ib_hca="",
                       gid_index=0, socket_ifname=cluster.ifname, gpudirect_level="",
                       ucx_net_devices="", python=python, env={}, rsh_agent=str(SHIM),
                       btl="self,tcp")


def gloo_on_cluster(cluster: Cluster, settings: LaunchSettings, program: list[str],
                    per_host: int = 1) -> list[str]:
    """``horovodrun --gloo -H h1:n,h2:n,...`` running ``program``, started on the first host."""
    settings = cluster_launch_settings(cluster, settings, per_host)
    return cluster.command(cluster.hosts[0], [*gloo_launcher(settings, cluster.slots(per_host)),
                                              *program])


def mpi_on_cluster(cluster: Cluster, settings: LaunchSettings, program: list[str],
                   per_host: int = 1) -> list[str]:
    """``mpirun`` over every host's slots running ``program``, started on the first host."""
    return cluster.command(cluster.hosts[0], [
        *mpi_launcher(mpi_settings(cluster, per_host), cluster_launch_settings(
            cluster, settings, per_host)), *program])
