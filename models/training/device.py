"""The hardware side of a rank: which GPU it owns, how many CPU threads, which precision.

All of it must happen before TensorFlow creates its runtime, so the worker calls these
right after ``hvd.init()``.
"""

from __future__ import annotations

import logging
import os

import keras
import tensorflow as tf

log = logging.getLogger(__name__)


def pin_gpu(local_rank: int) -> str | None:
    """Give this rank only GPU ``local_rank`` of its host and return its name (e.g.
    ``/physical_device:GPU:1``); None when there is no GPU.

    Without this every rank allocates memory on every GPU of the host.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    gpu = gpus[local_rank % len(gpus)]
    tf.config.experimental.set_memory_growth(gpu, True)
    tf.config.set_visible_devices(gpu, "GPU")
    return gpu.name


def set_threads(threads_per_worker: int, workers_on_host: int) -> int:
    """Size TensorFlow's pools; 0 shares the host's cores evenly between its ranks.

    TensorFlow otherwise gives each rank all cores, and N ranks on one host thrash.
    """
    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers_on_host)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return threads


def set_precision(mixed: bool, on_gpu: bool) -> bool:
    """Set the Keras dtype policy; True when the loss must be scaled (float16).

    GPUs get float16 (tensor cores); CPUs bfloat16, which needs no loss scaling.
    """
    if not mixed:
        keras.config.set_dtype_policy("float32")
        return False
    keras.config.set_dtype_policy("mixed_float16" if on_gpu else "mixed_bfloat16")
    return on_gpu
