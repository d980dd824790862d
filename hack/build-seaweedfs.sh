#!/usr/bin/env bash
# Builds the real SeaweedFS `weed` binary the S3 tests run as their object store (Apache-2.0), from the Go
# module proxy with the ordinary `go` client, through the wrapper module in hack/seaweedfs/ (it requires
# github.com/seaweedfs/seaweedfs as a `tool` and repeats its non-local `replace`, which `go install
# pkg@version` refuses to honour). Output is cached outside the repository, keyed by the SeaweedFS version;
# a second run is a no-op. Prints the binary's path on its last line of stdout.
set -euo pipefail

BUILD_NAME=build-seaweedfs
# shellcheck source=lib/go-build.sh
source "$(dirname "$0")/lib/go-build.sh"
SRC="$ROOT/hack/seaweedfs"
COLD_TOTAL_S=2344

SEAWEEDFS_VERSION="$(sed -n 's/^[[:space:]]*\(require \)\{0,1\}github.com\/seaweedfs\/seaweedfs \(v[^ ]*\).*/\2/p' "$SRC/go.mod")"
[ -n "$SEAWEEDFS_VERSION" ] || die "hack/seaweedfs/go.mod does not require github.com/seaweedfs/seaweedfs"
OUT="${SEAWEEDFS_BIN_DIR:-$CACHE_ROOT/bin/seaweedfs-${SEAWEEDFS_VERSION}}"
BIN="$OUT/weed"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go >= 1.26.6 from go.dev and re-run."
GOV="$(go env GOVERSION | sed 's/^go//')"
case "$GOV" in 1.26.[6-9]*|1.26.[1-9][0-9]*|1.2[7-9]*|1.[3-9]*) ;; *) die "Go $GOV is too old; SeaweedFS $SEAWEEDFS_VERSION needs Go >= 1.26.6.";; esac
build_go_binary "$BIN" "seaweedfs weed" "$SRC" github.com/seaweedfs/seaweedfs/weed \
  "building SeaweedFS weed $SEAWEEDFS_VERSION (a cold build takes ~${COLD_TOTAL_S}s on 2 cores)" \
  "building SeaweedFS $SEAWEEDFS_VERSION failed (see output above)"
