"""TensorFlow's C++ log level, chosen before TensorFlow loads in any of our processes.

On a host without an NVIDIA driver every TensorFlow process logs ``failed call to
cuInit: ... UNKNOWN ERROR (303)`` at ERROR level: noise there, since no GPU was
expected. Such a host gets level 3 (C++ errors hidden; Python exceptions still carry
theirs), a host with a driver level 2 (warnings hidden, a real CUDA error shown). A level
the user set is kept. The variable is inherited, so the processes mlpipe starts (Horovod
ranks, serving replicas, Spark's Python workers) follow it; each trainer rank says which
device it uses (:mod:`models.training.worker`).

TensorFlow 2.21 still writes a few INFO lines (oneDNN, "Could not find cuda drivers")
before its logging is set up, at any level.
"""

from __future__ import annotations

import os
from pathlib import Path

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")


def quiet_tensorflow_logs() -> None:
    """Set ``TF_CPP_MIN_LOG_LEVEL`` for this process and its children unless already set."""
    if LOG_LEVEL_VARIABLE not in os.environ:
        os.environ[LOG_LEVEL_VARIABLE] = "2" if NVIDIA_DRIVER.exists() else "3"
