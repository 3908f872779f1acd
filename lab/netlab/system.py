"""Running ``ip`` and ``tc``, and refusing early (with the reason) where they cannot work."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence

log = logging.getLogger(__name__)

CAP_NET_ADMIN = 12


class NetlabError(RuntimeError):
    """The emulated cluster cannot be built or used here; the message says why."""


def require_privileges() -> None:
    """Namespaces, veth pairs and qdiscs need CAP_NET_ADMIN (root has it) and iproute2."""
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        raise NetlabError(f"the emulated cluster needs {' and '.join(missing)} (Debian package "
                          "iproute2), which is not on PATH")
    if not _has_net_admin():
        raise NetlabError("the emulated cluster needs root or CAP_NET_ADMIN to create network "
                          "namespaces and set qdiscs; run it as root (CI does)")


def _has_net_admin() -> bool:
    """The effective capability itself: root usually has it, a confined root may not."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    return False


def run(command: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
    """Run one ``ip``/``tc`` command; a failure raises with the tool's own message."""
    log.debug("netlab: %s", " ".join(command))
    result = subprocess.run(list(command), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NetlabError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result


def in_namespace(namespace: str, command: Sequence[str]) -> list[str]:
    """``command`` run inside ``namespace`` (its /etc/netns files mounted over /etc)."""
    return ["ip", "netns", "exec", namespace, *command]
