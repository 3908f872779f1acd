#!/usr/bin/env bash
# Install the Debian packages the project runs as real components, where missing:
#   haproxy  the load balancer in front of `mlpipe serve --replicas N`
#   wrk      the closed-loop HTTP client the serving benchmarks and overload tests drive
#   mpirun   Open MPI (openmpi-bin), and mpicxx (libopenmpi-dev) to build Horovod with MPI:
#            `horovod.launcher: mpi` and the emulated cluster's MPI runs (lab/netlab)
#   initdb   PostgreSQL (postgresql), the tracking server's database in `mlpipe services up`
#            and the tests; Debian keeps it off PATH, in /usr/lib/postgresql/<N>/bin
# Idempotent: a machine that has every command installs nothing and prints one line.
set -euo pipefail

declare -A PACKAGE_OF=([haproxy]=haproxy [wrk]=wrk [mpirun]=openmpi-bin [mpicxx]=libopenmpi-dev
                       [initdb]=postgresql)

present() {
    command -v "$1" >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/$1" >/dev/null
}

missing=()
for command in "${!PACKAGE_OF[@]}"; do
    present "$command" || missing+=("${PACKAGE_OF[$command]}")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "system packages: all present (${!PACKAGE_OF[*]})"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "system packages: missing ${missing[*]}; install them with" \
         "'sudo apt-get install ${missing[*]}' (this script needs root to do it)" >&2
    exit 1
fi

echo "system packages: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for command in "${!PACKAGE_OF[@]}"; do
    present "$command" || { echo "system packages: $command still missing" >&2; exit 1; }
done
echo "system packages: installed ${missing[*]}"
