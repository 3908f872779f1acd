"""Reading what `mlpipe run` printed: the status of each step in its closing table."""

from __future__ import annotations

from pipelines.platform.config import load_config
from tests.conftest import CONF_DIR

# The steps `mlpipe run` runs, as conf/pipeline.yaml declares them.
PIPELINE_STEPS = tuple(load_config(conf_dir=CONF_DIR).pipeline.steps)


def statuses(output: str) -> dict[str, str]:
    """Step -> status ("ran", "skipped", ...) from the table `mlpipe run` prints at the end."""
    rows = [line.split() for line in output.splitlines()]
    return {row[0]: row[1] for row in rows if len(row) > 1 and row[0] in PIPELINE_STEPS}
