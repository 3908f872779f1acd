#!/usr/bin/env bash
# Build SeaweedFS's `weed` (the S3-compatible object store the tests and the local
# team trial start) with the Go toolchain, once per machine.
# `go install .../weed@VERSION` is refused because SeaweedFS's go.mod has replace
# directives, so the module is downloaded into the module cache and built from a
# writable copy. The binary (~230 MB, a few CPU-minutes to build) is cached as
# ~/.cache/mlpipe/bin/weed-<VERSION> (or $MLPIPE_CACHE_DIR/bin/...): a fresh clone on
# the same machine reuses it. Prints the binary's path on its last line.
# Usage: scripts/build_seaweedfs.sh
set -euo pipefail

MODULE=github.com/seaweedfs/seaweedfs
VERSION=v0.0.0-20261109003541-7506e5f91cd6
CACHE=${MLPIPE_CACHE_DIR:-$HOME/.cache/mlpipe}
BINARY="$CACHE/bin/weed-$VERSION"

if [ -x "$BINARY" ]; then
  echo "SeaweedFS: $BINARY already built" >&2
  echo "$BINARY"
  exit 0
fi
command -v go >/dev/null || { echo "SeaweedFS: the Go toolchain (go) is needed to build it" >&2; exit 1; }

echo "SeaweedFS: downloading $MODULE@$VERSION" >&2
source_dir=$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$source_dir" ] || { echo "SeaweedFS: go mod download gave no source folder" >&2; exit 1; }

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$source_dir/." "$work/src"
chmod -R u+w "$work/src"
echo "SeaweedFS: building weed (a few CPU-minutes)" >&2
mkdir -p "$CACHE/bin"
(cd "$work/src" && GOFLAGS=-buildvcs=false go build -o "$work/weed" ./weed)
mv "$work/weed" "$BINARY"
echo "SeaweedFS: built $BINARY" >&2
echo "$BINARY"
