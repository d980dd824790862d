#!/usr/bin/env bash
# Builds the static programs of the real test node's images (test/env/real-node.ts): hack/node-images/pause
# (the sandbox image) and hack/node-images/probe (a tiny test image). Output is cached outside the repository,
# keyed by a hash of the sources, so an edit rebuilds and a second run is a no-op (a cold build takes a few
# seconds). Prints the binary directory on its last line of stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="$ROOT/hack/node-images"
CACHE_ROOT="${NXT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nxt-rollback-operator}"

log() { echo "[build-node-images] $*" >&2; }
die() { echo "[build-node-images] ERROR: $*" >&2; exit 1; }

SUM="$(cd "$SRC" && find . -type f \( -name '*.go' -o -name go.mod \) | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)"
OUT="$CACHE_ROOT/bin/node-images-${SUM}"
if [ -x "$OUT/pause" ] && [ -x "$OUT/probe" ]; then echo "$OUT"; exit 0; fi

command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go >= 1.26 from go.dev and re-run."
mkdir -p "$OUT"
exec 9>"$OUT/.build.lock"
flock 9
if [ -x "$OUT/pause" ] && [ -x "$OUT/probe" ]; then echo "$OUT"; exit 0; fi
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
start=$(date +%s)
log "building the pause and probe programs"
for p in pause probe; do
  ( cd "$SRC" && go build -trimpath -ldflags "-s -w" -o "$OUT/$p.tmp" "./$p" ) || die "building hack/node-images/$p failed"
  mv "$OUT/$p.tmp" "$OUT/$p"
done
log "done in $(( $(date +%s) - start ))s -> $OUT"
echo "$OUT"
