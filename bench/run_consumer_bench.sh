#!/usr/bin/env bash
# Consumer benchmarks against the loopback stub endpoint (not an emulator): user records/s and
# CPU per record delivered to a no-op processor (100-byte user records in KPL aggregates of
# 500), 1, 64 and 1000 shards on one worker process with a fixed thread count, lease-store
# operations per held lease, peak memory; and the Node.js baseline measured in the same run.
#   bench/run_consumer_bench.sh [--quick]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
quick=0
[[ ${1:-} == --quick ]] && quick=1
scripts/build release shardline_consumer_bench shardline_stub_kinesis >/dev/null
# shellcheck source=bench/lib.sh
source bench/lib.sh

secs=15
((quick)) && secs=2
results="$work/results.jsonl"
for shards in 1 64 1000; do
  ((quick)) && [[ $shards == 1000 ]] && continue
  start_stub "$shards" --shards "$shards" --records 20 --aggregate 500 --record-size 100 \
    --full-range-shards
  "$BIN/shardline_consumer_bench" --endpoint "$STUB_URL" --shards "$shards" --seconds "$secs" \
    --threads 2 | sed 's/^{/{"tool":"shardline worker",/' | tee -a "$results"
  if [[ $shards == 1 ]]; then
    node bench/consumer_node.js "$STUB_URL" "$secs" 2>/dev/null | tee -a "$results"
  fi
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print()
print(f"{'tool':44} {'shards':>6} {'records/s':>12} {'CPU us/rec':>10} {'threads':>7} {'peak RSS':>9} {'store ops/lease/s':>17}")
for r in rows:
    thr = r.get("processThreads", "")
    rss = f"{r['peakRssMiB']:.0f} MiB" if "peakRssMiB" in r else ""
    ops = f"{r['leaseStoreOpsPerLeasePerSec']:.3f}" if "leaseStoreOpsPerLeasePerSec" in r else ""
    print(f"{r['tool']:44} {r.get('shards', 1):>6} {r['recordsPerSec']:>12,.0f} {r['cpuUsPerRecord']:>10.3f} {thr:>7} {rss:>9} {ops:>17}")
ours = [r for r in rows if r["tool"] == "shardline worker" and r["shards"] == 1]
base = [r for r in rows if r["tool"] != "shardline worker"]
if ours and base:
    o, b = ours[0], base[0]
    print(f"shardline worker (1 shard) vs {b['tool']}: {o['recordsPerSec'] / b['recordsPerSec']:.1f}x records/s, "
          f"{b['cpuUsPerRecord'] / o['cpuUsPerRecord']:.1f}x less CPU per record")
kcl = 1 / 3.308
for r in rows:
    if "leaseStoreOpsPerLeasePerSec" in r:
        print(f"{r['shards']} shards: {r['leaseStoreOpsPerLeasePerSec']:.3f} coordination lease-store ops per held lease "
              f"per second (renewals, scans, takes; the KCL renews each lease {kcl:.3f} times per second, plus its scans); "
              f"{r['checkpointWritesPerSec']:.1f} checkpoint writes per second")
PY
