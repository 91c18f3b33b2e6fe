#!/usr/bin/env bash
# AWS-layer benchmarks (issue 3): the Kinesis client against a loopback stub endpoint, with the
# boto3 client and the OpenSSL base64 + SHA-256 floor measured in the same run.
#
# Starts bench/stub_kinesis.cc (shardline_stub_kinesis) on CPU 0, runs shardline_aws_bench and
# bench/boto3_baseline.py on CPU 1, stops the stub by PID (also on failure or Ctrl-C) and prints
# markdown tables with the ratios (bench/aws_bench_report.py).
#
# Usage: bench/run_aws_bench.sh [--duration SECONDS] [--reps N] [--max-other FRACTION]
#   --duration  seconds per measured run (default 2); --reps  runs per figure, median (3);
#   --max-other a run during which other processes used more than this fraction of a CPU
#               (default 0.05) is repeated, up to 5 x reps runs (-1: keep every run).
# A quick smoke run (no figures worth keeping): --duration 0.05 --reps 1 --max-other -1.
# Environment: SHARDLINE_BENCH_BUILD_DIR=DIR builds and runs from DIR (configured Release,
#   tests off) instead of `scripts/build release` (build/).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

duration=2
reps=3
max_other=0.05
while (($#)); do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --max-other) max_other=$2; shift 2 ;;
    *) echo "usage: $0 [--duration SECONDS] [--reps N] [--max-other FRACTION]" >&2; exit 2 ;;
  esac
done

targets=(shardline_stub_kinesis shardline_aws_bench)
if [[ -n ${SHARDLINE_BENCH_BUILD_DIR:-} ]]; then
  build=$SHARDLINE_BENCH_BUILD_DIR
  cmake -S "$ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDLINE_WERROR=ON \
    -DSHARDLINE_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" -j2 --target "${targets[@]}" >/dev/null
else
  build=$ROOT/build
  scripts/build release "${targets[@]}" >/dev/null
fi
bin=$build/bin

# Stub on CPU 0, clients on CPU 1 (when there are two CPUs and taskset). When allowed (root or
# CAP_SYS_NICE) each runs in its own session whose scheduling autogroup is set to nice -19, so
# that other work on a shared machine rarely takes their CPU: with autogroups, a plain nice
# value only ranks processes within one session.
pin=0 boost=0
if command -v taskset >/dev/null && (($(nproc) >= 2)); then pin=1; fi
if command -v setsid >/dev/null && [[ $(nice -n -19 nice 2>/dev/null) == -19 ]]; then boost=1; fi
setup="$( ((pin)) && echo "stub on CPU 0, client on CPU 1" || echo "not pinned")"
setup+="$( ((boost)) && echo ", both at (autogroup) nice -19" || echo ", normal priority")"

# launch CPU COMMAND...: starts COMMAND in the background (pinned, boosted); $launched = its PID.
# A script has no job control, so the job is not a process-group leader and setsid execs in
# place: the PID is the command's own.
launch() {
  local cpu=$1
  shift
  local cmd=("$@")
  ((pin)) && cmd=(taskset -c "$cpu" "${cmd[@]}")
  if ((boost)); then
    # shellcheck disable=SC2016
    setsid bash -c '{ echo -19 >/proc/self/autogroup; } 2>/dev/null; exec nice -n -19 "$@"' _ \
      "${cmd[@]}" &
  else
    "${cmd[@]}" &
  fi
  launched=$!
}

work=$(mktemp -d)
stub_pid='' client_pid=''
stop() { # stop PID: TERM and reap
  if [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}
cleanup() {
  stop "$client_pid"
  stop "$stub_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

launch 0 "$bin/shardline_stub_kinesis" --records 10000 --record-size 100 \
  >"$work/stub.out" 2>"$work/stub.err"
stub_pid=$launched
port=
for _ in $(seq 100); do
  port=$(awk '$1 == "LISTENING" { print $2 }' "$work/stub.out")
  [[ -n $port ]] && break
  kill -0 "$stub_pid" 2>/dev/null || { cat "$work/stub.err" >&2; exit 1; }
  sleep 0.05
done
[[ -n $port ]] || { echo "stub did not start" >&2; exit 1; }
endpoint=http://127.0.0.1:$port

load_before=$(cut -d' ' -f1 /proc/loadavg)
common=(--endpoint "$endpoint" --stub-pid "$stub_pid" --duration "$duration" --reps "$reps"
        --max-other "$max_other" --inflight "1,8,32" --get-inflight "1,4")
# Clients in the background so that Ctrl-C stops them (and the stub) at once.
launch 1 "$bin/shardline_aws_bench" "${common[@]}" --json >"$work/shardline.json"
client_pid=$launched
wait "$client_pid"
launch 1 python3 bench/boto3_baseline.py "${common[@]}" >"$work/boto3.json"
client_pid=$launched
wait "$client_pid"
client_pid=

load_after=$(cut -d' ' -f1 /proc/loadavg)
stop "$stub_pid"
stub_pid=
served=$(cat "$work/stub.err")

command="bench/run_aws_bench.sh --duration $duration --reps $reps --max-other $max_other"
[[ -n ${SHARDLINE_BENCH_BUILD_DIR:-} ]] && command="SHARDLINE_BENCH_BUILD_DIR=$build $command"
python3 bench/aws_bench_report.py "$work/shardline.json" "$work/boto3.json" --pinned "$setup" \
  --served "$served" --duration "$duration" --reps "$reps" --command "$command" \
  --load-before "$load_before" --load-after "$load_after" --max-other "$max_other"
