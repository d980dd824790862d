#!/usr/bin/env bash
# Builds the real SeaweedFS `weed` binary the S3 tests run as their object store (Apache-2.0), from the Go
# module proxy with the ordinary `go` client, through the wrapper module in hack/seaweedfs/ (it requires
# github.com/seaweedfs/seaweedfs as a `tool` and repeats its non-local `replace`, which `go install
# pkg@version` refuses to honour). Output is cached outside the repository, keyed by the SeaweedFS version;
# a second run is a no-op. Prints the binary's path on its last line of stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="$ROOT/hack/seaweedfs"
CACHE_ROOT="${NXT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nxt-rollback-operator}"

log() { echo "[build-seaweedfs] $*" >&2; }
die() { echo "[build-seaweedfs] ERROR: $*" >&2; exit 1; }
# shellcheck source=lib/go-progress.sh
source "$ROOT/hack/lib/go-progress.sh"
COLD_TOTAL_S=2344

SEAWEEDFS_VERSION="$(sed -n 's/^[[:space:]]*\(require \)\{0,1\}github.com\/seaweedfs\/seaweedfs \(v[^ ]*\).*/\2/p' "$SRC/go.mod")"
[ -n "$SEAWEEDFS_VERSION" ] || die "hack/seaweedfs/go.mod does not require github.com/seaweedfs/seaweedfs"
OUT="${SEAWEEDFS_BIN_DIR:-$CACHE_ROOT/bin/seaweedfs-${SEAWEEDFS_VERSION}}"
BIN="$OUT/weed"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go >= 1.26.6 from go.dev and re-run."
GOV="$(go env GOVERSION | sed 's/^go//')"
case "$GOV" in 1.26.[6-9]*|1.26.[1-9][0-9]*|1.2[7-9]*|1.[3-9]*) ;; *) die "Go $GOV is too old; SeaweedFS $SEAWEEDFS_VERSION needs Go >= 1.26.6.";; esac
mkdir -p "$OUT"
# One build at a time (two test runs may start at once); the second finds the first one's result.
exec 9>"$OUT/.build.lock"
flock 9
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
start=$(date +%s)
log "building SeaweedFS weed $SEAWEEDFS_VERSION (a cold build takes ~${COLD_TOTAL_S}s on 2 cores)"
# At the lowest CPU priority (the machine may be running tests).
export -f log go_with_progress
export start COLD_TOTAL_S
nice -n 19 bash -c 'go_with_progress "$@"' _ "seaweedfs weed" "$SRC" github.com/seaweedfs/seaweedfs/weed -- \
  build -trimpath -ldflags "-s -w" -o "$BIN.tmp" github.com/seaweedfs/seaweedfs/weed ||
  die "building SeaweedFS $SEAWEEDFS_VERSION failed (see output above)"
mv "$BIN.tmp" "$BIN"
log "done in $(( $(date +%s) - start ))s -> $BIN"
echo "$BIN"
