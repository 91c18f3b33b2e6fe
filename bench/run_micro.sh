#!/usr/bin/env bash
# Runs the aggregation micro-benchmarks and prints each one's throughput as a ratio of the
# MD5-only baseline measured in the same run (CPU time, one core).
# Usage: bench/run_micro.sh [extra Google Benchmark flags]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/build release shardline_micro_bench >/dev/null
json=$(mktemp)
trap 'rm -f "$json"' EXIT
build/bin/shardline_micro_bench --benchmark_min_time=1 --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true --benchmark_format=json "$@" > "$json"
python3 - "$json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rows = {b["run_name"]: b for b in d["benchmarks"] if b.get("aggregate_name") == "median"}
base = rows["BM_Md5Baseline"]["bytes_per_second"]
print(f"{'benchmark':32} {'MB/s':>9} {'records/s':>12} {'vs MD5':>7}")
for name, b in rows.items():
    mbs = b["bytes_per_second"] / 1e6
    rps = b.get("items_per_second")
    rtext = "" if rps is None else f"{rps:,.0f}"
    print(f"{name:32} {mbs:9.1f} {rtext:>12} {b['bytes_per_second'] / base:7.2f}")
print(f"(median of 3, CPU time; host: {d['context']['num_cpus']} CPUs @ {d['context']['mhz_per_cpu']} MHz)")
PY
