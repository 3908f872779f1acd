"""One emulated two-host cluster for all netlab tests; always torn down, even after a failure.

Needs root (or CAP_NET_ADMIN) and iproute2, as CI has: without them the fixture fails
with the reason instead of skipping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.netlab import Cluster, apply_profile, cluster_down, cluster_up

PREFIX = "mlptest"


@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    created = cluster_up(2, PREFIX)
    try:
        yield created
    finally:
        cluster_down(PREFIX)


@pytest.fixture
def unshaped(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster with unshaped links, left unshaped after the test whatever it set."""
    apply_profile(cluster, "unlimited")
    yield cluster
    apply_profile(cluster, "unlimited")
