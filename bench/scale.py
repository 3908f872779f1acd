"""`mlpipe run` at 1x, 10x and 30x the real year: each step's time, rows/s and peak memory.

    .venv/bin/python -m bench.scale --scales 1 10 30 [--set KEY=VALUE ...]

For each scale K, in a fresh data root: the year is seeded, and for K > 1 ingested and
replayed K times by ``synthesize --scale K``; the lake and the run state are then deleted,
so that the timed ``mlpipe run`` (the configuration's defaults, ``local[2]``, the driver at
``spark.driver.memory`` from ``conf/base.yaml``) ingests and trains on all K years at once.

A sampler reads the resident memory of every process under the run twice a second and
charges it to the step the runner has announced last and to the process's role, so the
table shows which step holds memory in which process, not only the run's peak:

- ``spark JVM``: the driver JVM; in local mode the executors live in it;
- ``driver``: the ``mlpipe`` Python process itself;
- ``PySpark worker``: the largest Python worker of a UDF or ``mapPartitions`` task;
- ``Horovod rank``: the largest training worker.

Anything that grows with the data and lands on one process shows here as a column that
grows with K.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

from bench.object_store import CONF_DIR, STEP_LINE

YEAR_FLIGHTS = 336_776
RUNNING = re.compile(r"\[\d+/\d+\] (\w+): running")
ROLES = ("spark JVM", "driver", "PySpark worker", "Horovod rank")
OUT = Path(__file__).resolve().parent / "out" / "scale.json"
SAMPLE_S = 0.5


def mlpipe(root: Path, settings: list[str], *args: str) -> list[str]:
    """The command line of ``mlpipe`` on ``root`` with ``settings``."""
    flags = [arg for item in (f"data_root={root}", *settings) for arg in ("--set", item)]
    return [str(Path(sys.executable).with_name("mlpipe")), "--config", str(CONF_DIR), *flags,
            *args]


def prepare(root: Path, scale: int, settings: list[str]) -> float:
    """Land K years of flight files under ``root`` (untimed by the table); seconds taken."""
    started = time.monotonic()
    steps = [("step", "seed")]
    if scale > 1:
        steps += [("step", "ingest", "--source", "flights"),
                  ("step", "synthesize", "--scale", str(scale))]
    for step in steps:
        subprocess.run(mlpipe(root, settings, *step), check=True, capture_output=True)
    for folder in root.iterdir():
        if folder.name != "landing":
            shutil.rmtree(folder)
    return time.monotonic() - started


def role_of(process: psutil.Process, root_pid: int) -> str | None:
    """Which part of the run ``process`` is, from its command line."""
    if process.pid == root_pid:
        return "driver"
    command = " ".join(process.cmdline())
    if process.name() == "java" or command.split(" ", 1)[0].endswith("/java"):
        return "spark JVM"
    if "pyspark.daemon" in command or "pyspark.worker" in command:
        return "PySpark worker"
    if "models.training" in command or "horovod" in command:
        return "Horovod rank"
    return None


class MemorySampler(threading.Thread):
    """Peak RSS per (step, role) of a process tree, while the runner names the step."""

    def __init__(self, process: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.step = "start"
        self.peaks: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(ROLES, 0))
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(SAMPLE_S):
            try:
                tree = [self.process, *self.process.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            peaks = self.peaks[self.step]
            for member in tree:
                try:
                    role = role_of(member, self.process.pid)
                    if role is not None:
                        peaks[role] = max(peaks[role], member.memory_info().rss)
                except psutil.NoSuchProcess:
                    continue


def timed_run(root: Path, settings: list[str]) -> dict[str, dict[str, float]]:
    """One ``mlpipe run``: per step, its seconds (the run's own table) and peak RSS per role."""
    stdout = root.parent / f"{root.name}-run.out"
    with open(stdout, "w") as out:
        process = subprocess.Popen(mlpipe(root, settings, "run"), stdout=out,
                                   stderr=subprocess.PIPE, text=True)
        sampler = MemorySampler(psutil.Process(process.pid))
        sampler.start()
        tail: list[str] = []
        for line in process.stderr:
            if match := RUNNING.search(line):
                sampler.step = match.group(1)
            tail = [*tail[-40:], line]
        returncode = process.wait()
        sampler.stopped.set()
        sampler.join()
    if returncode != 0:
        raise RuntimeError(f"mlpipe run failed on {root}:\n{''.join(tail)}")
    seconds = {m.group(1): float(m.group(2)) for line in stdout.read_text().splitlines()
               if (m := STEP_LINE.match(line))}
    return {step: {"seconds": seconds[step],
                   **{role: sampler.peaks[step][role] / 2**30 for role in ROLES}}
            for step in seconds}


def print_table(results: dict[int, dict[str, dict[str, float]]]) -> None:
    scales = sorted(results)
    print(f"`mlpipe run`, spark.master=local[2], load average {os.getloadavg()[0]:.1f}; "
          "rows/s = flight rows / step seconds; peak RSS in GiB at the largest scale")
    print(f"{'step':<17}" + "".join(f"{f'{k}x s':>9}" for k in scales)
          + "".join(f"{f'{k}x rows/s':>13}" for k in scales)
          + "".join(f"{role:>16}" for role in ROLES))
    largest = results[scales[-1]]
    for step in largest:
        cells = [results[k].get(step, {}).get("seconds", float("nan")) for k in scales]
        rates = [YEAR_FLIGHTS * k / cells[i] if cells[i] else float("nan")
                 for i, k in enumerate(scales)]
        print(f"{step:<17}" + "".join(f"{c:>9.1f}" for c in cells)
              + "".join(f"{r:>13,.0f}" for r in rates)
              + "".join(f"{largest[step][role]:>16.2f}" for role in ROLES))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--root", type=Path, default=Path("/tmp/mlpipe-bench-scale"),
                        help="where the K-year data roots go (a few GB at 30x)")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="a config override for every run")
    args = parser.parse_args(argv)
    settings = ["spark.master=local[2]", "spark.conf.spark.ui.showConsoleProgress=false",
                *args.settings]
    results: dict[int, dict[str, dict[str, float]]] = {}
    for scale in args.scales:
        root = args.root / f"{scale}x"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        prepared = prepare(root, scale, settings)
        print(f"{scale}x: landed in {prepared:.0f} s (untimed); running", flush=True)
        results[scale] = timed_run(root, settings)
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(json.dumps({"settings": settings, "results": results}, indent=1))
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
