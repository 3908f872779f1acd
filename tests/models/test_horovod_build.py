"""The Horovod build from scripts/build_horovod.sh, exercised through horovodrun.

Horovod is compiled locally against the installed TensorFlow, so a build that
imports can still fail at run time (a missing controller, an ABI mismatch):
these tests start real ranks over Gloo instead of only importing the package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HOROVODRUN = Path(sys.executable).parent / "horovodrun"
TIMEOUT_S = 120
NUM_RANKS = 2
WORKER = Path(__file__).with_name("horovod_allreduce_worker.py")


def run_horovodrun(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the venv's horovodrun; a failure shows its output, which names the broken rank."""
    assert HOROVODRUN.exists(), f"{HOROVODRUN} is missing: run scripts/build_horovod.sh"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([str(HOROVODRUN), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, (f"horovodrun exited with {proc.returncode}\n"
                                  f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def test_check_build_lists_tensorflow_and_gloo(tmp_path: Path) -> None:
    output = run_horovodrun("--check-build", cwd=tmp_path).stdout
    assert "[X] TensorFlow" in output, output
    assert "[X] Gloo" in output, output


def test_allreduce_sums_over_two_gloo_ranks(tmp_path: Path) -> None:
    run_horovodrun("-np", str(NUM_RANKS), "-H", f"localhost:{NUM_RANKS}", "--gloo",
                   "--network-interfaces", "lo", sys.executable, WORKER, tmp_path, cwd=tmp_path)

    # Rank 0 sends [1, 1, 0] and rank 1 sends [2, 2, 100] (the worker's rank_values).
    expected = [3.0, 3.0, 100.0]
    results = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("rank-*.json"))]
    assert [r["rank"] for r in results] == list(range(NUM_RANKS))
    assert all(r["size"] == NUM_RANKS for r in results)
    assert all(r["sum"] == expected for r in results), results
