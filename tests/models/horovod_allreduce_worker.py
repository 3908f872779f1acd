"""One Horovod rank for tests/models/test_horovod_build.py, started by horovodrun.

A separate script because horovodrun launches fresh processes: the test cannot
hand it a function. Each rank contributes values that identify it, so a wrong
or partial sum shows which rank was missed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import horovod.tensorflow as hvd
import tensorflow as tf


def rank_values(rank: int) -> list[float]:
    """Distinct per rank and exact in float64, so the sum is known exactly."""
    return [rank + 1.0, 2.0**rank, 100.0 * rank]


def main(out_dir: str) -> None:
    hvd.init()
    summed = hvd.allreduce(tf.constant(rank_values(hvd.rank()), dtype=tf.float64), op=hvd.Sum)
    result = {"rank": hvd.rank(), "size": hvd.size(), "sum": summed.numpy().tolist()}
    Path(out_dir, f"rank-{hvd.rank()}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
