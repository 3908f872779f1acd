"""What only benchmarks and tests use: emulated hosts, load generators, slowed replicas,
synthetic and reference data, the network cost model.

Kept out of the product so that it never ships or grows into it: ``jobs``, ``pipelines``,
``models`` and ``serving`` never import ``lab``, and the ``mlpipe`` distribution leaves it
out. ``bench`` and ``tests`` import it from the repository root (both run there); it may
import the product packages.
"""

from pathlib import Path

# The repository the package is imported from (it is not installed): the netlab's shim
# lives in its scripts/, and the processes the netlab starts on emulated hosts import the
# lab from it.
REPO_ROOT = Path(__file__).resolve().parent.parent
