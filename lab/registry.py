"""A model the tests or benchmarks logged themselves, released as the pipeline releases one.

Servers and loaders run only registry versions the gate promoted, with the digest and
deployment recorded at registration (serving/provenance.py). A test or benchmark that
serves a model it logged registers it through the pipeline's own registration and
writes the gate's decision with the gate's own function, so what it serves passed the
same checks a champion passes.
"""

from __future__ import annotations

from pipelines.platform.registry import record_decision, register_candidate
from serving.provenance import PROMOTED

# The deployment the lab's versions belong to; a server with serving.deployment empty
# accepts it as any other.
LAB_DEPLOYMENT = "lab"


def register_released(name: str, model_uri: str, run_id: str,
                      deployment: str = LAB_DEPLOYMENT) -> str:
    """Register ``model_uri`` (logged by run ``run_id``) as a new promoted version of
    ``name``; returns the version."""
    version = register_candidate(name, model_uri, run_id, deployment)
    record_decision(version, PROMOTED, "released by the lab")
    return str(version.version)
