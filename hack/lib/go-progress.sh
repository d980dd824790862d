# Sourced by the hack/build-*.sh scripts. Defines go_with_progress, which runs a `go build`/`go install` and,
# while it runs, prints every 15 s (through the caller's `log` function) how many of the packages it needs are
# compiled and the elapsed time against what a whole cold build took on a 2-core machine, so a first run is
# not one silent line for minutes.
# The caller defines: log (prints one progress line to stderr), start (epoch seconds the whole build
# started), COLD_TOTAL_S (seconds a cold build of everything the script builds took on 2 cores).
# Args: label, directory, `go list` targets, --, go command arguments.
go_with_progress() {
  local label=$1 dir=$2; shift 2
  local targets=() ; while [ "$1" != "--" ]; do targets+=("$1"); shift; done; shift
  local t0 total out pid built
  t0=$(date +%s)
  log "$label: resolving modules"
  total=$(cd "$dir" && go list -mod=mod -deps "${targets[@]}" 2>/dev/null | wc -l) || total=0
  out=$(mktemp)
  ( cd "$dir" && exec go "$1" -v "${@:2}" ) 2>"$out" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null || break
    built=$(grep -cv '^#\|^go: ' "$out" || true)
    log "$label: $built/$total packages compiled, $(( $(date +%s) - t0 ))s; all binaries $(( $(date +%s) - start ))s of ~${COLD_TOTAL_S}s (a cold build on 2 cores)"
  done
  if ! wait "$pid"; then grep -v '^[a-zA-Z0-9._/-]*$' "$out" >&2 || cat "$out" >&2; rm -f "$out"; return 1; fi
  rm -f "$out"
  log "$label: built in $(( $(date +%s) - t0 ))s"
}
