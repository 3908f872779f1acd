"""The same `mlpipe run` on a local data root and on an object store, step by step.

``python -m bench.object_store [--days 10]`` starts the team's services (SeaweedFS,
PostgreSQL behind an MLflow tracking server), then runs the pipeline on ``--days`` days of
flights twice with the same Spark master: once with everything local (the embedded
default: a local root, SQLite) and once with the lake on the object store and the runs on
the tracking server. It prints each step's time side by side, so the cost of the store
(every Delta commit, checkpoint and spec a round trip; renames are copies) is measured
on the pipeline's own work rather than on a synthetic file copy.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from models.project import PROJECT_ROOT
from pipelines.platform.config import load_config
from pipelines.services import TeamServices

STEP_LINE = re.compile(r"^(\w+)\s+ran\s+([\d.]+) s")
CONF_DIR = PROJECT_ROOT / "conf"


def slice_settings(days: int) -> list[str]:
    """``days`` days from 2013-01-01: 60% to train, 20% to validate, the rest to test."""
    start = date(2013, 1, 1)
    train_end = start + timedelta(days=max(1, round(days * 0.6)) - 1)
    validation_end = train_end + timedelta(days=max(1, round(days * 0.2)))
    return [f"seeding.start={start}", f"seeding.end={start + timedelta(days=days - 1)}",
            f"features.train_end={train_end}", f"features.validation_end={validation_end}",
            "train_deep.epochs=1", "train_deep.batch_size=64", "train_sequence.epochs=1",
            "train_sequence.batch_size=16", "spark.master=local[2]",
            "spark.conf.spark.ui.showConsoleProgress=false"]


def timed_run(settings: list[str], env: dict[str, str], workdir: Path) -> dict[str, float]:
    """Run the pipeline; each step's seconds from the end-of-run table, plus the total."""
    command = [str(Path(sys.executable).with_name("mlpipe")), "--config", str(CONF_DIR),
               *[arg for item in settings for arg in ("--set", item)], "run"]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
    total = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"mlpipe run failed:\n{result.stderr[-4000:]}")
    steps = {m.group(1): float(m.group(2)) for line in result.stdout.splitlines()
             if (m := STEP_LINE.match(line))}
    return {**steps, "total (process)": total}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=10)
    days = parser.parse_args(argv).days
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-store-") as folder:
        work = Path(folder)
        artifacts = load_config(conf_dir=CONF_DIR).services.mlflow_artifacts
        with TeamServices(work / "services", artifacts=artifacts) as team:
            local = timed_run([*slice_settings(days), f"data_root={work / 'local'}"],
                              dict(os.environ), work)
            name = f"bench-{uuid.uuid4().hex[:8]}"
            remote_settings = [*slice_settings(days), f"data_root=s3a://{team.bucket}/{name}",
                               f"object_store.endpoint={team.store.endpoint}",
                               f"mlflow.tracking_uri={team.tracking.uri}",
                               f"mlflow.experiment={name}"]
            remote = timed_run(remote_settings, {**os.environ, **team.describe()}, work)
    print(f"`mlpipe run` on {days} days of flights, spark.master=local[2], "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'step':<18}{'local (s)':>11}{'object store (s)':>18}{'ratio':>8}")
    for step in local:
        ratio = remote.get(step, float('nan')) / local[step] if local[step] else float('nan')
        print(f"{step:<18}{local[step]:>11.1f}{remote.get(step, float('nan')):>18.1f}"
              f"{ratio:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
