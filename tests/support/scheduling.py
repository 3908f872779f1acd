"""How the suite is spread over parallel pytest workers (``make test`` runs two).

Each worker is a pytest session of its own, so a session fixture used on both would be
built twice: two object stores, two clusters, two seeded lakes. The suite avoids that by
putting every test that uses one of those fixtures into one ``xdist_group``, which runs
on a single worker; every other module is a group of its own, so module fixtures (one
pipeline run per end-to-end file) are built once too. Groups holding slow tests are
handed out first, the one with most of them first of all, so that no long run starts
last and keeps one worker busy after the other has finished.
"""

from __future__ import annotations

from collections import Counter

import pytest

# Session fixtures that start servers or build a lake, by the group that owns them.
SHARED_FIXTURE_GROUPS = {
    "team_services": "team-services",
    "spark_cluster": "team-services",
    "seeded_lake": "seeded-lake",
    "registry": "serving-registry",
}


def group_of(item: pytest.Item) -> str:
    """The worker group of one test: its shared fixture's, its package's or its module's."""
    for name in item.fixturenames:
        if name in SHARED_FIXTURE_GROUPS:
            return SHARED_FIXTURE_GROUPS[name]
    for definitions in item._fixtureinfo.name2fixturedefs.values():
        if definitions[-1].scope == "package":  # e.g. the emulated hosts of the netlab
            return definitions[-1].baseid
    return item.nodeid.split("::", 1)[0]


def assign_groups(items: list[pytest.Item]) -> None:
    """Mark each test with its group and order the groups, slowest first."""
    groups = [group_of(item) for item in items]
    slow = Counter(group for group, item in zip(groups, items, strict=True)
                   if item.get_closest_marker("slow"))
    first_seen = {group: index for index, group in reversed(list(enumerate(groups)))}
    for item, group in zip(items, groups, strict=True):
        item.add_marker(pytest.mark.xdist_group(group))
    order = sorted(range(len(items)),
                   key=lambda i: (-slow[groups[i]], first_seen[groups[i]], i))
    items[:] = [items[i] for i in order]


def check_groups_took_effect(config: pytest.Config, ids: list[str]) -> None:
    """Stop before any test when pytest-xdist ignored the groups (as it does on pytest 9.2):
    the tests would still pass, but every shared fixture would be built on both workers and
    two emulated clusters of one name would fight over their network namespaces."""
    if config.getoption("dist") == "loadgroup" and ids and "@" not in ids[0]:
        pytest.exit(f"--dist loadgroup did not take effect: pytest {pytest.__version__} drops "
                    f"the group pytest-xdist adds to node ids ({ids[0]}); install the "
                    f"versions pyproject.toml pins (make setup)", returncode=4)
