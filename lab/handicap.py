"""Command prefixes that make one replica slower, for benchmarks of the balancing policies.

Pass one as `Fleet(..., command_prefix=...)`. Two handicaps work on this kind of machine:
- `taskset -c CPU`: pin the replica to one core (shared with whatever else runs there);
- a CPU quota in a cgroup (`cpu_quota_prefix`): the replica gets at most `cpus` CPUs of
  time whatever the load. cgroup v2 is used where its `cpu` controller is enabled at
  /sys/fs/cgroup, else the v1 `cpu` hierarchy at /sys/fs/cgroup/cpu (what this project's
  development containers have: v1, writable as root; v2's unified tree has no controllers).
  Both need write access to the cgroup tree (root, or a delegated subtree).
The prefix moves the replica's own process into the group before it execs Python, so the
replica's pid is the pid the fleet started.
"""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


def cpu_quota_prefix(group: str, cpus: float, *, pin_cpu: int | None = None) -> list[str]:
    """Create (or update) cgroup `group` limited to `cpus` CPUs; the prefix that joins it.

    With `pin_cpu`, the replica is also pinned to that core with `taskset`.
    """
    procs = _make_group(group, round(cpus * PERIOD_US))
    pin = ["taskset", "-c", str(pin_cpu)] if pin_cpu is not None else []
    return [*pin, "sh", "-c", 'echo $$ > "$0" && exec "$@"', str(procs)]


def join(group: str, pid: int) -> None:
    """Move running process `pid` into existing cgroup `group` (made by `cpu_quota_prefix`).

    For processes the prefix cannot reach, e.g. one already started by someone else.
    """
    for path in (CGROUP_ROOT / group, CGROUP_ROOT / "cpu" / group):
        if path.is_dir():
            (path / "cgroup.procs").write_text(f"{pid}\n")
            return
    raise FileNotFoundError(f"no cgroup {group!r} under {CGROUP_ROOT}: make it with "
                            "cpu_quota_prefix first")


def remove_group(group: str) -> None:
    """Remove the cgroup once its processes have exited (the kernel refuses before)."""
    for path in (CGROUP_ROOT / group, CGROUP_ROOT / "cpu" / group):
        if path.is_dir():
            path.rmdir()


def _make_group(group: str, quota_us: int) -> Path:
    """The cgroup.procs file of a new group with the quota; v2 if it can, else v1."""
    controllers = CGROUP_ROOT / "cgroup.controllers"
    try:
        if controllers.exists() and "cpu" in controllers.read_text().split():
            path = CGROUP_ROOT / group
            path.mkdir(exist_ok=True)
            (path / "cpu.max").write_text(f"{quota_us} {PERIOD_US}\n")
        else:
            path = CGROUP_ROOT / "cpu" / group
            path.mkdir(exist_ok=True)
            (path / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
            (path / "cpu.cfs_quota_us").write_text(f"{quota_us}\n")
    except OSError as error:
        raise PermissionError(f"cannot set a CPU quota in {CGROUP_ROOT}: {error} (needs root "
                              "or a delegated cgroup; `taskset` alone works without)") from error
    return path / "cgroup.procs"
