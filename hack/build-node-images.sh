#!/usr/bin/env bash
# Builds the static programs of the real test node's images (test/env/real-node.ts): hack/node-images/pause
# (the sandbox image) and hack/node-images/probe (a tiny test image). Output is cached outside the repository,
# keyed by a hash of the sources, so an edit rebuilds and a second run is a no-op (a cold build takes a few
# seconds). Prints the binary directory on its last line of stdout.
set -euo pipefail

BUILD_NAME=build-node-images
# shellcheck source=lib/go-build.sh
source "$(dirname "$0")/lib/go-build.sh"
SRC="$ROOT/hack/node-images"

SUM="$(cd "$SRC" && find . -type f \( -name '*.go' -o -name go.mod \) | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)"
OUT="$CACHE_ROOT/bin/node-images-${SUM}"
if [ -x "$OUT/pause" ] && [ -x "$OUT/probe" ]; then echo "$OUT"; exit 0; fi

command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go >= 1.26 from go.dev and re-run."
lock_build "$OUT"
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
