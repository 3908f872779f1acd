"""The MPI/NCCL launcher's command: what docs/horovod-clusters.md shows for two 4-GPU hosts."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from models.project import PROJECT_ROOT
from pipelines.training.horovod import launch_plan
from tests.conftest import make_config

TWO_HOSTS_ROCE = ("horovod.launcher=mpi", "horovod.mpi.hosts=[gpu-a:2,gpu-b:2]",
                  "horovod.mpi.transport=roce", "horovod.mpi.ib_hca=mlx5_0,mlx5_1",
                  "horovod.mpi.gid_index=3", "horovod.mpi.socket_ifname=ens1f0",
                  "horovod.mpi.gpudirect_level=PHB", "horovod.mpi.ucx_net_devices=mlx5_0:1",
                  "horovod.mpi.python=/opt/mlpipe/.venv/bin/python")

DOCUMENTED = (
    "mpirun -np 4 -H gpu-a:2,gpu-b:2 --bind-to none --map-by slot "
    "--mca oob_tcp_if_include ens1f0 --mca pml ucx --mca btl ^openib,uct "
    "-x HOROVOD_GPU_OPERATIONS=NCCL -x HOROVOD_FUSION_THRESHOLD=67108864 "
    "-x HOROVOD_CYCLE_TIME=1.0 -x NCCL_SOCKET_IFNAME=ens1f0 -x NCCL_IB_DISABLE=0 "
    "-x NCCL_IB_HCA=mlx5_0,mlx5_1 -x NCCL_IB_GID_INDEX=3 -x NCCL_NET_GDR_LEVEL=PHB "
    "-x UCX_NET_DEVICES=mlx5_0:1 -x PATH -x LD_LIBRARY_PATH "
    "/opt/mlpipe/.venv/bin/python -m models.training.worker /shared/train_deep/task.json")


def test_dry_run_command_for_two_hosts_with_two_gpus_each(tmp_path: Path) -> None:
    config = make_config(tmp_path, *TWO_HOSTS_ROCE)
    plan = launch_plan(config, "/shared/train_deep/task.json")
    assert plan == shlex.join(shlex.split(DOCUMENTED))


def test_the_documented_command_is_the_one_in_the_docs() -> None:
    docs = PROJECT_ROOT / "docs" / "horovod-clusters.md"
    flattened = " ".join(line.strip().rstrip("\\").strip() for line in docs.read_text()
                         .split("```")[1].splitlines()[1:])
    assert " ".join(flattened.split()) == DOCUMENTED


def test_tcp_clusters_turn_infiniband_off(tmp_path: Path) -> None:
    config = make_config(tmp_path, "horovod.launcher=mpi", "horovod.mpi.transport=tcp",
                         "horovod.mpi.hosts=[a:1,b:1]")
    plan = shlex.split(launch_plan(config, "task.json"))
    assert "NCCL_IB_DISABLE=1" in plan and "pml" in plan and "ob1" in plan
    assert not any(arg.startswith("NCCL_IB_HCA") for arg in plan)


def test_ranks_reach_a_task_on_the_object_store_and_the_tracking_server_with_credentials_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "mlpipe-pipeline")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "tracking-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    config = make_config(tmp_path, "data_root=s3a://lake/root", "horovod.launcher=mpi",
                         "horovod.mpi.hosts=[a:1,b:1]",
                         "object_store.endpoint=http://10.0.0.5:8333")
    plan = shlex.split(launch_plan(config, "s3a://lake/root/training/train_deep/task.json"))

    worker = plan.index("models.training.worker")
    assert plan[worker + 1:worker + 3] == ["s3a://lake/root/training/train_deep/task.json",
                                           "--object-store"]
    assert json.loads(plan[worker + 3])["endpoint"] == "http://10.0.0.5:8333"
    exported = [plan[i + 1] for i, arg in enumerate(plan[:worker]) if arg == "-x"]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_USERNAME",
            "MLFLOW_TRACKING_PASSWORD"} <= set(exported)
    assert "AWS_SESSION_TOKEN" not in exported  # unset here: nothing to pass on
    assert not any("very-secret" in arg or "tracking-secret" in arg for arg in plan)
