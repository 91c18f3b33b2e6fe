#!/usr/bin/env bash
# Runs the aggregation micro-benchmarks and prints each one's throughput as a ratio of the
# MD5-only baseline measured in the same run (CPU time, one core).
# Usage: bench/run_micro.sh [extra Google Benchmark flags]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
source bench/gbench_ratios.sh
gbench_ratios shardline_micro_bench BM_Md5Baseline -- "$@"
