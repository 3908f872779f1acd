"""Horovod on this machine: throughput scaling, allreduce bandwidth, tensor fusion, precision.

Driver: ``python -m bench.horovod_scaling`` starts each measurement with ``horovodrun
--gloo`` on loopback and writes ``bench/out/horovod_scaling.json``; the workers are this
module with ``--worker MODE``. The training step measured is the project's own
(:class:`models.training.loop.Trainer`) on the MLP at the flight features' sizes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("bench.horovod_scaling")

OUT = Path(__file__).with_name("out") / "horovod_scaling.json"
# The flight spec's embedding tables (carrier, origin, dest, hour, dow, month, route,
# engine, tail buckets) and numeric width, as the features step fits them on 2013.
CARDINALITIES = (17, 4, 105, 25, 8, 13, 220, 6, 513)
NUMERIC = 20
BATCHES = (512, 2048, 8192)  # per worker: the pipeline's default, then larger
# The per-row tf.data pipeline the workers used before, for comparison in the same run.
PER_ROW_BATCHES = (512, 2048)
SIZES = [2**k for k in range(10, 29, 2)]  # 1 KiB .. 256 MiB
SMALL_TENSORS, SMALL_FLOATS = 200, 1024
FUSION_GRID = [(0, 1.0), (64, 1.0), (64, 0.2), (64, 5.0)]  # (threshold MiB, cycle ms)


def horovodrun(mode: str, workers: int, env: dict[str, str] | None = None,
               extra: tuple[str, ...] = ()) -> dict:
    """Run ``--worker mode`` on ``workers`` Gloo ranks; rank 0's JSON result."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        command = [str(Path(sys.executable).with_name("horovodrun")), "-np", str(workers),
                   "-H", f"localhost:{workers}", "--gloo", "--network-interfaces", "lo",
                   sys.executable, "-m", "bench.horovod_scaling", "--worker", mode,
                   "--out", str(out), *extra]
        subprocess.run(command, check=True, timeout=900, capture_output=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})
        return json.loads(out.read_text())


# ---------------------------------------------------------------- worker side


def worker(mode: str, out: Path, steps: int, precision: str, batch: int,
           per_row: bool) -> None:
    import horovod.tensorflow as hvd

    hvd.init()
    from models.training.device import pin_gpu, set_threads

    on_gpu = pin_gpu(hvd.local_rank())
    threads = set_threads(1 if not on_gpu else 0, hvd.local_size())
    if mode == "throughput":
        result = measure_training(hvd, steps, precision == "mixed", on_gpu, batch, per_row)
    elif mode == "allreduce":
        result = measure_allreduce(hvd)
    else:
        result = measure_small_tensors(hvd, steps)
    if hvd.rank() == 0:
        out.write_text(json.dumps({**result, "workers": hvd.size(), "threads": threads,
                                   "gpu": on_gpu}))


def measure_training(hvd, steps: int, mixed: bool, on_gpu: bool, batch: int,
                     per_row: bool) -> dict:
    import numpy as np
    import tensorflow as tf

    from models.keras.tabular import build_tabular_model
    from models.training.data import in_memory_dataset
    from models.training.device import set_precision
    from models.training.loop import Trainer, make_optimizer
    from models.training.problems import PROBLEMS

    loss_scaling = set_precision(mixed, on_gpu)
    rng = np.random.default_rng(hvd.rank())
    names = [f"c{i}" for i in range(len(CARDINALITIES))]
    rows = batch * 20
    inputs = {n: rng.integers(0, size, rows).astype("int32")
              for n, size in zip(names, CARDINALITIES, strict=True)}
    inputs["numeric"] = rng.normal(size=(rows, NUMERIC)).astype("float32")
    labels = (rng.random((rows, 1)) < 0.2).astype("float32")
    if per_row:  # what the workers did before: tf.data shuffles and batches row by row
        dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).repeat().shuffle(
            rows, seed=hvd.rank()).batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    else:  # the workers' own input pipeline: in-memory arrays, reshuffled every pass
        dataset = in_memory_dataset(inputs, labels, batch_size=batch, shuffle=True,
                                    seed=hvd.rank(), training=True).repeat()
    model = build_tabular_model(dict(zip(names, CARDINALITIES, strict=True)), NUMERIC,
                                hidden_units=[256, 128], dropout=0.2, max_embedding_dim=16)
    problem = PROBLEMS["tabular"]
    optimizer = make_optimizer(1e-3, hvd.size(), 0, loss_scaling)
    trainer = Trainer(model, optimizer, problem.loss(), problem.metric(), False)
    trainer.train_epoch(dataset, 10)  # trace and warm up
    started = time.perf_counter()
    trainer.train_epoch(dataset, steps)
    elapsed = time.perf_counter() - started
    return {"samples_per_s": hvd.size() * batch * steps / elapsed, "steps": steps,
            "batch_per_worker": batch, "seconds": elapsed,
            "input": "per-row tf.data" if per_row else "arrays",
            "precision": "mixed" if mixed else "float32"}


def measure_allreduce(hvd) -> dict:
    import numpy as np
    import tensorflow as tf

    rows = []
    for size in SIZES:
        tensor = tf.ones(size // 4, dtype=tf.float32)
        repeats = max(3, min(50, 2**26 // size))
        hvd.allreduce(tensor, op=hvd.Sum)
        started = time.perf_counter()
        for _ in range(repeats):
            hvd.allreduce(tensor, op=hvd.Sum).numpy()
        allreduce_s = (time.perf_counter() - started) / repeats
        source, target = np.ones(size // 4, dtype="float32"), np.empty(size // 4, "float32")
        np.copyto(target, source)
        started = time.perf_counter()
        for _ in range(repeats):
            np.copyto(target, source)
        copy_s = (time.perf_counter() - started) / repeats
        rows.append({"bytes": size, "allreduce_s": allreduce_s,
                     "allreduce_gb_s": size / allreduce_s / 1e9,
                     "memcpy_gb_s": size / copy_s / 1e9})
    return {"sizes": rows}


def measure_small_tensors(hvd, steps: int) -> dict:
    """Many small gradients submitted one by one: what tensor fusion is for."""
    import tensorflow as tf

    tensors = [tf.fill([SMALL_FLOATS], float(i)) for i in range(SMALL_TENSORS)]

    @tf.function
    def step():
        return [hvd.allreduce(t, op=hvd.Sum, name=f"small_{i}") for i, t in enumerate(tensors)]

    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return {"step_ms": (time.perf_counter() - started) / steps * 1e3,
            "tensors": SMALL_TENSORS, "floats_each": SMALL_FLOATS,
            "fusion_threshold": os.environ.get("HOROVOD_FUSION_THRESHOLD"),
            "cycle_time_ms": os.environ.get("HOROVOD_CYCLE_TIME")}


# ---------------------------------------------------------------- driver side


def run_all(steps: int) -> dict:
    """Every measurement; scaling efficiency = throughput(2) / (2 x throughput(1)), per
    per-worker batch size: a larger batch spreads the fixed cost of each allreduce."""
    results: dict = {"throughput": [], "scaling": []}
    runs = [(batch, ()) for batch in BATCHES] + [(batch, ("--per-row-input",))
                                                 for batch in PER_ROW_BATCHES]
    for batch, flags in runs:
        one, two = (horovodrun("throughput", n, extra=("--steps", str(steps),
                                                        "--batch", str(batch), *flags))
                    for n in (1, 2))
        results["throughput"] += [one, two]
        efficiency = two["samples_per_s"] / (2 * one["samples_per_s"])
        results["scaling"].append({"batch_per_worker": batch, "input": one["input"],
                                   "efficiency": efficiency})
        log.info("batch %d per worker, %s input: 1 worker %.0f samples/s, 2 workers %.0f: "
                 "efficiency %.1f%%", batch, one["input"], one["samples_per_s"],
                 two["samples_per_s"], 100 * efficiency)
    results["allreduce"] = horovodrun("allreduce", 2)["sizes"]
    results["fusion"] = [horovodrun("fusion", 2, extra=("--steps", "50"), env={
        "HOROVOD_FUSION_THRESHOLD": str(mib * 2**20), "HOROVOD_CYCLE_TIME": str(cycle)})
        for mib, cycle in FUSION_GRID]
    results["precision"] = [horovodrun("throughput", 1, extra=(
        "--steps", str(steps), "--precision", p)) for p in ("float32", "mixed")] \
        if _has_gpu() else []
    return results


def _has_gpu() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import tensorflow as tf; "
                            "print(len(tf.config.list_physical_devices('GPU')))"],
                           capture_output=True, text=True, env={**os.environ,
                                                               "TF_CPP_MIN_LOG_LEVEL": "3"})
    return probe.stdout.strip().splitlines()[-1:] != ["0"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["throughput", "allreduce", "fusion"])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--precision", choices=["float32", "mixed"], default="float32")
    parser.add_argument("--batch", type=int, default=BATCHES[0], help="per worker")
    parser.add_argument("--per-row-input", action="store_true",
                        help="batch with tf.data row by row instead of the workers' pipeline")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.worker:
        worker(args.worker, args.out, args.steps, args.precision, args.batch,
               args.per_row_input)
        return 0
    results = run_all(args.steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
