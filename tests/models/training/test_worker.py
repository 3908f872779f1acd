"""The worker loop in real ``horovodrun`` processes (Gloo on loopback), on synthetic Delta tables.

Each test bounds its launches with a timeout, so a hung collective fails the test
instead of hanging the suite.
"""

from __future__ import annotations

import dataclasses
import io
import re
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from models.storage import join
from models.training.data import shard_files
from models.training.launch import LaunchSettings, TrainingFailed, run_local
from models.training.task import TASK_FILE, Runtime, Schedule, TrainTask
from tests.models.training.synthetic import (
    ENCODER,
    LABEL,
    flights_like,
    with_validation,
    write_files,
    write_spec,
)

pytestmark = pytest.mark.slow

LAUNCH_TIMEOUT_S = 120


def launch_settings(num_proc: int) -> LaunchSettings:
    return LaunchSettings(num_proc=num_proc, network_interface="lo", fusion_threshold_mb=64,
                          cycle_time_ms=1.0, start_timeout_s=60, timeout_s=LAUNCH_TIMEOUT_S)


def make_task(table: Path, version: int, output: Path, **schedule: object) -> TrainTask:
    defaults = dict(learning_rate=0.01, batch_size=8, epochs=2, warmup_epochs=0, patience=100,
                    shuffle=False, mixed_precision=False)
    return TrainTask(
        kind="tabular", table_path=str(table), table_version=version, encoder=ENCODER,
        encoder_arg=str(write_spec(output.parent)), label=LABEL,
        model={"hidden_units": [8], "dropout": 0.0, "max_embedding_dim": 4},
        schedule=Schedule(**{**defaults, **schedule}),
        runtime=Runtime(threads_per_worker=1, fp16_allreduce=False),
        seed=7, output_dir=str(output))


def final_weights(task: TrainTask) -> list[np.ndarray]:
    """The weights after the last step (the checkpoint's, not the best epoch's)."""
    with np.load(io.BytesIO(task.storage.read_bytes(task.checkpoint_path))) as arrays:
        return [arrays[k] for k in sorted((k for k in arrays.files if k.startswith("model_")),
                                          key=lambda k: int(k.split("_")[1]))]


def test_two_workers_match_one_worker_with_twice_the_batch(tmp_path: Path) -> None:
    batch, steps = 8, 6
    two = tmp_path / "two"
    version = write_files(two, [with_validation(flights_like(batch * steps, seed=s), 8,
                                                seed=s + 10) for s in (1, 2)])
    # Two workers scale the rate by 2 (no warm-up); one worker gets that rate directly.
    two_task = make_task(two, version, tmp_path / "out-two", learning_rate=0.01)
    # The one-worker table holds the same rows, each global batch being rank 0's batch
    # followed by rank 1's, so both runs average the gradients of the same 2b rows.
    shards = [pd.concat(list(shard_files(two_task.storage, str(two), version, "train", r, 2)
                             .frames(["cat", "x1", "x2", LABEL, "split"]))) for r in range(2)]
    interleaved = pd.concat([part for step in range(steps) for shard in shards
                             for part in [shard.iloc[step * batch:(step + 1) * batch]]])
    one = tmp_path / "one"
    one_version = write_files(one, [interleaved])
    one_task = make_task(one, one_version, tmp_path / "out-one", learning_rate=0.02,
                         batch_size=2 * batch)
    two_results = run_local(two_task, launch_settings(2))
    one_results = run_local(one_task, launch_settings(1))

    assert [r["steps_per_epoch"] for r in two_results] == [steps, steps]
    assert one_results[0]["steps_per_epoch"] == steps
    assert two_results[0]["weights_digest"] == two_results[1]["weights_digest"]
    moved = [np.abs(w).max() for w in final_weights(two_task)]
    assert max(moved) > 0.01  # training did change the weights
    for w2, w1 in zip(final_weights(two_task), final_weights(one_task), strict=True):
        np.testing.assert_allclose(w2, w1, rtol=1e-5, atol=1e-6)
    losses = [[row["loss"] for row in r[0]["history"]] for r in (two_results, one_results)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    # Each rank says once where it trains, and TensorFlow's cuInit noise stays out.
    log = (tmp_path / "out-two" / "horovodrun.log").read_text()
    assert "cuInit" not in log
    for rank in (0, 1):
        said = re.findall(rf"rank {rank}: training on (CPU \(no GPU found\)|\S*GPU:\d+), "
                          rf"1 threads", log)
        assert len(said) == 1, log[-2000:]


def rank_process(task_file: str, rank: int) -> psutil.Process | None:
    """The worker process of ``rank`` for this task (horovodrun sets HOROVOD_RANK)."""
    for process in psutil.process_iter(["cmdline"]):
        try:
            if task_file in (process.info["cmdline"] or []) and \
                    process.environ().get("HOROVOD_RANK") == str(rank):
                return process
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def test_killed_worker_fails_the_job_and_resume_finishes(tmp_path: Path) -> None:
    table = tmp_path / "table"
    version = write_files(table, [with_validation(flights_like(320, seed=s), 32, seed=s + 10)
                                  for s in (1, 2)])
    task = make_task(table, version, tmp_path / "out", epochs=10, batch_size=8)
    outcome: dict[str, BaseException] = {}

    def launch() -> None:
        try:
            run_local(task, launch_settings(2))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=launch)
    thread.start()
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    while not task.storage.exists(task.checkpoint_path) and thread.is_alive() \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = rank_process(join(task.output_dir, TASK_FILE), rank=1)
    assert victim is not None, "rank 1 was not found running after the first checkpoint"
    victim.kill()
    thread.join(LAUNCH_TIMEOUT_S)

    assert not thread.is_alive(), "the job hung after a worker was killed"
    assert isinstance(outcome.get("error"), TrainingFailed), outcome
    assert "exited with code" in str(outcome["error"])

    results = run_local(dataclasses.replace(task, resume=True), launch_settings(2))
    assert results[0]["start_epoch"] >= 1
    assert results[0]["epochs_run"] == 10
    assert [row["epoch"] for row in results[0]["history"]] == list(range(1, 11))


def test_a_task_identity_follows_what_decides_the_result_not_how_it_runs(
        tmp_path: Path) -> None:
    task = make_task(tmp_path / "table", 1, tmp_path / "out")
    rerun = dataclasses.replace(task, resume=True, run_id="another-run",
                                output_dir=str(tmp_path / "elsewhere"))
    assert rerun.identity() == task.identity()
    for changed in (dict(table_version=2), dict(seed=task.seed + 1),
                    dict(schedule=task.schedule.model_copy(update={"epochs": 3}))):
        assert dataclasses.replace(task, **changed).identity() != task.identity(), changed
