#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) and run each for a short time from its seed
# corpus. Usage: tests/fuzz/smoke.sh [SECONDS_PER_TARGET]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
seconds=${1:-20}
scripts/build fuzz fuzz_deaggregate fuzz_properties fuzz_codecs fuzz_get_records fuzz_event_stream
work="$ROOT/.fuzz"
mkdir -p "$work"
status=0
declare -A max_len=([deaggregate]=65536 [properties]=4096 [codecs]=8192 [get_records]=8192 [event_stream]=4096)
for t in deaggregate properties codecs get_records event_stream; do
  mkdir -p "$work/$t"
  echo "fuzz_$t: ${seconds}s"
  if ! build-fuzz/bin/fuzz_"$t" -max_total_time="$seconds" -max_len="${max_len[$t]}" -print_final_stats=1 \
      -artifact_prefix="$work/$t-" "$work/$t" "tests/fuzz/corpus/$t" >"$work/$t.log" 2>&1; then
    echo "fuzz_$t FAILED; last lines of $work/$t.log:"
    tail -40 "$work/$t.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$work/$t.log" | tail -2
  fi
done
exit $status
