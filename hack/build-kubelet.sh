#!/usr/bin/env bash
# Builds the kubelet of the real test node (test/env/real-node.ts) from the same wrapper module as the other
# Kubernetes binaries (hack/k8s-bins, see hack/build-test-bins.sh), with the ordinary `go` client.
# Output is cached outside the repository, keyed by the Kubernetes version; a second run is a no-op.
# Prints the binary directory on its last line of stdout. Separate from build-test-bins.sh so that only runs
# with the real node (NXT_REAL_NODE=1, npm run test:e2e) pay for it; CI builds both in its parallel step.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
BUILD_NAME=build-kubelet
# shellcheck source=lib/go-build.sh
source "$(dirname "$0")/lib/go-build.sh"
OUT="${KUBELET_BIN_DIR:-$CACHE_ROOT/bin/kubelet-${K8S_VERSION}}"

# The kubelet on top of the other Kubernetes binaries (their compiled packages in GOCACHE, as in CI, which
# builds it after them): measured 65 s + ~100 s of an interrupted first try = ~165 s under a load of ~15 on
# 2 cores. A build from an empty GOCACHE was not measured (estimate: the apiserver's 452 s scale, ~5-8 min).
COLD_TOTAL_S=165

if [ -x "$OUT/kubelet" ]; then echo "$OUT"; exit 0; fi

command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go >= 1.26 and re-run."
GOV="$(go env GOVERSION | sed 's/^go//')"
case "$GOV" in 1.2[6-9]*|1.[3-9]*) ;; *) die "Go $GOV is too old; k8s $K8S_VERSION needs Go >= 1.26.";; esac
W="$ROOT/hack/k8s-bins"
[ -f "$W/go.mod" ] || die "$W/go.mod is missing (hack/build-test-bins.sh generates it)"
grep -Eq "k8s\.io/kubernetes ${K8S_VERSION}( |$)" "$W/go.mod" ||
  die "$W/go.mod does not pin k8s.io/kubernetes ${K8S_VERSION}; set K8S_VERSION to the version it pins"

lock_build "$OUT"
if [ -x "$OUT/kubelet" ]; then echo "$OUT"; exit 0; fi
export CGO_ENABLED=0
MINOR="$(echo "$K8S_VERSION" | cut -d. -f2)"
start=$(date +%s)
LDF="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDF="$LDF -X $p.gitVersion=${K8S_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${MINOR} -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
log "building kubelet $K8S_VERSION"
go_with_progress "kubelet $K8S_VERSION" "$W" k8s.io/kubernetes/cmd/kubelet -- \
  build -mod=mod -trimpath -ldflags "$LDF" -o "$OUT/kubelet.tmp" k8s.io/kubernetes/cmd/kubelet ||
  die "building the kubelet $K8S_VERSION failed (see output above)"
mv "$OUT/kubelet.tmp" "$OUT/kubelet"
log "done in $(( $(date +%s) - start ))s -> $OUT"
echo "$OUT"
