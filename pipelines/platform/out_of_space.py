"""A full disk under the data root, told in one line that names it.

Spark reports it as a Py4J error whose text carries a JVM stack trace, SQLite (the
embedded tracking store) as "database or disk is full", Python as ``OSError`` with
``ENOSPC``; a user needs to hear only which root filled up and that nothing was lost:
each table commits in one Delta transaction, so a step cut short leaves every table at
its last commit, and a rerun once there is room picks up where it stopped.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

from pipelines.platform.errors import StorageFullError

# How each layer words it: the JVM and libc, and SQLite.
_MESSAGES = ("No space left on device", "database or disk is full")


def is_out_of_space(error: BaseException) -> bool:
    """Whether ``error``, or any error it was raised from, says the disk is full."""
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno == errno.ENOSPC:
            return True
        if any(message in str(link) for message in _MESSAGES):
            return True
    return False


def storage_full(root: str, step: str) -> StorageFullError:
    """The error to raise, from the original, when ``step`` ran out of space under ``root``."""
    return StorageFullError(
        f"no space left on the device under {root} (data_root) while step {step} ran; "
        "every table is at its last commit: free space there or move data_root, "
        "then run again")


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__
