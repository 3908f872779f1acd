"""Serving as a fleet: N replica processes behind HAProxy or sharing one port with
SO_REUSEPORT (`serve --replicas N`).

`Fleet` starts, heals, rolls and drains one; `run_fleet` is what the CLI runs.
"""

from serving.fleet.supervisor import Fleet, Restart, run_fleet

__all__ = ["Fleet", "Restart", "run_fleet"]
