"""Driver side: start the workers (horovodrun on this host, or Spark tasks) and collect results.

Each launcher runs the same worker (:mod:`models.training.worker`) and returns one
result per rank; a worker that dies fails the whole job with its output, never a hang.
Task, results and launch logs live in the task's output folder, a local path or an
object-store URI, reached through the task's storage.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.storage import Storage, is_remote, join, local_path
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


def worker_command(python: str, task_file: str,
                   object_store: dict[str, Any] | None = None) -> list[str]:
    """The worker on ``task_file``; one on the object store comes with the settings that
    reach it (plain values: the credentials stay in the environment)."""
    if not is_remote(task_file):
        return [python, "-m", WORKER_MODULE, task_file]
    if not object_store:
        raise ValueError(f"{task_file}: workers need the object_store settings to read it")
    return [python, "-m", WORKER_MODULE, task_file,
            "--object-store", json.dumps(object_store, sort_keys=True)]


def local_command(settings: LaunchSettings, task_file: str,
                  object_store: dict[str, Any] | None = None) -> list[str]:
    """``horovodrun --gloo`` with every rank on this host, talking over one interface."""
    return [*gloo_launcher(settings, [f"localhost:{settings.num_proc}"]),
            *worker_command(sys.executable, task_file, object_store)]


def gloo_launcher(settings: LaunchSettings, hosts: Sequence[str]) -> list[str]:
    """``horovodrun --gloo`` over ``hosts`` (``host:slots``) up to the program to run.

    horovodrun reaches hosts other than its own with ``ssh`` from PATH.
    """
    return [str(Path(sys.executable).with_name("horovodrun")), "-np", str(settings.num_proc),
            "-H", ",".join(hosts), "--gloo", "--network-interfaces", settings.network_interface,
            "--start-timeout", str(settings.start_timeout_s)]


def run_local(task: TrainTask, settings: LaunchSettings) -> list[dict[str, Any]]:
    """Train with ``horovodrun`` on this host; the results of all ranks, rank 0 first."""
    command = local_command(settings, task.write(), task.object_store)
    run_logged(command, {**os.environ, **horovod_env(settings)}, settings.timeout_s,
               task.storage, join(task.output_dir, "horovodrun.log"))
    return collect_results(task, settings.num_proc)


def run_spark(task: TrainTask, settings: LaunchSettings) -> list[dict[str, Any]]:
    """Train with one Horovod rank per Spark task on the active Spark session.

    Needs a SparkContext that can run ``num_proc`` tasks at once (cores or executors).
    """
    import horovod.spark

    from models.training.worker import run_task

    try:
        results = horovod.spark.run(run_task, args=(task.to_json(),),
                                    num_proc=settings.num_proc,
                                    start_timeout=settings.start_timeout_s, use_gloo=True,
                                    nics={settings.network_interface},
                                    env={**os.environ, **horovod_env(settings)}, verbose=1)
    except Exception as exc:  # Spark and Horovod raise many kinds; the cause is chained
        raise TrainingFailed(f"Horovod on Spark failed: {exc}") from exc
    return check_results(sorted(results, key=lambda r: r["rank"]))


def run_logged(command: Sequence[str], env: dict[str, str], timeout_s: float,
               storage: Storage, log_location: str) -> None:
    """:func:`run_command` with its log at ``log_location``, a local path or a URI.

    A launcher can only write to a local file: a log bound for the object store is
    written to a temporary folder and uploaded when the launch ends, failed or not.
    """
    if not is_remote(log_location):
        run_command(command, env, timeout_s, local_path(log_location))
        return
    with tempfile.TemporaryDirectory(prefix="mlpipe-launch-") as folder:
        local_log = os.path.join(folder, posixpath.basename(log_location))
        try:
            run_command(command, env, timeout_s, local_log, shown_as=log_location)
        finally:
            try:
                storage.upload(local_log, log_location)
            except OSError as exc:  # the launch's own outcome matters more than its log
                log.warning("could not upload the launch log to %s: %s", log_location, exc)


def run_command(command: Sequence[str], env: dict[str, str], timeout_s: float,
                log_path: str | os.PathLike[str], *, shown_as: str | None = None) -> None:
    """Run a launcher, echoing its output to the local ``log_path``; kill its process
    group on timeout. ``shown_as`` names the log in errors when it is kept elsewhere."""
    log.info("launching: %s", " ".join(command))
    tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
    errors: list[str] = []
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as sink:
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
        raise TrainingFailed(f"{command[0]} {reason}; full log {shown_as or log_path}\n"
                             f"first worker errors:\n{chr(10).join(errors) or '(none)'}\n"
                             "last lines:\n" + "\n".join(tail))


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def collect_results(task: TrainTask, size: int) -> list[dict[str, Any]]:
    """Every rank's result file, checked for completeness and agreement."""
    storage = task.storage
    missing = [rank for rank in range(size) if not storage.exists(task.rank_result_path(rank))]
    if missing:
        raise TrainingFailed(f"ranks {missing} wrote no result to {task.output_dir}")
    return check_results([json.loads(storage.read_text(task.rank_result_path(rank)))
                          for rank in range(size)])


def check_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Synchronous training leaves identical weights on every rank; anything else is a bug."""
    digests = {r["rank"]: r["weights_digest"] for r in results}
    if len(set(digests.values())) > 1:
        raise TrainingFailed(f"ranks finished with different weights: {digests}")
    return results
