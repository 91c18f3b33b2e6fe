#!/usr/bin/env bash
# Producer benchmarks against the loopback stub endpoint (not an emulator), with the baselines
# measured in the same run, and the memory bound under back-pressure.
#   bench/run_producer_bench.sh [--quick]
# Prints JSON lines and a summary table; the stub (and the proxy) are stopped by PID.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
quick=0
[[ ${1:-} == --quick ]] && quick=1
scripts/build release shardline_producer_bench shardline_stub_kinesis >/dev/null
# shellcheck source=bench/lib.sh
source bench/lib.sh

n100=2000000 n1k=500000 nplain=500000 nbase=200000
((quick)) && { n100=200000; n1k=50000; nplain=50000; nbase=20000; }
results="$work/results.jsonl"
for shards in 1 64; do
  start_stub "$shards" --shards "$shards" --route-by-hash-key
  for args in "--size 100 --records $n100" "--size 1024 --records $n1k" \
              "--size 100 --records $nplain --no-aggregation" "--size 1024 --records $nplain --no-aggregation"; do
    # shellcheck disable=SC2086
    "$BIN/shardline_producer_bench" --endpoint "$STUB_URL" --threads 2 $args \
      | sed "s/^{/{\"tool\":\"shardline\",\"shards\":$shards,/" | tee -a "$results"
  done
done
# Baselines against the same stub (64 shards; they do not predict shards).
python3 bench/producer_boto3.py "$STUB_URL" "$nbase" 100 | tee -a "$results"
node bench/producer_node.js "$STUB_URL" "$nbase" 100 | tee -a "$results"

# Memory under back-pressure: a proxy adding 200 ms per call in front of the stub, a 32 MiB
# cap on outstanding bytes, and ten times that much data pushed through.
proxy_out="$work/proxy.out"
node tests/servers/fault_proxy.js --upstream "$STUB_URL" --port 0 --latency-ms 200 >"$proxy_out" 2>/dev/null &
pids+=($!)
deadline=$((SECONDS + 10))
until grep -q LISTENING "$proxy_out" 2>/dev/null; do
  ((SECONDS < deadline)) || { echo "proxy did not start" >&2; exit 1; }
  sleep 0.05
done
PROXY_URL="http://127.0.0.1:$(awk '/LISTENING/ {print $2}' "$proxy_out")"
cap=$((32 * 1024 * 1024))
mem_records=$(( ((quick)) ? 40000 : 320000 ))
"$BIN/shardline_producer_bench" --endpoint "$PROXY_URL" --threads 2 --size 1024 --records "$mem_records" \
  --max-outstanding-bytes "$cap" --latency-note 200 \
  | sed 's/^{/{"tool":"shardline (back-pressure)","shards":64,/' | tee -a "$results"

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print()
print(f"{'tool':44} {'shards':>6} {'size':>5} {'agg':>4} {'records/s':>12} {'CPU us/rec':>10} {'peak RSS':>9}")
for r in rows:
    agg = "" if "aggregation" not in r else ("on" if r["aggregation"] else "off")
    rss = f"{r['peakRssMiB']:.0f} MiB" if "peakRssMiB" in r else ""
    print(f"{r['tool']:44} {r.get('shards', 64):>6} {r['size']:>5} {agg:>4} {r['recordsPerSecond']:>12,} {r['cpuMicrosPerRecord']:>10.2f} {rss:>9}")
base = {r["tool"]: r for r in rows if r["tool"] != "shardline" and "back-pressure" not in r["tool"]}
ours = [r for r in rows if r["tool"] == "shardline" and r["size"] == 100 and r["aggregation"] and r["shards"] == 64]
if ours:
    o = ours[0]
    for name, b in base.items():
        print(f"shardline (100 B, aggregated, 64 shards) vs {name}: {o['recordsPerSecond'] / b['recordsPerSecond']:.1f}x records/s, "
              f"{b['cpuMicrosPerRecord'] / o['cpuMicrosPerRecord']:.1f}x less CPU per record")
bp = [r for r in rows if "back-pressure" in r["tool"]]
if bp:
    r = bp[0]
    print(f"back-pressure: {r['records'] * r['size'] / 2**20:.0f} MiB pushed through a {r['maxOutstandingBytes'] / 2**20:.0f} MiB cap "
          f"(200 ms per call): peak RSS {r['peakRssMiB']:.0f} MiB")
PY
