#!/usr/bin/env bash
# Builds the real Kubernetes binaries the test harness runs (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, helm) from the Go module proxy with the ordinary `go` client.
# Output is cached outside the repository, keyed by versions; a second run is a no-op.
# Prints the binary directory on its last line of stdout.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
BUILD_NAME=build-test-bins
# ROOT, CACHE_ROOT, log, die and go_with_progress (which uses start and COLD_TOTAL_S from here).
# shellcheck source=lib/go-build.sh
source "$(dirname "$0")/lib/go-build.sh"
OUT="${K8S_BIN_DIR:-$CACHE_ROOT/bin/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}}"
COLD_TOTAL_S=452

all_present() {
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok helm; do
    [ -x "$OUT/$b" ] || return 1
  done
  [ -f "$OUT/kwok-stages.yaml" ] || return 1
}
if all_present; then echo "$OUT"; exit 0; fi

command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go >= 1.26 (e.g. 'apt-get install golang-go' is too old; use the Go toolchain from go.dev) and re-run."
GOV="$(go env GOVERSION | sed 's/^go//')"
case "$GOV" in 1.2[6-9]*|1.[3-9]*) ;; *) die "Go $GOV is too old; k8s $K8S_VERSION needs Go >= 1.26.";; esac
if ! go list -m -json "k8s.io/kubernetes@${K8S_VERSION}" >/dev/null 2>&1; then
  die "cannot reach the Go module proxy ($(go env GOPROXY)) for k8s.io/kubernetes@${K8S_VERSION}. Check network access to the Go module proxy or set GOPROXY."
fi

mkdir -p "$OUT"
export CGO_ENABLED=0
STAGING="v0.${K8S_VERSION#v1.}"
MINOR="$(echo "$K8S_VERSION" | cut -d. -f2)"
start=$(date +%s)

# --- Kubernetes: wrapper module with replaces for every staging module (see hack/k8s-bins/go.mod) ---
W="$ROOT/hack/k8s-bins"
if [ ! -f "$W/go.mod" ]; then
  log "generating $W/go.mod for $K8S_VERSION"
  mkdir -p "$W"
  ( cd "$(mktemp -d)" && go mod download "k8s.io/kubernetes@${K8S_VERSION}" )
  UP="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/${K8S_VERSION}.mod"
  ( cd "$W"
    go mod init example.invalid/k8s-bins
    go mod edit -go="$(awk '$1=="go"{print $2; exit}' "$UP")"
    { grep -E '^godebug ' "$UP" || true; } | while read -r _ kv; do go mod edit -godebug="$kv"; done
    { grep -oE '^[[:space:]]+k8s\.io/[A-Za-z0-9._/-]+ v0\.0\.0([[:space:]]|$)' "$UP" | awk '{print $1}' || true
      sed -n 's|^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*|\1|p' "$UP"; } | sort -u |
      while read -r m; do go mod edit -replace="${m}=${m}@${STAGING}"; done
    go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@${K8S_VERSION}" \
      "k8s.io/kubernetes/cmd/kube-controller-manager@${K8S_VERSION}" \
      "k8s.io/kubernetes/cmd/kube-scheduler@${K8S_VERSION}" \
      "k8s.io/kubernetes/cmd/kubectl@${K8S_VERSION}" \
      "k8s.io/kubernetes/cmd/kubelet@${K8S_VERSION}" ) # the kubelet: hack/build-kubelet.sh
fi
LDF="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDF="$LDF -X $p.gitVersion=${K8S_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${MINOR} -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
K8S_CMDS=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $K8S_VERSION (the longest step)"
go_with_progress "kubernetes $K8S_VERSION" "$W" "${K8S_CMDS[@]}" -- \
  build -mod=mod -trimpath -ldflags "$LDF" -o "$OUT/" "${K8S_CMDS[@]}" ||
  die "building Kubernetes $K8S_VERSION failed (see output above)"

# --- etcd: wrapper module without etcd's own replace directives ---
E="$ROOT/hack/etcd-bin"
if [ ! -f "$E/go.mod" ]; then
  log "generating $E/go.mod for etcd $ETCD_VERSION"
  mkdir -p "$E"
  ( cd "$E" && go mod init example.invalid/etcd-bin && go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" )
fi
log "building etcd $ETCD_VERSION"
go_with_progress "etcd $ETCD_VERSION" "$E" go.etcd.io/etcd/server/v3 -- \
  build -mod=mod -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3 || die "building etcd failed"

# --- kwok and helm: plain go install (their go.mod files have no replace directives) ---
log "building kwok $KWOK_VERSION"
GOBIN="$OUT" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}" || die "building kwok failed"
log "building helm $HELM_VERSION"
GOBIN="$OUT" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" || die "building helm failed"

# --- kwok's fast stages, assembled from the module cache (nothing of kwok is copied into the repo) ---
S="$(go env GOMODCACHE)/sigs.k8s.io/kwok@${KWOK_VERSION}/kustomize/stage"
{ for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [ -f "$S/$f" ] || die "kwok stage $S/$f not found"
    cat "$S/$f"; printf '\n---\n'; done; } > "$OUT/kwok-stages.yaml.tmp"
mv "$OUT/kwok-stages.yaml.tmp" "$OUT/kwok-stages.yaml"

log "done in $(( $(date +%s) - start ))s -> $OUT"
echo "$OUT"
