"""Where the project's own files are: the checkout the packages run from, and the cache of
what `make setup` builds.

mlpipe is installed editable, so ``conf/``, ``jobs/`` and ``scripts/`` lie beside the
packages; everything that finds one of them (the CLI, serving, the services, bench, tests)
starts from :data:`PROJECT_ROOT`. Kept in ``models`` because every package may import it.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Built tools that outlive a checkout (the Horovod wheel, SeaweedFS's `weed`, the load
# client): the scripts in scripts/ read the same variable with the same default.
CACHE_DIR_VARIABLE = "MLPIPE_CACHE_DIR"


def cache_dir() -> Path:
    """``$MLPIPE_CACHE_DIR``, else ``~/.cache/mlpipe``; read on each call, so a test or a
    user can point it elsewhere."""
    return Path(os.environ.get(CACHE_DIR_VARIABLE) or Path.home() / ".cache" / "mlpipe")
