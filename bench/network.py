"""Parallelization across emulated networks: allreduce alpha-beta fits, training steps, cost model.

``python -m bench.network`` (``mlpipe bench network``; ``--quick`` for a few minutes)
brings up a two-host emulated cluster (``lab.netlab``, prefix ``mlpbench``, always
torn down), then

1. times Horovod allreduces of 1 KB..64 MB per link profile with Gloo and with MPI
   (``lab.netlab.allreduce``) and fits ``t = 2(p-1)alpha + 2(p-1)/p·n·beta``;
2. times training steps of the MLP and the LSTM (the project's ``Trainer``) on one host
   and across both hosts per profile, with and without fp16 compression, fusion
   threshold 0 and 64 MB; each rank also times a step without the allreduce, on the
   same cores in the same run, which is the compute term;
3. predicts every measured step from compute + fitted allreduce, and extrapolates the
   scaling efficiency to 8..128 workers on published links;
4. fits our regression and MLlib's with Spark executors on both hosts per profile
   (``bench.network_regression``: time and bytes per pass).

Writes ``bench/out/network-results.json`` and ``bench/network_*.png``; the workers are this
module with ``--worker``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import network_regression
from lab import cost_model as cm

log = logging.getLogger("bench.network")

HERE = Path(__file__).parent
OUT = HERE / "out" / "network-results.json"
PREFIX = "mlpbench"
KB, MB = 1024, 1024 * 1024
SIZES = [KB, 16 * KB, 256 * KB, MB, 4 * MB, 16 * MB, 64 * MB]
QUICK_SIZES = [KB, 16 * KB, 256 * KB, MB, 4 * MB]
ALLREDUCE_PROFILES = ["unlimited", "10gbit", "1gbit", "100mbit"]
TRAIN_PROFILES = ["unlimited", "1gbit", "100mbit"]
FUSION_MB = (0, 64)
# The MLP at the flight features' sizes (bench/horovod_scaling.py) and the pipeline's
# LSTM forecaster on a 24-hour window of 8 features; per-worker batches as conf/pipeline.yaml.
CARDINALITIES = (17, 4, 105, 25, 8, 13, 220, 6, 513)
NUMERIC = 20
WINDOW, FEATURES = 24, 8
MODELS = {"mlp": 512, "lstm": 128}  # model -> batch per worker

# Published links for the extrapolation (bench/RESULTS.md cites each figure). Latency:
# Ethernet with the kernel's TCP stack ~40-300 us (Aspen Systems' HPC glossary; 10 GbE
# "about the same"), taking the low end; RDMA 100 Gb/s ~2 us (MPI half round trip,
# 1.9 us over OS-bypass 40 GbE, Cisco; 1-5 us for InfiniBand). TCP over 1500-byte
# Ethernet frames carries 1448 of 1538 bytes on the wire (94%); RDMA ~95% of line rate.
PUBLISHED = {"ethernet-1g": ("1 GbE TCP", 40e-6, 1e9, 0.94),
             "ethernet-10g": ("10 GbE TCP", 40e-6, 1e10, 0.94),
             "ethernet-25g": ("25 GbE TCP", 40e-6, 2.5e10, 0.94),
             "rdma-100g": ("100 Gb/s RDMA", 2e-6, 1e11, 0.95)}
WORKERS = (8, 32, 128)
# horovod.network_profile's defaults: the per-worker batch that reaches this efficiency
# at DEFAULTS_WORKERS workers (doubling from the pipeline's batch, at most the cap), and
# fp16 where it gains at least DEFAULTS_FP16_GAIN of efficiency there.
DEFAULTS_WORKERS, DEFAULTS_TARGET, DEFAULTS_CAP, DEFAULTS_FP16_GAIN = 8, 0.9, 8192, 0.02
# The Horovod paper's model for comparison: ResNet-101 (44.5 M parameters, float32) at
# 64 images per GPU; Horovod's benchmark page reports 1,656.82 images/s on 16 Pascal
# GPUs, so about 64 / (1656.82 / 16) = 0.62 s per step.
RESNET101 = {"compute_s": 64 / (1656.82 / 16), "bytes": 44_500_000 * 4}


# ---------------------------------------------------------------- worker side


def build_model(name: str):
    """The model and one synthetic batch source for it, as the pipeline shapes them."""
    import numpy as np

    from models.keras.sequence import build_sequence_model
    from models.keras.tabular import build_tabular_model
    from models.training.data import in_memory_dataset

    rng = np.random.default_rng(0)
    batch = MODELS[name]
    rows = batch * 8
    if name == "mlp":
        names = [f"c{i}" for i in range(len(CARDINALITIES))]
        inputs = {n: rng.integers(0, size, rows).astype("int32")
                  for n, size in zip(names, CARDINALITIES, strict=True)}
        inputs["numeric"] = rng.normal(size=(rows, NUMERIC)).astype("float32")
        labels = (rng.random((rows, 1)) < 0.2).astype("float32")
        model = build_tabular_model(dict(zip(names, CARDINALITIES, strict=True)), NUMERIC,
                                    hidden_units=[256, 128], dropout=0.2, max_embedding_dim=16)
        problem = "tabular"
    else:
        inputs = {"window": rng.normal(size=(rows, WINDOW, FEATURES)).astype("float32")}
        labels = rng.normal(size=(rows, 1)).astype("float32")
        model = build_sequence_model(WINDOW, FEATURES, cell="lstm", units=[64, 32], dropout=0.1,
                                     heads=4, window_mean=[0.0] * FEATURES,
                                     window_std=[1.0] * FEATURES, target_mean=0.0,
                                     target_std=1.0)
        problem = "sequence"
    dataset = in_memory_dataset(inputs, labels, batch_size=batch, shuffle=True, seed=0,
                                training=True).repeat()
    return model, problem, dataset, batch


def train_worker(model_name: str, profiles: list[str], prefix: str, steps: int,
                 chunks: int) -> dict[str, Any]:
    """Per profile and compression: seconds per step (median of chunks), and compute alone."""
    import horovod.tensorflow as hvd
    import tensorflow as tf

    from lab.netlab.namespaces import find_cluster
    from lab.netlab.profiles import apply_profile
    from models.training.device import set_threads
    from models.training.loop import Trainer, make_optimizer
    from models.training.problems import PROBLEMS

    hvd.init()
    set_threads(1, hvd.local_size())
    model, problem_name, dataset, batch = build_model(model_name)
    problem = PROBLEMS[problem_name]
    optimizer = make_optimizer(1e-3, hvd.size(), 0, False)
    optimizer.build(model.trainable_variables)
    trainers = {fp16: Trainer(model, optimizer, problem.loss(), problem.metric(), fp16)
                for fp16 in (False, True)}
    loss = problem.loss()

    @tf.function(reduce_retracing=True)
    def compute_step(inputs, labels):  # the Trainer's step without the allreduce
        with tf.GradientTape() as tape:
            value = loss(labels, model(inputs, training=True))
        gradients = tape.gradient(value, model.trainable_variables)
        optimizer.apply(gradients, model.trainable_variables)

    def compute_epoch(count: int) -> None:
        for inputs, labels in dataset.take(count):
            compute_step(inputs, labels)

    runs = {"compute": compute_epoch, **{f"fp16={fp16}": (
        lambda count, t=t: t.train_epoch(dataset, count)) for fp16, t in trainers.items()}}
    for run in runs.values():
        run(3)  # trace, warm up
    results: dict[str, Any] = {}
    for profile in profiles:
        if hvd.rank() == 0 and hvd.size() > 1:
            apply_profile(find_cluster(prefix), profile)
        samples: dict[str, list[float]] = {key: [] for key in runs}
        for _ in range(chunks):  # interleaved, so the other jobs' load hits every variant
            for key, run in runs.items():
                hvd.allreduce(tf.constant(0.0), name="bench.barrier")
                started = time.perf_counter()
                run(steps)
                samples[key].append((time.perf_counter() - started) / steps)
        results[profile] = {key: statistics.median(values) for key, values in samples.items()}
    tensors = [int(v.numpy().nbytes) for v in model.trainable_variables]
    return {"model": model_name, "workers": hvd.size(), "batch_per_worker": batch,
            "tensor_bytes": tensors, "gradient_bytes": sum(tensors),
            "fusion_threshold": int(os.environ.get("HOROVOD_FUSION_THRESHOLD", -1)),
            "seconds": results}


# ---------------------------------------------------------------- driver side


def measure_allreduce(cluster, settings, sizes: list[int], repeats: int) -> dict[str, Any]:
    from lab.netlab.allreduce import allreduce_times

    measured: dict[str, Any] = {}
    for launcher in ("gloo", "mpi"):
        started = time.perf_counter()
        times = allreduce_times(cluster, launcher, sizes, settings, ALLREDUCE_PROFILES, repeats)
        log.info("%s allreduce sweep: %.0f s", launcher, time.perf_counter() - started)
        measured[launcher] = {profile: {str(n): t for n, t in by_size.items()}
                              for profile, by_size in times.items()}
    return measured


def fit_all(allreduce: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    from lab.netlab.profiles import PROFILES

    fits: dict[str, dict[str, dict[str, float]]] = {}
    for launcher, by_profile in allreduce.items():
        fits[launcher] = {}
        for profile, by_size in by_profile.items():
            sizes = [int(n) for n in by_size]
            fit = cm.fit_alpha_beta(sizes, [by_size[str(n)] for n in sizes], 2, profile)
            fits[launcher][profile] = {
                "alpha_s": fit.link.alpha_s, "beta_s_per_byte": fit.link.beta_s_per_byte,
                "effective_bps": fit.link.rate_bps, "configured_bps": PROFILES[profile],
                "mean_rel_error": fit.mean_rel_error, "max_rel_error": fit.max_rel_error}
    return fits


def measure_training(cluster, settings, quick: bool) -> list[dict[str, Any]]:
    from lab.netlab.launchers import gloo_on_cluster, launch_env
    from models.training.launch import horovod_env, run_command

    steps, chunks = (5, 3) if quick else (10, 7)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-network-") as folder:
        for model in MODELS:
            base = ["--worker", "--model", model, "--prefix", cluster.prefix,
                    "--steps", str(steps), "--chunks", str(chunks)]
            out = Path(folder) / f"{model}-1.json"
            started = time.perf_counter()
            subprocess.run(cluster.command(cluster.hosts[0], [
                sys.executable, "-m", "bench.network", *base, "--profiles", "unlimited",
                "--out", str(out)]), check=True, timeout=settings.timeout_s,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            runs.append(json.loads(out.read_text()))
            log.info("%s on 1 host: %.0f s", model, time.perf_counter() - started)
            for fusion in FUSION_MB:
                out = Path(folder) / f"{model}-2-{fusion}.json"
                fused = replace(settings, fusion_threshold_mb=fusion)
                program = [sys.executable, "-m", "bench.network", *base, "--out", str(out),
                           "--profiles", *TRAIN_PROFILES]
                started = time.perf_counter()
                run_command(gloo_on_cluster(cluster, fused, program),
                            launch_env(cluster, {**os.environ, **horovod_env(fused),
                                                 "TF_CPP_MIN_LOG_LEVEL": "3"}),
                            settings.timeout_s, Path(folder) / "train.log")
                runs.append(json.loads(out.read_text()))
                log.info("%s on 2 hosts, fusion %d MB: %.0f s", model, fusion,
                         time.perf_counter() - started)
    return runs


def predictions(runs: list[dict[str, Any]], fits: dict[str, Any]) -> list[dict[str, Any]]:
    """Predicted vs measured step of every two-host run: compute (in-run) + fitted allreduce."""
    one_host = {r["model"]: r["seconds"]["unlimited"]["fp16=False"] for r in runs
                if r["workers"] == 1}
    rows = []
    for run in (r for r in runs if r["workers"] > 1):
        for profile, by_key in run["seconds"].items():
            fit = fits["gloo"][profile]
            link = cm.Link(profile, fit["alpha_s"], fit["beta_s_per_byte"])
            for fp16 in (False, True):
                measured = by_key[f"fp16={fp16}"]
                compute = by_key["compute"]
                predicted = cm.step_s(compute, run["tensor_bytes"], run["workers"], link,
                                      run["fusion_threshold"], fp16)
                rows.append({"model": run["model"], "profile": profile, "fp16": fp16,
                             "fusion_mb": run["fusion_threshold"] // MB,
                             "one_host_step_s": one_host[run["model"]],
                             "compute_s": compute, "measured_s": measured,
                             "predicted_s": predicted,
                             "error": (predicted - measured) / measured,
                             "samples_per_s": run["workers"] * run["batch_per_worker"] / measured,
                             "one_host_samples_per_s": run["batch_per_worker"]
                             / one_host[run["model"]]})
    return rows


def extrapolate(runs: list[dict[str, Any]], fits: dict[str, Any]) -> list[dict[str, Any]]:
    """Scaling efficiency at 8..128 workers on published links, with and without fp16.

    Compute is this machine's one-host step (one CPU thread); alpha adds Horovod's own
    per-allreduce cost, the MPI fit's alpha on the unshaped link.
    """
    models = {r["model"]: (r["seconds"]["unlimited"]["fp16=False"], r["tensor_bytes"])
              for r in runs if r["workers"] == 1}
    models["resnet101 (paper)"] = (RESNET101["compute_s"], [RESNET101["bytes"]])
    rows = []
    for model, (compute, tensors) in models.items():
        for link in published_links(fits).values():
            for fp16 in (False, True):
                rows.append({"model": model, "link": link.name, "fp16": fp16,
                             "compute_s": compute, "gradient_bytes": sum(tensors),
                             **{str(p): cm.scaling_efficiency(compute, tensors, p, link,
                                                              64 * MB, fp16)
                                for p in WORKERS}})
    return rows


def published_links(fits: dict[str, Any]) -> dict[str, cm.Link]:
    """The published links by network profile, plus Horovod's own per-allreduce cost.

    That cost is the MPI fit's alpha on the unshaped link: negotiation and the cycle
    (``HOROVOD_CYCLE_TIME``), which a real network pays on top of its wire latency.
    """
    software_alpha = fits["mpi"]["unlimited"]["alpha_s"]
    return {profile: cm.link_from_published(name, latency, rate, software_alpha, efficiency)
            for profile, (name, latency, rate, efficiency) in PUBLISHED.items()}


def recommend_defaults(runs: list[dict[str, Any]], fits: dict[str, Any]) -> dict[str, Any]:
    """Per network profile: fusion threshold, fp16 and per-worker batches, from the model.

    Every gradient here fits one 64 MB buffer, so fusion at 64 MB pays alpha once per
    step, and threshold 0 pays it per tensor: 64 MB everywhere.
    """
    single = {r["model"]: r for r in runs if r["workers"] == 1}
    fusion = 64 * MB
    defaults: dict[str, Any] = {}
    for profile, link in published_links(fits).items():
        gains = []
        for run in single.values():
            compute = run["seconds"]["unlimited"]["fp16=False"]
            gains.append(cm.scaling_efficiency(compute, run["tensor_bytes"], DEFAULTS_WORKERS,
                                               link, fusion, True)
                         - cm.scaling_efficiency(compute, run["tensor_bytes"],
                                                 DEFAULTS_WORKERS, link, fusion, False))
        fp16 = max(gains) >= DEFAULTS_FP16_GAIN
        batches = {name: cm.batch_for_efficiency(
            run["seconds"]["unlimited"]["fp16=False"] / run["batch_per_worker"],
            run["batch_per_worker"], run["tensor_bytes"], DEFAULTS_WORKERS, link, fusion, fp16,
            DEFAULTS_TARGET, DEFAULTS_CAP) for name, run in single.items()}
        defaults[profile] = {"fusion_threshold_mb": fusion // MB, "fp16_allreduce": fp16,
                             "fp16_gain": max(gains), "train_deep_batch_size": batches["mlp"],
                             "train_sequence_batch_size": batches["lstm"]}
    return defaults


# ---------------------------------------------------------------- report


def print_tables(result: dict[str, Any]) -> None:
    print("\nAllreduce alpha-beta fits (2 ranks, 2 hosts)")
    print(f"{'launcher':8} {'profile':10} {'alpha us':>9} {'1/beta Gb/s':>12} "
          f"{'configured':>11} {'mean err':>9} {'max err':>8}")
    for launcher, by_profile in result["fits"].items():
        for profile, f in by_profile.items():
            configured = f"{f['configured_bps'] / 1e9:.1f}" if f["configured_bps"] else "-"
            print(f"{launcher:8} {profile:10} {f['alpha_s'] * 1e6:9.0f} "
                  f"{f['effective_bps'] / 1e9:12.2f} {configured:>11} "
                  f"{f['mean_rel_error']:9.1%} {f['max_rel_error']:8.1%}")
    print("\nTraining steps: predicted (in-run compute + fitted Gloo allreduce) vs measured")
    print(f"{'model':5} {'profile':9} {'fusion':>6} {'fp16':>5} {'1-host ms':>9} "
          f"{'compute ms':>10} {'measured ms':>11} {'predicted ms':>12} {'error':>7} "
          f"{'samples/s':>9} {'1-host/s':>8}")
    for r in result["predictions"]:
        print(f"{r['model']:5} {r['profile']:9} {r['fusion_mb']:6} {r['fp16']!s:>5} "
              f"{r['one_host_step_s'] * 1e3:9.1f} {r['compute_s'] * 1e3:10.1f} "
              f"{r['measured_s'] * 1e3:11.1f} {r['predicted_s'] * 1e3:12.1f} "
              f"{r['error']:7.1%} {r['samples_per_s']:9.0f} {r['one_host_samples_per_s']:8.0f}")
    print("\nExtrapolated scaling efficiency (fusion 64 MB, per-worker batch as measured)")
    print(f"{'model':18} {'link':14} {'fp16':>5} {'grad KB':>9} "
          + " ".join(f"{p:>6}" for p in WORKERS))
    for r in result["extrapolation"]:
        print(f"{r['model']:18} {r['link']:14} {r['fp16']!s:>5} {r['gradient_bytes'] / KB:9.0f} "
              + " ".join(f"{r[str(p)]:6.1%}" for p in WORKERS))
    print(f"\nhorovod.network_profile defaults ({DEFAULTS_TARGET:.0%} efficiency at "
          f"{DEFAULTS_WORKERS} workers, batch at most {DEFAULTS_CAP})")
    print(f"{'profile':13} {'fusion MB':>9} {'fp16':>5} {'fp16 gain':>9} {'MLP batch':>9} "
          f"{'LSTM batch':>10}")
    for profile, d in result["defaults"].items():
        print(f"{profile:13} {d['fusion_threshold_mb']:9} {d['fp16_allreduce']!s:>5} "
              f"{d['fp16_gain']:9.1%} {d['train_deep_batch_size']:9} "
              f"{d['train_sequence_batch_size']:10}")
    network_regression.print_table(result["regression"])


def plot(result: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [HERE / "network_allreduce.png", HERE / "network_training.png"]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for axis, (launcher, by_profile) in zip(axes, result["allreduce"].items(), strict=True):
        for profile, by_size in by_profile.items():
            sizes = sorted(int(n) for n in by_size)
            line, = axis.loglog(sizes, [by_size[str(n)] for n in sizes], "o", label=profile)
            f = result["fits"][launcher][profile]
            axis.loglog(sizes, [cm.ring_allreduce_s(n, 2, f["alpha_s"], f["beta_s_per_byte"])
                                for n in sizes], "-", color=line.get_color(), alpha=0.6)
        axis.set(title=f"{launcher}: allreduce, 2 hosts (dots measured, lines fit)",
                 xlabel="bytes per rank", ylabel="seconds")
        axis.legend()
    figure.tight_layout()
    figure.savefig(paths[0], dpi=100)
    figure, axis = plt.subplots(figsize=(8, 5))
    rows = result["predictions"]
    axis.loglog([r["measured_s"] for r in rows], [r["predicted_s"] for r in rows], "o")
    for r in rows:
        axis.annotate(f"{r['model']} {r['profile']} f{r['fusion_mb']}{' fp16' * r['fp16']}",
                      (r["measured_s"], r["predicted_s"]), fontsize=6)
    low = min(min(r["measured_s"], r["predicted_s"]) for r in rows)
    high = max(max(r["measured_s"], r["predicted_s"]) for r in rows)
    axis.plot([low, high], [low, high], "k--", label="predicted = measured")
    axis.plot([low, high], [low * 1.15, high * 1.15], "k:", label="±15%")
    axis.plot([low, high], [low * 0.85, high * 0.85], "k:")
    axis.set(title="Training step, 2 hosts: cost model vs measured", xlabel="measured s",
             ylabel="predicted s")
    axis.legend()
    figure.tight_layout()
    figure.savefig(paths[1], dpi=100)
    return paths


def run_all(quick: bool) -> dict[str, Any]:
    from lab.netlab.namespaces import cluster_down, cluster_up
    from lab.netlab.profiles import netem_available
    from pipelines.platform.config import load_config
    from pipelines.training.horovod import launch_settings

    settings = replace(launch_settings(load_config()), timeout_s=900)
    sizes, repeats = (QUICK_SIZES, 3) if quick else (SIZES, 7)
    started = time.perf_counter()
    cluster = cluster_up(2, PREFIX)
    try:
        result: dict[str, Any] = {"quick": quick, "netem": netem_available(
            cluster.bridge_namespace), "load_average_before": os.getloadavg()}
        result["allreduce"] = measure_allreduce(cluster, settings, sizes, repeats)
        result["fits"] = fit_all(result["allreduce"])
        result["training"] = measure_training(cluster, settings, quick)
        result["regression"] = network_regression.measure(cluster, quick)
    finally:
        cluster_down(PREFIX)
    result["predictions"] = predictions(result["training"], result["fits"])
    result["extrapolation"] = extrapolate(result["training"], result["fits"])
    result["defaults"] = recommend_defaults(result["training"], result["fits"])
    result["load_average_after"] = os.getloadavg()
    result["seconds"] = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and steps")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--profiles", nargs="+", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default=PREFIX, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--chunks", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.worker:
        result = train_worker(args.model, args.profiles, args.prefix, args.steps, args.chunks)
        import horovod.tensorflow as hvd

        if hvd.rank() == 0:
            args.out.write_text(json.dumps(result))
        return 0
    from lab.netlab.system import NetlabError

    try:
        result = run_all(args.quick)
    except NetlabError as exc:  # no privileges or no iproute2: say why, no traceback
        print(f"bench.network: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result["plots"] = [str(p.relative_to(HERE.parent)) for p in plot(result)]
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print_tables(result)
    print(f"\nnetem: {result['netem']}; load average before {result['load_average_before']}, "
          f"after {result['load_average_after']}; {result['seconds']:.0f} s; wrote {args.out}")
    log_to_mlflow(result, args.out)
    return 0


def log_to_mlflow(result: dict[str, Any], out: Path) -> None:
    """One run named ``bench-network`` in the configured experiment: the alpha-beta fits as
    metrics, the results JSON and the plots as artifacts, where users look first."""
    import mlflow

    from pipelines.platform.config import load_config
    from pipelines.platform.tracking import start_run

    with start_run(load_config(), "bench-network", tags={"mlpipe.benchmark": "network"}) as run:
        mlflow.log_params({"quick": result["quick"], "netem": result["netem"]})
        for launcher, by_profile in result["fits"].items():
            for profile, fit in by_profile.items():
                mlflow.log_metrics({f"{launcher}.{profile}.{key}": value
                                    for key, value in fit.items() if value is not None})
        mlflow.log_metric("seconds", result["seconds"])
        mlflow.log_artifact(str(out))
        for plot_path in result["plots"]:
            mlflow.log_artifact(str(HERE.parent / plot_path))
    print(f"logged to MLflow: run {run.info.run_id} (bench-network)")


if __name__ == "__main__":
    sys.exit(main())
