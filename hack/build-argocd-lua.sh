#!/usr/bin/env bash
# Builds hack/argocd-lua: the runner of the Argo CD health-check and action tests under
# docs/integrations/argocd/ (gopher-lua, loaded the way Argo CD loads resource customizations). Output is
# cached outside the repository, keyed by the gopher-lua version and a hash of the program's sources, so an
# edit rebuilds and a second run is a no-op. Prints the binary's path on its last line of stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="$ROOT/hack/argocd-lua"
CACHE_ROOT="${NXT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nxt-rollback-operator}"

log() { echo "[build-argocd-lua] $*" >&2; }
die() { echo "[build-argocd-lua] ERROR: $*" >&2; exit 1; }
# shellcheck source=lib/go-progress.sh
source "$ROOT/hack/lib/go-progress.sh"
COLD_TOTAL_S=60

LUA_VERSION="$(sed -n 's/^[[:space:]]*github.com\/yuin\/gopher-lua \(v[^ ]*\).*/\1/p' "$SRC/go.mod")"
[ -n "$LUA_VERSION" ] || die "hack/argocd-lua/go.mod does not require github.com/yuin/gopher-lua"
SUM="$(cat "$SRC"/go.mod "$SRC"/go.sum "$SRC"/*.go | sha256sum | cut -c1-12)"
OUT="${ARGOCD_LUA_BIN_DIR:-$CACHE_ROOT/bin/argocd-lua-gopher-lua-${LUA_VERSION}-${SUM}}"
BIN="$OUT/argocd-lua"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go >= 1.26 from go.dev and re-run."
mkdir -p "$OUT"
# One build at a time (two test runs may start at once); the second finds the first one's result.
exec 9>"$OUT/.build.lock"
flock 9
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
start=$(date +%s)
log "building argocd-lua (gopher-lua $LUA_VERSION; a cold build takes ~${COLD_TOTAL_S}s on 2 cores)"
# At the lowest CPU priority (the machine may be running tests).
export -f log go_with_progress
export start COLD_TOTAL_S
nice -n 19 bash -c 'go_with_progress "$@"' _ "argocd-lua" "$SRC" . -- \
  build -trimpath -ldflags "-s -w" -o "$BIN.tmp" . || die "building hack/argocd-lua failed (see output above)"
mv "$BIN.tmp" "$BIN"
log "done in $(( $(date +%s) - start ))s -> $BIN"
echo "$BIN"
