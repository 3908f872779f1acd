"""Horovod across the emulated hosts: real mpirun and horovodrun --gloo, one rank per host.

Each rank is started through a small wrapper that records the address of the host it
runs on, so the tests see that the ranks really sat on different hosts.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from lab.netlab import Cluster
from lab.netlab.allreduce import allreduce_times
from lab.netlab.launchers import gloo_on_cluster, launch_env, mpi_on_cluster
from models.training.launch import collect_results, run_command, worker_command
from tests.models.training.synthetic import flights_like, with_validation, write_files
from tests.models.training.test_worker import launch_settings, make_task

pytestmark = pytest.mark.slow

log = logging.getLogger(__name__)


def recording_host(folder: Path, rank_variable: str, program: list[str]) -> list[str]:
    """``program`` preceded by writing this rank's eth0 address to ``folder/host.<rank>``."""
    record = (f'ip -4 -o addr show eth0 | awk \'{{print $4}}\' > "{folder}/host.${rank_variable}"'
              ' && exec "$@"')
    return ["sh", "-c", record, "rank", *program]


def train_across_hosts(cluster: Cluster, tmp_path: Path, launcher: str) -> list[dict]:
    table = tmp_path / "table"
    version = write_files(table, [with_validation(flights_like(96, seed=s), 16, seed=s + 10)
                                  for s in (1, 2)])
    task = make_task(table, version, tmp_path / "out", epochs=1)
    settings = launch_settings(2)
    rank_variable = "OMPI_COMM_WORLD_RANK" if launcher == "mpi" else "HOROVOD_RANK"
    program = recording_host(tmp_path, rank_variable, worker_command(sys.executable,
                                                                     task.write()))
    build = mpi_on_cluster if launcher == "mpi" else gloo_on_cluster
    run_command(build(cluster, settings, program), launch_env(cluster), settings.timeout_s,
                tmp_path / f"{launcher}.log")
    return collect_results(task, 2)


@pytest.mark.parametrize("launcher", ["mpi", "gloo"])
def test_one_epoch_on_two_hosts_ends_with_identical_weights(unshaped: Cluster, tmp_path: Path,
                                                            launcher: str) -> None:
    results = train_across_hosts(unshaped, tmp_path, launcher)

    assert [(r["rank"], r["size"], r["epochs_run"]) for r in results] == [(0, 2, 1), (1, 2, 1)]
    assert results[0]["weights_digest"] == results[1]["weights_digest"]
    hosts = [(tmp_path / f"host.{rank}").read_text().strip() for rank in (0, 1)]
    assert hosts == ["198.18.0.1/15", "198.18.0.2/15"]


def test_allreduce_probe_is_bound_by_the_link_rate(unshaped: Cluster) -> None:
    size = 8 << 20
    times = {launcher: allreduce_times(unshaped, launcher, [size], launch_settings(2),
                                       ["unlimited", "100mbit"], repeats=2)
             for launcher in ("mpi", "gloo")}
    for launcher, by_profile in times.items():
        log.info("8 MiB allreduce on 2 hosts over %s: %.3f s unshaped, %.3f s at 100 Mbit/s",
                 launcher, by_profile["unlimited"][size], by_profile["100mbit"][size])

    # With two ranks each sends at least the whole message one way: it cannot beat the wire.
    wire_s = size * 8 / 10**8
    for by_profile in times.values():
        assert by_profile["100mbit"][size] > 0.9 * wire_s
        assert by_profile["unlimited"][size] < wire_s / 4
