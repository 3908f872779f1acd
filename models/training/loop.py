"""One rank's training arithmetic: the warm-up schedule, the step, the averaged metrics.

Gradients are averaged with ``hvd.grouped_allreduce`` on plain ``tf.GradientTape``
gradients: ``hvd.DistributedGradientTape`` fails on Keras 3 variables (horovod#4290).
"""

from __future__ import annotations

import horovod.tensorflow as hvd
import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="mlpipe")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear ramp from one worker's rate to N workers' rate over the first steps.

    N workers average N times as many rows per step; starting at the full N-fold
    rate diverges early (Goyal et al., "Accurate, Large Minibatch SGD").
    """

    def __init__(self, initial: float, target: float, warmup_steps: int) -> None:
        self.initial, self.target, self.warmup_steps = initial, target, warmup_steps

    def __call__(self, step):
        if self.warmup_steps <= 0:
            return ops.convert_to_tensor(self.target, "float32")
        done = ops.minimum(ops.cast(step, "float32") / self.warmup_steps, 1.0)
        return self.initial + (self.target - self.initial) * done

    def get_config(self) -> dict:
        return {"initial": self.initial, "target": self.target,
                "warmup_steps": self.warmup_steps}


def make_optimizer(learning_rate: float, workers: int, warmup_steps: int,
                   loss_scaling: bool) -> keras.optimizers.Optimizer:
    """Adam at ``learning_rate x workers`` after warm-up; float16 needs dynamic loss scaling."""
    schedule = WarmupSchedule(learning_rate, learning_rate * workers,  # Horovod: scaled rate
                              warmup_steps)
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scaling else optimizer


def allreduce_metrics(metrics: list[keras.metrics.Metric]) -> None:
    """Sum every metric's state over ranks, so ``result()`` is the metric of all rows.

    Summing states (totals and counts, confusion counts per threshold) is exact where
    averaging per-rank results is not: shards differ in size, and AUC does not average.
    """
    variables = [v for metric in metrics for v in metric.variables]
    summed = hvd.grouped_allreduce([v.value for v in variables],  # Horovod: all ranks' rows
                                   op=hvd.Sum)
    for variable, value in zip(variables, summed, strict=True):
        variable.assign(value)


class Trainer:
    """The compiled train and evaluation steps of one model on one rank."""

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                 loss: keras.losses.Loss, metric: keras.metrics.Metric,
                 fp16_allreduce: bool) -> None:
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.metric = metric
        self.train_loss = keras.metrics.Mean(name="loss")
        self.eval_loss = keras.metrics.Mean(name="loss")
        self.compression = (hvd.Compression.fp16 if fp16_allreduce  # Horovod: wire format
                            else hvd.Compression.none)
        self._train_step = tf.function(self._train_step_eager, reduce_retracing=True)
        self._eval_step = tf.function(self._eval_step_eager, reduce_retracing=True)

    def _train_step_eager(self, inputs, labels) -> None:
        with tf.GradientTape() as tape:
            predictions = self.model(inputs, training=True)
            loss = self.loss(labels, predictions)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, self.model.trainable_variables)
        gradients = hvd.grouped_allreduce(gradients, op=hvd.Average,  # Horovod: average
                                          compression=self.compression)
        self.optimizer.apply(gradients, self.model.trainable_variables)
        self.train_loss.update_state(loss)

    def _eval_step_eager(self, inputs, labels) -> None:
        predictions = self.model(inputs, training=False)
        self.eval_loss.update_state(self.loss(labels, predictions))
        self.metric.update_state(labels, predictions)

    def train_epoch(self, dataset: tf.data.Dataset, steps: int) -> float:
        """``steps`` optimizer steps (the same number on every rank); the mean loss of all."""
        self.train_loss.reset_state()
        for inputs, labels in dataset.take(steps):
            self._train_step(inputs, labels)
        allreduce_metrics([self.train_loss])  # Horovod: loss over all ranks
        return float(self.train_loss.result())

    def evaluate(self, dataset: tf.data.Dataset) -> dict[str, float]:
        """Loss and metric over every rank's rows of a split (a rank may have none)."""
        self.eval_loss.reset_state()
        self.metric.reset_state()
        for inputs, labels in dataset:
            self._eval_step(inputs, labels)
        allreduce_metrics([self.eval_loss, self.metric])  # Horovod: metrics over all ranks
        return {"loss": float(self.eval_loss.result()), self.metric.name:
                float(self.metric.result())}
