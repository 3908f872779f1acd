"""Driver side: start the workers (horovodrun on this host, or Spark tasks) and collect results.

Each launcher runs the same worker (:mod:`models.training.worker`) and returns one
result per rank; a worker that dies fails the whole job with its output, never a hang.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.training.task import TrainTask

log = logging.getLogger(__name__)

WORKER_MODULE = "models.training.worker"
OUTPUT_TAIL_LINES = 40
# A worker's exception line as horovodrun prefixes it: "[1]<stderr>:ValueError: ...".
WORKER_ERROR = re.compile(r"^\[\d+\]<std(err|out)>:\s*[\w.]*(Error|Exception|Failed)\b.*:")


class TrainingFailed(RuntimeError):
    """The distributed job failed; the message carries the workers' last output lines."""


@dataclass(frozen=True)
class LaunchSettings:
    """Plain values of the ``horovod`` config section that every launcher uses."""

    num_proc: int
    network_interface: str
    fusion_threshold_mb: int
    cycle_time_ms: float
    start_timeout_s: int
    timeout_s: int


def horovod_env(settings: LaunchSettings) -> dict[str, str]:
    """Tensor fusion: small gradients are packed into one allreduce per cycle."""
    return {"HOROVOD_FUSION_THRESHOLD": str(settings.fusion_threshold_mb * 1024 * 1024),
            "HOROVOD_CYCLE_TIME": str(settings.cycle_time_ms)}


def worker_command(python: str, task_file: str | Path) -> list[str]:
    return [python, "-m", WORKER_MODULE, str(task_file)]


def local_command(settings: LaunchSettings, task_file: str | Path) -> list[str]:
    """``horovodrun --gloo`` with every rank on this host, talking over one interface."""
    return [*gloo_launcher(settings, [f"localhost:{settings.num_proc}"]),
            *worker_command(sys.executable, task_file)]


def gloo_launcher(settings: LaunchSettings, hosts: Sequence[str]) -> list[str]:
    """``horovodrun --gloo`` over ``hosts`` (``host:slots``) up to the program to run.

    horovodrun reaches hosts other than its own with ``ssh`` from PATH.
    """
    return [str(Path(sys.executable).with_name("horovodrun")), "-np", str(settings.num_proc),
            "-H", ",".join(hosts), "--gloo", "--network-interfaces", settings.network_interface,
            "--start-timeout", str(settings.start_timeout_s)]


def run_local(task: TrainTask, settings: LaunchSettings) -> list[dict[str, Any]]:
    """Train with ``horovodrun`` on this host; the results of all ranks, rank 0 first."""
    command = local_command(settings, task.write())
    run_command(command, {**os.environ, **horovod_env(settings)}, settings.timeout_s,
                Path(task.output_dir) / "horovodrun.log")
    return collect_results(task, settings.num_proc)


def run_spark(task: TrainTask, settings: LaunchSettings) -> list[dict[str, Any]]:
    """Train with one Horovod rank per Spark task on the active Spark session.

    Needs a SparkContext that can run ``num_proc`` tasks at once (cores or executors).
    """
    import horovod.spark

    from models.training.worker import run_task

    Path(task.output_dir).mkdir(parents=True, exist_ok=True)
    try:
        results = horovod.spark.run(run_task, args=(task.to_json(),),
                                    num_proc=settings.num_proc,
                                    start_timeout=settings.start_timeout_s, use_gloo=True,
                                    nics={settings.network_interface},
                                    env={**os.environ, **horovod_env(settings)}, verbose=1)
    except Exception as exc:  # Spark and Horovod raise many kinds; the cause is chained
        raise TrainingFailed(f"Horovod on Spark failed: {exc}") from exc
    return check_results(sorted(results, key=lambda r: r["rank"]))


def run_command(command: Sequence[str], env: dict[str, str], timeout_s: float,
                log_path: Path) -> None:
    """Run a launcher, echoing its output to the log; kill its process group on timeout."""
    log.info("launching: %s", " ".join(command))
    tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
    errors: list[str] = []
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as sink:
        process = subprocess.Popen(list(command), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=env,
                                   start_new_session=True)
        expired = threading.Event()
        timer = threading.Timer(timeout_s, lambda: (expired.set(), _kill_group(process)))
        timer.start()
        try:
            for line in process.stdout:
                sink.write(line)
                tail.append(line.rstrip())
                if WORKER_ERROR.match(line) and len(errors) < 5:
                    errors.append(line.rstrip())
                log.info("%s", line.rstrip())
            code = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                _kill_group(process)
    if code != 0:
        reason = (f"timed out after {timeout_s:.0f} s and was killed" if expired.is_set()
                  else f"exited with code {code}")
        raise TrainingFailed(f"{command[0]} {reason}; full log {log_path}\n"
                             f"first worker errors:\n{chr(10).join(errors) or '(none)'}\n"
                             "last lines:\n" + "\n".join(tail))


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def collect_results(task: TrainTask, size: int) -> list[dict[str, Any]]:
    """Every rank's result file, checked for completeness and agreement."""
    missing = [rank for rank in range(size) if not task.rank_result_path(rank).exists()]
    if missing:
        raise TrainingFailed(f"ranks {missing} wrote no result to {task.output_dir}")
    return check_results([json.loads(task.rank_result_path(rank).read_text())
                          for rank in range(size)])


def check_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Synchronous training leaves identical weights on every rank; anything else is a bug."""
    digests = {r["rank"]: r["weights_digest"] for r in results}
    if len(set(digests.values())) > 1:
        raise TrainingFailed(f"ranks finished with different weights: {digests}")
    return results
