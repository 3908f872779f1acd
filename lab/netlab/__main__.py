"""``python -m lab.netlab up|down|status|shape|exec|probe``: the emulated cluster by hand.

    python -m lab.netlab up --hosts 2 --profile 1gbit
    python -m lab.netlab exec h2 -- ip -4 addr show eth0
    python -m lab.netlab probe --launcher mpi --profiles unlimited 1gbit --sizes 8388608
    python -m lab.netlab down

Fusion threshold, cycle time and timeouts of the probe come from the ``horovod``
section of the configuration (``--config``/``--env`` as for ``mlpipe``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from lab.netlab.namespaces import (
    DEFAULT_PREFIX,
    Cluster,
    cluster_down,
    cluster_status,
    cluster_up,
    find_cluster,
)
from lab.netlab.profiles import PROFILES, apply_profile
from lab.netlab.system import NetlabError


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m lab.netlab", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    root.add_argument("--prefix", default=DEFAULT_PREFIX,
                      help="names the cluster's namespaces (<prefix>-h1, ...)")
    commands = root.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="create the hosts (removing leftovers first)")
    up.add_argument("--hosts", type=int, required=True)
    up.add_argument("--profile", choices=PROFILES, default="unlimited")
    commands.add_parser("down", help="remove every namespace of the cluster")
    commands.add_parser("status", help="hosts, addresses and link qdiscs as JSON")
    shape = commands.add_parser("shape", help="set a link profile on every host link")
    shape.add_argument("profile", choices=PROFILES)
    run = commands.add_parser("exec", help="run a command on one host")
    run.add_argument("host")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    probe = commands.add_parser("probe", help="time allreduces across the hosts")
    probe.add_argument("--launcher", choices=("gloo", "mpi"), required=True)
    probe.add_argument("--sizes", type=int, nargs="+", required=True, help="bytes")
    probe.add_argument("--profiles", nargs="+", choices=PROFILES, required=True,
                       help="swept in one run; the last one stays set")
    probe.add_argument("--repeats", type=int, default=5)
    probe.add_argument("--config", help="configuration folder, as for mlpipe")
    probe.add_argument("--env", help="configuration overlay, as for mlpipe")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return _dispatch(args)
    except NetlabError as exc:
        print(f"netlab: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "up":
        cluster = cluster_up(args.hosts, args.prefix)
        print(json.dumps(apply_profile(cluster, args.profile)))
        print(json.dumps(cluster_status(args.prefix), indent=2))
        return 0
    if args.command == "down":
        print(json.dumps({"removed": cluster_down(args.prefix)}))
        return 0
    if args.command == "status":
        print(json.dumps(cluster_status(args.prefix), indent=2))
        return 0
    cluster = find_cluster(args.prefix)
    if cluster is None:
        raise NetlabError(f"no cluster {args.prefix} is up (python -m lab.netlab up)")
    if args.command == "shape":
        print(json.dumps(apply_profile(cluster, args.profile)))
        return 0
    if args.command == "exec":
        from lab.netlab.launchers import launch_env

        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        command = cluster.command(args.host, argv)
        os.execvpe(command[0], command, launch_env(cluster))
    return _probe(cluster, args)


def _probe(cluster: Cluster, args: argparse.Namespace) -> int:
    from lab.netlab.allreduce import allreduce_times
    from pipelines.platform.config import load_config
    from pipelines.training.horovod import launch_settings

    settings = launch_settings(load_config(env=args.env, conf_dir=args.config))
    times = allreduce_times(cluster, args.launcher, args.sizes, settings, args.profiles,
                            args.repeats)
    print(json.dumps({"launcher": args.launcher, "hosts": len(cluster.hosts), "seconds": {
        profile: {str(size): round(t, 6) for size, t in by_size.items()}
        for profile, by_size in times.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
