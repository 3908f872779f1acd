"""One Horovod rank: ``python -m models.training.worker TASK`` (or ``run_task`` on Spark).

The order is ARCHITECTURE.md's convention 4: init -> pin the device -> shard the data
-> scale the learning rate with warm-up -> averaged gradients -> broadcast the initial
state from rank 0 -> averaged metrics -> checkpoint and log on rank 0 only.
``TASK`` is a task file's location, local or on the object store (then with
``--object-store SETTINGS``, the JSON of the settings that reach it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import posixpath
import sys
from collections.abc import Sequence
from typing import Any

import horovod.tensorflow as hvd
import keras
import numpy as np
import tensorflow as tf

from models.training.checkpoint import LoopState, load_checkpoint, save_checkpoint
from models.training.data import first_block, make_dataset, shard_files, signature_of
from models.training.device import pin_gpu, set_precision, set_threads
from models.training.encoding import encoder_from
from models.training.loop import Trainer, make_optimizer
from models.training.problems import PROBLEMS, Problem
from models.training.task import TrainTask
from models.training.tracking import RunLog

log = logging.getLogger("models.training.worker")


def train(task: TrainTask) -> dict[str, Any]:
    """Train on this rank's shard; every rank returns the same metrics and weight digest."""
    hvd.init()  # Horovod: join the job
    gpu = pin_gpu(hvd.local_rank())  # Horovod: one GPU per rank
    on_gpu = gpu is not None
    threads = set_threads(task.runtime.threads_per_worker,
                          hvd.local_size())  # Horovod: share the host's cores
    loss_scaling = set_precision(task.schedule.mixed_precision, on_gpu)
    log.info("rank %d: training on %s, %d threads", hvd.rank(), gpu or "CPU (no GPU found)",
             threads)
    keras.utils.set_random_seed(task.seed + hvd.rank())  # Horovod: own dropout masks per rank
    problem = PROBLEMS[task.kind]
    storage = task.storage
    encoder_spec = storage.read_text(task.encoder_arg)
    encoder = encoder_from(task.encoder, encoder_spec)
    schedule = task.schedule

    shards = {split: shard_files(storage, task.table_path, task.table_version, split,
                                 hvd.rank(), hvd.size())  # Horovod: this rank's files
              for split in ("train", "validation", "test")}
    sample_inputs, _ = first_block(shards["train"], encoder, task.label)
    signature = signature_of(sample_inputs)
    datasets = {split: make_dataset(shard, encoder, task.label, signature,
                                    batch_size=schedule.batch_size,
                                    shuffle=schedule.shuffle,
                                    seed=task.seed + hvd.rank(), training=split == "train")
                for split, shard in shards.items()}
    local_steps = shards["train"].count_rows() // schedule.batch_size
    steps = int(hvd.allreduce(tf.constant(local_steps),  # Horovod: same steps on all ranks
                              op=hvd.Min))
    if steps == 0:
        raise ValueError(f"rank {hvd.rank()}: fewer training rows than one batch of "
                         f"{schedule.batch_size} on some rank; lower the batch size or workers")
    statistics = hvd.allreduce(tf.constant(problem.local_statistics(datasets["train"])),
                               op=hvd.Sum).numpy()  # Horovod: moments of the whole split
    model = problem.build(encoder, sample_inputs, statistics, task.model)
    optimizer = make_optimizer(schedule.learning_rate, hvd.size(),  # Horovod: N-fold rate
                               schedule.warmup_epochs * steps, loss_scaling)
    optimizer.build(model.trainable_variables)
    trainer = Trainer(model, optimizer, problem.loss(), problem.metric(),
                      task.runtime.fp16_allreduce)

    state, best_weights = LoopState(), [v.numpy() for v in model.variables]
    owner = task.identity()
    if task.resume and hvd.rank() == 0 and storage.exists(task.checkpoint_path):
        state, best_weights = load_checkpoint(storage, task.checkpoint_path, model, optimizer,
                                              owner)
        log.info("resuming after epoch %d from %s", state.epoch, task.checkpoint_path)
    elif hvd.rank() == 0:  # a fresh job: a crash before its first epoch must not leave
        storage.delete(task.checkpoint_path)  # the last job's checkpoint to --resume
    broadcast_state(model, optimizer)  # Horovod: every rank starts from rank 0's state
    state = hvd.broadcast_object(state, root_rank=0)  # Horovod: and at rank 0's epoch
    start_epoch = state.epoch

    run_log = RunLog(task.tracking_uri, task.run_id) if task.run_id and hvd.rank() == 0 else None
    if run_log:
        run_log.params({"workers": hvd.size(), "threads_per_worker": threads,
                        "steps_per_epoch": steps, "resumed_after_epoch": start_epoch,
                        **_flat_params(task)})
    stopped_early = False
    for epoch in range(start_epoch, schedule.epochs):
        row = {"epoch": epoch + 1, "loss": trainer.train_epoch(datasets["train"], steps)}
        row |= {f"val_{key}": value for key, value in trainer.evaluate(
            datasets["validation"]).items()}
        state.history.append(row)
        if improved(problem, state.best, row[f"val_{problem.monitor}"]):
            state.best, state.wait = row[f"val_{problem.monitor}"], 0
            best_weights = [v.numpy() for v in model.variables]
        else:
            state.wait += 1
        state.epoch = epoch + 1
        stop = hvd.broadcast_object(state.wait >= schedule.patience,  # Horovod: one decision
                                    root_rank=0)
        if hvd.rank() == 0:  # Horovod: one writer
            save_checkpoint(storage, task.checkpoint_path, model, optimizer, state,
                            best_weights, owner)
            log.info("epoch %d/%d: %s", epoch + 1, schedule.epochs,
                     ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch"))
            if run_log:
                run_log.epoch(epoch + 1, {k: v for k, v in row.items() if k != "epoch"})
        if stop:
            stopped_early = True
            break

    if hvd.rank() == 0:
        for variable, value in zip(model.variables, best_weights, strict=True):
            variable.assign(value)
    broadcast_state(model, optimizer)  # Horovod: all ranks evaluate rank 0's best weights
    final = {f"{split}_{key}": value for split in ("validation", "test")
             for key, value in trainer.evaluate(datasets[split]).items()}
    result = {"rank": hvd.rank(), "size": hvd.size(), "start_epoch": start_epoch,
              "epochs_run": state.epoch, "stopped_early": stopped_early,
              "steps_per_epoch": steps, "history": state.history, "metrics": final,
              "weights_digest": weights_digest(model)}
    if run_log:
        run_log.metrics(final)
        if state.history:
            run_log.learning_curve(state.history, problem.monitor)
        example = next(shards["train"].frames(encoder.columns)).head(5)
        result["model_uri"] = run_log.model_with_spec(
            model, task.encoder, posixpath.basename(task.encoder_arg), encoder_spec, example)
    storage.write_text(task.rank_result_path(hvd.rank()), json.dumps(result, indent=2))
    return result


def broadcast_state(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> None:
    """Copy rank 0's weights and optimizer slots to every rank.

    Keras 3 variables need ``.value`` (horovod#4290); done before the first step, after
    the optimizer is built, so even step one is exactly synchronous.
    """
    hvd.broadcast_variables([v.value for v in model.variables],  # Horovod: weights
                            root_rank=0)
    hvd.broadcast_variables([v.value for v in optimizer.variables],  # Horovod: slots
                            root_rank=0)


def improved(problem: Problem, best: float | None, value: float) -> bool:
    if best is None:
        return True
    return value > best if problem.mode == "max" else value < best


def weights_digest(model: keras.Model) -> str:
    """A hash of the weights' bytes: equal across ranks when training stayed synchronous.

    ``weights``, not ``variables``: Keras 3 RNN layers advance their dropout seed state
    on every call, inference included, so it differs with each rank's shard size.
    """
    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()


def _flat_params(task: TrainTask) -> dict[str, Any]:
    params = {f"model.{k}": v for k, v in task.model.items()}
    params |= {f"schedule.{k}": v for k, v in vars(task.schedule).items()}
    return params | {"fp16_allreduce": task.runtime.fp16_allreduce, "seed": task.seed}


def run_task(task_json: str) -> dict[str, Any]:
    """Entry point for ``horovod.spark.run``: a module-level function over plain JSON."""
    configure_logging()
    return train(TrainTask.from_json(task_json))


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.training.worker",
                                     description="One Horovod rank of a training task.")
    parser.add_argument("task", help="the task file: a local path or an object-store URI")
    parser.add_argument("--object-store", type=json.loads, default=None,
                        help="JSON of the settings that reach a task file on the object store")
    args = parser.parse_args(argv)
    configure_logging()
    train(TrainTask.read(args.task, args.object_store))
    return 0


if __name__ == "__main__":
    sys.exit(main())
