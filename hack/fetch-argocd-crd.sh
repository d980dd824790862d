#!/usr/bin/env bash
# Fetches Argo CD's real Application CRD from the argo-cd Go module sources (the Go module proxy, with the
# ordinary `go` client: `go mod download`), for the tests that play Argo CD (its controller cannot be built
# here: ../shared/research/gitops-and-triggers.md §10.5). Cached outside the repository, keyed by version; a
# second run is a no-op. Prints the CRD file's path on its last line of stdout.
set -euo pipefail

ARGOCD_VERSION="${ARGOCD_VERSION:-v3.5.7}"
CACHE_ROOT="${NXT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nxt-rollback-operator}"
OUT="$CACHE_ROOT/argocd-crds-${ARGOCD_VERSION}"
CRD="$OUT/application-crd.yaml"

log() { echo "[fetch-argocd-crd] $*" >&2; }
die() { echo "[fetch-argocd-crd] ERROR: $*" >&2; exit 1; }
if [ -s "$CRD" ]; then echo "$CRD"; exit 0; fi
command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go from go.dev and re-run."

mkdir -p "$OUT"
log "go mod download github.com/argoproj/argo-cd/v3@${ARGOCD_VERSION} (the module zip only; nothing is built)"
# Outside any module, so no go.mod of this repository is touched.
DIR="$(cd "$OUT" && GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "github.com/argoproj/argo-cd/v3@${ARGOCD_VERSION}" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -n "$DIR" ] && [ -f "$DIR/manifests/crds/application-crd.yaml" ] || die "manifests/crds/application-crd.yaml not in the module ($DIR)"
cp "$DIR/manifests/crds/application-crd.yaml" "$CRD.tmp"
mv "$CRD.tmp" "$CRD"
log "cached $CRD"
echo "$CRD"
