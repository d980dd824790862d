#!/usr/bin/env bash
# Builds hack/argocd-lua: the runner of the Argo CD health-check and action tests under
# docs/integrations/argocd/ (gopher-lua, loaded the way Argo CD loads resource customizations). Output is
# cached outside the repository, keyed by the gopher-lua version and a hash of the program's sources, so an
# edit rebuilds and a second run is a no-op. Prints the binary's path on its last line of stdout.
set -euo pipefail

BUILD_NAME=build-argocd-lua
# shellcheck source=lib/go-build.sh
source "$(dirname "$0")/lib/go-build.sh"
SRC="$ROOT/hack/argocd-lua"
COLD_TOTAL_S=60

LUA_VERSION="$(sed -n 's/^[[:space:]]*github.com\/yuin\/gopher-lua \(v[^ ]*\).*/\1/p' "$SRC/go.mod")"
[ -n "$LUA_VERSION" ] || die "hack/argocd-lua/go.mod does not require github.com/yuin/gopher-lua"
SUM="$(cat "$SRC"/go.mod "$SRC"/go.sum "$SRC"/*.go | sha256sum | cut -c1-12)"
OUT="${ARGOCD_LUA_BIN_DIR:-$CACHE_ROOT/bin/argocd-lua-gopher-lua-${LUA_VERSION}-${SUM}}"
BIN="$OUT/argocd-lua"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go >= 1.26 from go.dev and re-run."
build_go_binary "$BIN" "argocd-lua" "$SRC" . \
  "building argocd-lua (gopher-lua $LUA_VERSION; a cold build takes ~${COLD_TOTAL_S}s on 2 cores)" \
  "building hack/argocd-lua failed (see output above)"
