#!/usr/bin/env bash
# Install Horovod 0.28.1 with TensorFlow and Gloo into the given virtualenv.
# PyPI has no Horovod wheels, and the sdist does not build against TensorFlow
# >= 2.16 as released: its XLA custom-call source no longer compiles (we drop it;
# it only adds XLA custom calls), and CMake >= 4 rejects the bundled gloo (we use
# the system CMake). A build takes minutes, so the wheel is cached under
# ~/.cache/mlpipe/wheels/<key> (or $MLPIPE_CACHE_DIR/wheels/<key>), keyed on the
# versions it was compiled against: a fresh clone on the same machine reuses it.
# Usage: scripts/build_horovod.sh [PYTHON]   (default .venv/bin/python)
set -euo pipefail

HOROVOD_VERSION=0.28.1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${1:-.venv/bin/python}
# Not resolved with realpath: the venv's python is a symlink to the system one,
# and following it would leave the venv.
case $PYTHON in /*) ;; *) PYTHON="$PWD/$PYTHON" ;; esac
[ -x "$PYTHON" ] || { echo "build_horovod: no python at $PYTHON" >&2; exit 1; }
VENV_BIN=$(dirname "$PYTHON")
cd "$ROOT"

if command -v mpicxx >/dev/null && command -v mpirun >/dev/null; then
  with_mpi=1
else
  with_mpi=0
fi
with_nccl=0
if ! command -v nvcc >/dev/null && [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
  export PATH="$PATH:${CUDA_HOME:-/usr/local/cuda}/bin"
fi
if command -v nvcc >/dev/null; then
  for include_dir in "${NCCL_HOME:-/nonexistent}/include" "${CUDA_HOME:-/usr/local/cuda}/include" \
                     /usr/include /usr/local/include; do
    if [ -f "$include_dir/nccl.h" ]; then with_nccl=1; break; fi
  done
fi

# Horovod only warns when the TensorFlow it was compiled against differs from
# the installed one, so the check compares the versions in its metadata.json.
# It also wants every part this machine can build: a Gloo-only Horovod installed
# before Open MPI (or NCCL) is rebuilt, as the wheel cache key already says.
installed_check() {
  "$PYTHON" - "$HOROVOD_VERSION" "$with_mpi" "$with_nccl" >/dev/null 2>&1 <<'EOF'
import json
import sys
from pathlib import Path

import horovod
import horovod.tensorflow as hvd
import tensorflow as tf

version, with_mpi, with_nccl = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
built_for = json.loads(Path(horovod.__file__).with_name("metadata.json").read_text())
sys.exit(0 if horovod.__version__ == version and built_for.get("tensorflow") == tf.__version__
         and hvd.gloo_built() and (hvd.mpi_built() or not with_mpi)
         and (hvd.nccl_built() or not with_nccl) else 1)
EOF
}

export TF_CPP_MIN_LOG_LEVEL=2
if installed_check; then
  echo "Horovod $HOROVOD_VERSION with TensorFlow already installed in $(dirname "$VENV_BIN")"
  exit 0
fi

# Horovod is installed with --no-deps (its build reads the installed TensorFlow
# and must not let pip change it), so its own runtime requirements come first.
"$PYTHON" -m pip install -q cloudpickle psutil pyyaml packaging

read -r tf_version py_version < <("$PYTHON" -c '
import sys, importlib.metadata as md
print(md.version("tensorflow"), "%d.%d" % sys.version_info[:2])')
[ -n "$py_version" ] || { echo "build_horovod: TensorFlow is not installed for $PYTHON" >&2; exit 1; }

# The optional parts are in the key too: a wheel built without MPI or NCCL must
# not be reused once they are installed.
key="horovod$HOROVOD_VERSION-tf$tf_version-py$py_version"
[ "$with_mpi" = 1 ] && key="$key-mpi"
[ "$with_nccl" = 1 ] && key="$key-nccl"
cache_dir=${MLPIPE_CACHE_DIR:-$HOME/.cache/mlpipe}
wheel_dir="$cache_dir/wheels/$key"
log="$cache_dir/logs/$key.log"
mkdir -p "$wheel_dir" "$(dirname "$log")"

find_wheel() {
  compgen -G "$wheel_dir/horovod-$HOROVOD_VERSION-*.whl" | head -n 1 || true
}

fail_with_log() {
  echo "build_horovod: $1; the last lines of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
}

wheel=$(find_wheel)
if [ -n "$wheel" ]; then
  echo "Horovod: installing the cached wheel $(basename "$wheel")"
else
  # /usr/bin first so that a PyPI cmake (>= 4) in the venv is not picked up.
  export PATH="/usr/bin:$PATH"
  cmake_bin=$(command -v cmake || true)
  [ -n "$cmake_bin" ] || { echo "build_horovod: CMake 3.13-3.x is needed (apt-get install cmake)" >&2; exit 1; }
  cmake_version=$("$cmake_bin" --version | sed -n 's/^cmake version \([0-9][0-9.]*\).*/\1/p')
  if [ -z "$cmake_version" ] || [ "${cmake_version%%.*}" -ge 4 ]; then
    echo "build_horovod: $cmake_bin is CMake ${cmake_version:-of unknown version};" \
         "Horovod's bundled gloo needs CMake 3.x (install the distribution's cmake," \
         "and no cmake from PyPI ahead of it on PATH)" >&2
    exit 1
  fi

  src_tmp=$(mktemp -d)
  trap 'rm -rf "$src_tmp"' EXIT
  echo "Horovod: building $key (several minutes; log in $log)"
  start=$SECONDS
  : >"$log"
  "$PYTHON" -m pip download -q --no-deps --no-binary :all: "horovod==$HOROVOD_VERSION" \
      -d "$src_tmp" >>"$log" 2>&1 || fail_with_log "downloading the horovod sdist failed"
  tar -xzf "$src_tmp/horovod-$HOROVOD_VERSION.tar.gz" -C "$src_tmp"
  src="$src_tmp/horovod-$HOROVOD_VERSION"

  tf_cmake="$src/horovod/tensorflow/CMakeLists.txt"
  grep -q 'xla_mpi_ops\.cc' "$tf_cmake" \
    || { echo "build_horovod: xla_mpi_ops.cc not found in $tf_cmake; re-check the patch" >&2; exit 1; }
  sed -i '/xla_mpi_ops\.cc/d' "$tf_cmake"
  if grep -q 'xla_mpi_ops\.cc' "$tf_cmake" || ! grep -q '/mpi_ops\.cc' "$tf_cmake"; then
    echo "build_horovod: dropping xla_mpi_ops.cc from $tf_cmake did not apply cleanly" >&2
    exit 1
  fi

  # Horovod compiles for this CPU (it probes -march=native unless
  # HOROVOD_BUILD_ARCH_FLAGS is set), which suits a cache kept per machine.
  build_env=(
    HOROVOD_CMAKE="$cmake_bin"
    HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
    HOROVOD_WITH_GLOO=1
    MAKEFLAGS="-j$(nproc)"
  )
  if [ "$with_mpi" = 1 ]; then build_env+=(HOROVOD_WITH_MPI=1); else build_env+=(HOROVOD_WITHOUT_MPI=1); fi
  [ "$with_nccl" = 1 ] && build_env+=(HOROVOD_GPU_OPERATIONS=NCCL)
  # --no-build-isolation: the extension must compile against the TensorFlow in
  # this venv, not one pip would fetch into a build environment.
  env "${build_env[@]}" "$PYTHON" -m pip wheel -v --no-build-isolation --no-deps \
      -w "$wheel_dir" "$src" >>"$log" 2>&1 || fail_with_log "building the wheel failed"
  wheel=$(find_wheel)
  [ -n "$wheel" ] || fail_with_log "the build left no wheel in $wheel_dir"
  echo "Horovod: built $(basename "$wheel") in $((SECONDS - start)) s"
fi

"$PYTHON" -m pip install -q --no-deps --force-reinstall "$wheel"

check=$("$VENV_BIN/horovodrun" --check-build 2>&1) || { echo "$check" >&2; exit 1; }
for part in TensorFlow Gloo; do
  if ! grep -q "\[X\] $part" <<<"$check"; then
    echo "$check" >&2
    echo "build_horovod: horovodrun --check-build does not list $part as available" >&2
    exit 1
  fi
done
# PyTorch is left out of the summary: check-build marks it [X] whenever
# horovod.torch imports, which it does even without its extension.
available=TensorFlow
for part in Gloo MPI NCCL; do
  grep -q "\[X\] $part" <<<"$check" && available="$available, $part"
done
echo "Horovod $HOROVOD_VERSION installed from $(basename "$wheel"): $available"
