# Sourced by the hack/build-*.sh scripts, after they set BUILD_NAME (the prefix of their stderr lines, e.g.
# build-flux). Sets ROOT (the repository) and CACHE_ROOT (where builds are cached, outside the repository),
# defines log and die (stderr, prefixed [$BUILD_NAME]), go_with_progress (lib/go-progress.sh) and the steps
# below that several scripts share.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE_ROOT="${NXT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nxt-rollback-operator}"

log() { echo "[$BUILD_NAME] $*" >&2; }
die() { echo "[$BUILD_NAME] ERROR: $*" >&2; exit 1; }
# shellcheck source=go-progress.sh
source "$ROOT/hack/lib/go-progress.sh"

# lock_build DIR: creates DIR and holds DIR/.build.lock (fd 9) until the script exits. One build at a time
# (two test runs may start at once); the caller checks for the result again after it, as the second run finds
# the first one's.
lock_build() {
  mkdir -p "$1"
  exec 9>"$1/.build.lock"
  flock 9
}

# nice_go_with_progress ARGS...: go_with_progress ARGS at the lowest CPU priority (the machine may be running
# tests), in a child bash: nice runs programs, not functions.
nice_go_with_progress() {
  export BUILD_NAME start COLD_TOTAL_S
  export -f log go_with_progress
  nice -n 19 bash -c 'go_with_progress "$@"' _ "$@"
}

# build_go_binary BIN LABEL DIR PKG MESSAGE FAILURE: builds the Go package PKG of the module in DIR into the
# executable BIN (no cgo, the local toolchain, go.mod read-only, stripped), under the lock of BIN's directory
# and only if another run has not built it meanwhile; progress lines are labelled LABEL. Logs MESSAGE first;
# dies with FAILURE. Prints BIN on stdout.
build_go_binary() {
  local bin=$1 label=$2 dir=$3 pkg=$4 message=$5 failure=$6
  lock_build "$(dirname "$bin")"
  if [ -x "$bin" ]; then echo "$bin"; return 0; fi
  export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
  start=$(date +%s)
  log "$message"
  nice_go_with_progress "$label" "$dir" "$pkg" -- \
    build -trimpath -ldflags "-s -w" -o "$bin.tmp" "$pkg" || die "$failure"
  mv "$bin.tmp" "$bin"
  log "done in $(( $(date +%s) - start ))s -> $bin"
  echo "$bin"
}
