"""The allreduce probe: how long Horovod takes to sum ``n`` bytes across the hosts.

Driver side (``allreduce_times``) starts one rank per host with Gloo or MPI; the worker
side (``python -m lab.netlab.allreduce``) sweeps the link profiles, rank 0
setting each on the cluster between sweeps (starting the ranks costs far more than a
sweep), times each size after a warm-up, checks the sums, and rank 0 writes the
medians. The network benchmark fits its alpha-beta model to these times; the tests
check that a shaped link bounds them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from lab.netlab.launchers import gloo_on_cluster, launch_env, mpi_on_cluster
from lab.netlab.namespaces import Cluster, find_cluster
from lab.netlab.profiles import apply_profile
from models.training.launch import LaunchSettings, TrainingFailed, run_command

WORKER_MODULE = "lab.netlab.allreduce"
Launcher = Literal["gloo", "mpi"]


def allreduce_times(cluster: Cluster, launcher: Launcher, sizes: Sequence[int],
                    settings: LaunchSettings, profiles: Sequence[str],
                    repeats: int = 5) -> dict[str, dict[int, float]]:
    """Median seconds of a float32 allreduce per profile and size in bytes, one rank per host.

    The cluster is left with the last profile set.
    """
    with tempfile.TemporaryDirectory(prefix="netlab-allreduce-") as folder:
        out = Path(folder) / "times.json"
        program = [sys.executable, "-m", WORKER_MODULE, "--out", str(out),
                   "--prefix", cluster.prefix, "--repeats", str(repeats),
                   "--profiles", *profiles, "--sizes", *map(str, sizes)]
        build = gloo_on_cluster if launcher == "gloo" else mpi_on_cluster
        run_command(build(cluster, settings, program), launch_env(cluster), settings.timeout_s,
                    Path(folder) / f"{launcher}.log")
        if not out.exists():
            raise TrainingFailed(f"the {launcher} allreduce probe wrote no result")
        result = json.loads(out.read_text())
    if result["controller"] != launcher:  # a Horovod without MPI would fall back to Gloo
        raise TrainingFailed(f"the {launcher} probe ran Horovod's {result['controller']} "
                             "controller; is Horovod built with it (horovodrun --check-build)?")
    return {profile: {int(size): seconds for size, seconds in times.items()}
            for profile, times in result["seconds"].items()}


def measure(prefix: str, profiles: Sequence[str], sizes: Sequence[int],
            repeats: int) -> dict[str, dict[int, float]]:
    """On every rank: per profile, the median time per size, after checking the sum."""
    import horovod.tensorflow as hvd
    import tensorflow as tf

    hvd.init()
    expected = hvd.size() * (hvd.size() + 1) / 2
    results: dict[str, dict[int, float]] = {}
    for profile in profiles:
        if hvd.rank() == 0:
            apply_profile(find_cluster(prefix), profile)
        hvd.allreduce(tf.constant(0.0), op=hvd.Sum, name="netlab.barrier")  # profile is set
        results[profile] = {size: _time_allreduce(size, repeats, expected) for size in sizes}
    return results


def _time_allreduce(size: int, repeats: int, expected: float) -> float:
    import horovod.tensorflow as hvd
    import tensorflow as tf

    tensor = tf.fill([max(1, size // 4)], float(hvd.rank() + 1))
    name = f"netlab.allreduce.{size}"
    hvd.allreduce(tensor, op=hvd.Sum, name=name)  # warm-up: negotiation, buffers
    samples = []
    for _ in range(repeats):
        hvd.allreduce(tf.constant(0.0), op=hvd.Sum, name="netlab.barrier")
        start = time.perf_counter()
        total = hvd.allreduce(tensor, op=hvd.Sum, name=name)
        samples.append(time.perf_counter() - start)
    values = total.numpy()
    if not values.min() == values.max() == expected:
        raise RuntimeError(f"allreduce of {size} bytes summed to {values.min()}..{values.max()}, "
                           f"not {expected}")
    return statistics.median(samples)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One rank of the allreduce probe.")
    parser.add_argument("--sizes", nargs="+", type=int, required=True, help="bytes")
    parser.add_argument("--profiles", nargs="+", required=True)
    parser.add_argument("--prefix", required=True, help="the cluster whose links to shape")
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--out", required=True, help="rank 0 writes its result here")
    args = parser.parse_args(argv)
    import horovod.tensorflow as hvd

    times = measure(args.prefix, args.profiles, args.sizes, args.repeats)
    if hvd.rank() == 0:
        controller = "mpi" if hvd.mpi_enabled() else "gloo"
        Path(args.out).write_text(json.dumps({"controller": controller, "seconds": times}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
