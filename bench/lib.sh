# Shared by the end-to-end benchmark scripts (source it after `cd "$ROOT"`): a work directory and
# background processes that are stopped by PID on exit, and the loopback stub endpoint.
BIN=build/bin
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# start_stub NAME STUB-ARGS... -> sets STUB_URL (the stub runs until the script exits)
start_stub() {
  local out="$work/stub.$1.out"
  shift
  "$BIN/shardline_stub_kinesis" --port 0 "$@" >"$out" 2>/dev/null &
  pids+=($!)
  local deadline=$((SECONDS + 20))
  until grep -q LISTENING "$out" 2>/dev/null; do
    ((SECONDS < deadline)) || { echo "stub did not start" >&2; exit 1; }
    sleep 0.05
  done
  STUB_URL="http://127.0.0.1:$(awk '/LISTENING/ {print $2}' "$out")"
}
