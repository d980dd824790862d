#!/usr/bin/env bash
# Builds the real Flux source-controller and kustomize-controller the GitOps integration tests run, from the
# Go module proxy with the ordinary `go` client, through the wrapper modules in hack/flux-bins/<controller>/
# (see the README there). Both build in parallel at the lowest CPU priority. Also copies the controllers'
# CRDs from the module cache next to the binaries. Output is cached outside the repository, keyed by version;
# a second run is a no-op. Prints the directory on its last line of stdout.
set -euo pipefail

FLUX_VERSION="${FLUX_VERSION:-v1.9.6}"
BUILD_NAME=build-flux
# shellcheck source=lib/go-build.sh
source "$(dirname "$0")/lib/go-build.sh"
OUT="${FLUX_BIN_DIR:-$CACHE_ROOT/bin/flux-${FLUX_VERSION}}"
CONTROLLERS=(source-controller kustomize-controller)
COLD_TOTAL_S=570

all_present() {
  for c in "${CONTROLLERS[@]}"; do [ -x "$OUT/$c" ] || return 1; done
  [ -f "$OUT/crds/kustomize.toolkit.fluxcd.io_kustomizations.yaml" ] || return 1
  [ -f "$OUT/crds/source.toolkit.fluxcd.io_gitrepositories.yaml" ] || return 1
}
if all_present; then echo "$OUT"; exit 0; fi

command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go >= 1.26 from go.dev and re-run."
GOV="$(go env GOVERSION | sed 's/^go//')"
case "$GOV" in 1.2[6-9]*|1.[3-9]*) ;; *) die "Go $GOV is too old; Flux $FLUX_VERSION needs Go >= 1.26.";; esac
for c in "${CONTROLLERS[@]}"; do
  grep -q "github.com/fluxcd/$c $FLUX_VERSION" "$ROOT/hack/flux-bins/$c/go.mod" ||
    die "hack/flux-bins/$c/go.mod does not require $c $FLUX_VERSION; update the wrapper module"
done

mkdir -p "$OUT/crds"
lock_build "$OUT"
if all_present; then echo "$OUT"; exit 0; fi
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
start=$(date +%s)
log "building Flux ${CONTROLLERS[*]} $FLUX_VERSION in parallel (a cold build takes ~${COLD_TOTAL_S}s on 2 cores)"
# Each controller in its own `go build`, both at the lowest CPU priority.
pids=()
for c in "${CONTROLLERS[@]}"; do
  nice_go_with_progress "flux $c" "$ROOT/hack/flux-bins/$c" "github.com/fluxcd/$c" -- \
    build -trimpath -ldflags "-s -w" -o "$OUT/$c.tmp" "github.com/fluxcd/$c" &
  pids+=($!)
done
failed=()
for i in "${!CONTROLLERS[@]}"; do wait "${pids[$i]}" || failed+=("${CONTROLLERS[$i]}"); done
[ ${#failed[@]} -eq 0 ] || die "building Flux ${failed[*]} $FLUX_VERSION failed (see output above)"
for c in "${CONTROLLERS[@]}"; do mv "$OUT/$c.tmp" "$OUT/$c"; done

# --- CRDs from the controllers' module sources (nothing of Flux is copied into the repo) ---
MODS="$(go env GOMODCACHE)/github.com/fluxcd"
for f in "$MODS/source-controller@$FLUX_VERSION"/config/crd/bases/source.toolkit.fluxcd.io_*.yaml \
         "$MODS/kustomize-controller@$FLUX_VERSION/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml"; do
  [ -f "$f" ] || die "CRD $f not found in the module cache"
  cp "$f" "$OUT/crds/"
  chmod u+w "$OUT/crds/$(basename "$f")"
done

log "done in $(( $(date +%s) - start ))s -> $OUT"
echo "$OUT"
