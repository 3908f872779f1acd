"""What only benchmarks and tests use: emulated hosts, load generators, slowed replicas,
synthetic and reference data, the network cost model.

Kept out of the product so that it never ships or grows into it: ``jobs``, ``pipelines``,
``models`` and ``serving`` never import ``lab``, and the ``mlpipe`` distribution leaves it
out. ``bench`` and ``tests`` import it from the repository root (both run there); it may
import the product packages.
"""

# The lab is not installed: it is imported from the project's checkout
# (models.project.PROJECT_ROOT), where the netlab's shim lives in scripts/ and from which
# the processes the netlab starts on emulated hosts import it.
