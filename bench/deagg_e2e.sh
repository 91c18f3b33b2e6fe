#!/usr/bin/env bash
# End-to-end `shardline deagg` on a large file of base64 aggregates, compared in the same run
# with the Node.js library aws-kinesis-agg (npm, pinned in package.json) on the same file.
# Usage: bench/deagg_e2e.sh [AGGREGATES]   (default 4000 aggregates, ~273 MB of base64)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
n=${1:-4000}
scripts/build release shardline_cli >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/gen_aggregates.py "$n" > "$work/in.b64"
bytes=$(stat -c %s "$work/in.b64")
cat "$work/in.b64" > /dev/null  # warm the page cache

run() { # run CMD...: best wall time of 3 runs, output to a file; prints seconds
  local best=999999 t0 t1
  for _ in 1 2 3; do
    t0=$(date +%s.%N)
    "$@" > "$work/out" 2>/dev/null
    t1=$(date +%s.%N)
    best=$(python3 -c "print(min($best, $t1 - $t0))")
  done
  echo "$best"
}
t_sl=$(run build/bin/shardline deagg "$work/in.b64")
lines_sl=$(build/bin/shardline deagg "$work/in.b64" | wc -l)
t_node=$(run node bench/node_deagg.js "$work/in.b64")
lines_node=$(node bench/node_deagg.js "$work/in.b64" | wc -l)
python3 - "$bytes" "$t_sl" "$t_node" "$lines_sl" "$lines_node" <<'PY'
import sys
b, ts, tn, ls, ln = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"input: {b/1e6:.1f} MB of base64, {ls:,} user records (node: {ln:,})")
print(f"shardline deagg     {ts:6.2f} s  {b/ts/1e6:7.1f} MB/s  {ls/ts:12,.0f} records/s")
print(f"aws-kinesis-agg     {tn:6.2f} s  {b/tn/1e6:7.1f} MB/s  {ln/tn:12,.0f} records/s")
print(f"ratio (shardline / aws-kinesis-agg): {tn/ts:.1f}x")
PY
