#!/usr/bin/env bash
# Runs the enhanced fan-out decoding benchmarks and prints each as a ratio of its baseline in
# the same run: the event-stream decoder against zlib's CRC32 of the same bytes, and a
# SubscribeToShardEvent's parse against the GetRecords parse of the same 1,000 records.
# Usage: bench/run_fanout_bench.sh [extra Google Benchmark flags]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
source bench/gbench_ratios.sh
gbench_ratios shardline_fanout_bench - BM_Crc32Baseline=BM_Crc32Baseline \
  BM_EventStreamDecode=BM_Crc32Baseline BM_GetRecordsParse=BM_GetRecordsParse \
  BM_SubscribeEventParse=BM_GetRecordsParse -- "$@"
