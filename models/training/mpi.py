"""The ``mpirun`` command for GPU clusters: NCCL collectives over InfiniBand or RoCE.

Built as data (a command list) so ``--dry-run`` can print exactly what would run, and
so the command documented in docs/horovod-clusters.md is tested.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from models.storage import is_remote
from models.tracking_identity import VARIABLES as TRACKING_VARIABLES
from models.training.launch import LaunchSettings, horovod_env, worker_command

# Exported from the launching shell as they are: where the virtualenv and CUDA live.
PASS_THROUGH = ("PATH", "LD_LIBRARY_PATH")
# The object store's credentials, exported by name to ranks that read the task from the
# store, so that their values appear on no command line and in no file.
STORE_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class MpiSettings(BaseModel):
    """Hosts as ``host:slots`` and the RDMA fabric's names (NCCL over InfiniBand or RoCE).

    It is the config's ``horovod.mpi`` section itself, validated from YAML, so the keys
    the config accepts and the values the launcher reads are declared once.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    hosts: tuple[str, ...]
    transport: Literal["infiniband", "roce", "tcp"]
    ib_hca: str
    gid_index: int
    socket_ifname: str
    gpudirect_level: str
    ucx_net_devices: str
    python: str
    env: dict[str, str]
    # mpirun's plm_rsh_agent (how it reaches the other hosts); "" keeps its ssh.
    rsh_agent: str
    # The byte transfer layers with ``transport: tcp``; "self,tcp" keeps ranks that share
    # a machine (the emulated cluster's namespaces) off shared memory.
    btl: str

    @property
    def slots(self) -> int:
        return sum(int(host.rpartition(":")[2] or 1) for host in self.hosts)


def mpi_environment(mpi: MpiSettings, launch: LaunchSettings) -> dict[str, str]:
    """What every rank needs: NCCL for GPU collectives, where to find the fabric, fusion."""
    env = {"HOROVOD_GPU_OPERATIONS": "NCCL", **horovod_env(launch),
           "NCCL_SOCKET_IFNAME": mpi.socket_ifname}
    if mpi.transport == "tcp":
        env["NCCL_IB_DISABLE"] = "1"
    else:
        env["NCCL_IB_DISABLE"] = "0"
        if mpi.ib_hca:
            env["NCCL_IB_HCA"] = mpi.ib_hca
        if mpi.transport == "roce":
            env["NCCL_IB_GID_INDEX"] = str(mpi.gid_index)
        if mpi.gpudirect_level:
            env["NCCL_NET_GDR_LEVEL"] = mpi.gpudirect_level
        if mpi.ucx_net_devices:
            env["UCX_NET_DEVICES"] = mpi.ucx_net_devices
    return {**env, **mpi.env}


def mpi_command(mpi: MpiSettings, launch: LaunchSettings, task_file: str,
                object_store: dict[str, Any] | None = None) -> list[str]:
    """``mpirun`` over all slots running the training worker on ``task_file``.

    A task on the object store also exports the store's credentials that are set here,
    and every task the tracking identity that is (rank 0 logs the run): by name, so their
    values stay off the command line.
    """
    names = [*(STORE_CREDENTIALS if is_remote(task_file) else ()), *TRACKING_VARIABLES]
    credentials = [arg for key in names if key in os.environ for arg in ("-x", key)]
    return [*mpi_launcher(mpi, launch), *credentials,
            *worker_command(mpi.python, task_file, object_store)]


def mpi_launcher(mpi: MpiSettings, launch: LaunchSettings) -> list[str]:
    """``mpirun`` over all slots up to the program: one rank per GPU, filled host by host.

    ``--bind-to none`` leaves CPU placement to TensorFlow; MPI's own traffic (Horovod's
    control plane) goes over UCX on RDMA fabrics and TCP on ``socket_ifname`` otherwise.
    """
    transport = (["--mca", "pml", "ucx", "--mca", "btl", "^openib,uct"]
                 if mpi.transport != "tcp" else
                 ["--mca", "pml", "ob1", "--mca", "btl", mpi.btl,
                  "--mca", "btl_tcp_if_include", mpi.socket_ifname])
    agent = ["--mca", "plm_rsh_agent", mpi.rsh_agent] if mpi.rsh_agent else []
    exports = [arg for key, value in mpi_environment(mpi, launch).items()
               for arg in ("-x", f"{key}={value}")]
    exports += [arg for key in PASS_THROUGH for arg in ("-x", key)]
    return ["mpirun", "-np", str(mpi.slots), "-H", ",".join(mpi.hosts),
            "--bind-to", "none", "--map-by", "slot", *agent,
            "--mca", "oob_tcp_if_include", mpi.socket_ifname, *transport, *exports]

