#!/usr/bin/env bash
# Runs the enhanced fan-out decoding benchmarks and prints each as a ratio of its baseline in
# the same run: the event-stream decoder against zlib's CRC32 of the same bytes, and a
# SubscribeToShardEvent's parse against the GetRecords parse of the same 1,000 records.
# Usage: bench/run_fanout_bench.sh [extra Google Benchmark flags]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/build release shardline_fanout_bench >/dev/null
json=$(mktemp)
trap 'rm -f "$json"' EXIT
build/bin/shardline_fanout_bench --benchmark_min_time=1 --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true --benchmark_format=json "$@" > "$json"
python3 - "$json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rows = {b["run_name"]: b for b in d["benchmarks"] if b.get("aggregate_name") == "median"}
pairs = [("BM_EventStreamDecode", "BM_Crc32Baseline"), ("BM_SubscribeEventParse", "BM_GetRecordsParse")]
print(f"{'benchmark':26} {'MB/s':>9} {'records/s':>12}   vs baseline")
for name, b in rows.items():
    rps = b.get("items_per_second")
    rtext = "" if rps is None else f"{rps:,.0f}"
    base = dict(pairs).get(name)
    ratio = "" if base is None else f"{b['bytes_per_second'] / rows[base]['bytes_per_second']:.2f} of {base}"
    print(f"{name:26} {b['bytes_per_second'] / 1e6:9.1f} {rtext:>12}   {ratio}")
print(f"(median of 3, CPU time; host: {d['context']['num_cpus']} CPUs @ {d['context']['mhz_per_cpu']} MHz)")
PY
