#!/usr/bin/env bash
# A/B of the MultiLangDaemon's CPU per record between two git revisions, measured in the same
# run: each revision's shardline_multilang_bench is built in a worktree of its own, one loopback
# stub serves both, and their runs alternate (A, B, A, B, ...) so that both see the same phases
# of a noisy machine. Prints every run and the medians.
#   bench/multilang_ab.sh REV_A REV_B [RUNS] [SECONDS] [CHILD]
# CHILD defaults to the Node.js aws-kcl processor that writes each record. Example, the
# zero-copy messages and the GetRecords compaction (docs/performance.md):
#   bench/multilang_ab.sh b58f136~1 b58f136
#   bench/multilang_ab.sh 47ab590~1 47ab590
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if (($# < 2)); then
  echo "usage: bench/multilang_ab.sh REV_A REV_B [RUNS] [SECONDS] [CHILD]" >&2
  exit 2
fi
rev_a=$1 rev_b=$2 runs=${3:-6} secs=${4:-5}
child=${5:-"node $ROOT/tests/multilang/node_processor.js --out /dev/null"}
# shellcheck source=bench/lib.sh
source bench/lib.sh
scripts/build release shardline_stub_kinesis >/dev/null

trees=()
remove_trees() {
  for t in "${trees[@]}"; do git worktree remove --force "$t" >/dev/null 2>&1 || true; done
  cleanup
}
trap remove_trees EXIT

build_rev() { # build_rev REV -> the bench binary's path on stdout
  local short tree
  short=$(git rev-parse --short "$1")
  tree="$work/tree-$short"
  git worktree add --detach -f "$tree" "$1" >/dev/null 2>&1
  trees+=("$tree")
  cmake -S "$tree" -B "$tree/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDLINE_WERROR=ON \
    -DSHARDLINE_BUILD_TESTS=OFF >/dev/null
  cmake --build "$tree/build" -j2 --target shardline_multilang_bench >/dev/null
  echo "$tree/build/bin/shardline_multilang_bench"
}
echo "building $rev_a and $rev_b ..."
bin_a=$(build_rev "$rev_a")
bin_b=$(build_rev "$rev_b")

start_stub ab --shards 1 --records 20 --aggregate 500 --record-size 100 --full-range-shards
results="$work/ab.jsonl"
for ((i = 0; i < runs; ++i)); do
  for side in A B; do
    bin=$bin_a
    [[ $side == B ]] && bin=$bin_b
    "$bin" --endpoint "$STUB_URL" --seconds "$secs" --label "$side" --child "$child" |
      tee -a "$results"
  done
done
python3 - "$results" "$rev_a" "$rev_b" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print()
for side, rev in (("A", sys.argv[2]), ("B", sys.argv[3])):
    r = [x for x in rows if x["tool"] == side]
    med = lambda k: statistics.median(x[k] for x in r)
    print(f"{side} {rev:>12}: daemon CPU median {med('daemonCpuUsPerRecord'):.3f} us/record "
          f"(min {min(x['daemonCpuUsPerRecord'] for x in r):.3f}), child {med('childCpuUsPerRecord'):.3f}, "
          f"daemon/child {med('daemonToChildCpu'):.3f}, {med('recordsPerSec'):,.0f} records/s")
PY
