# Shared by bench/run_micro.sh and bench/run_fanout_bench.sh (source it after `cd "$ROOT"`).
# gbench_ratios TARGET BASELINE [NAME=BASELINE ...] -- [Google Benchmark flags]: builds TARGET,
# runs it (median of 3, CPU time) and prints each benchmark's MB/s and records/s with its
# throughput as a ratio of a baseline measured in the same run: NAME's own baseline when one is
# given, otherwise BASELINE ("-" for none).
gbench_ratios() {
  local target=$1 default=$2
  shift 2
  local pairs=()
  while (($#)) && [[ $1 != -- ]]; do pairs+=("$1"); shift; done
  (($#)) && shift
  scripts/build release "$target" >/dev/null
  local json
  json=$(mktemp)
  build/bin/"$target" --benchmark_min_time=1 --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_format=json "$@" > "$json"
  python3 - "$json" "$default" "${pairs[@]}" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
default = sys.argv[2]
own = dict(p.split("=", 1) for p in sys.argv[3:])
rows = {b["run_name"]: b for b in d["benchmarks"] if b.get("aggregate_name") == "median"}
print(f"{'benchmark':32} {'MB/s':>9} {'records/s':>12}   vs baseline")
for name, b in rows.items():
    rps = b.get("items_per_second")
    rtext = "" if rps is None else f"{rps:,.0f}"
    base = own.get(name, default)
    ratio = ""
    if base in rows and base != name:
        ratio = f"{b['bytes_per_second'] / rows[base]['bytes_per_second']:.2f} of {base}"
    elif base == name:
        ratio = "baseline"
    print(f"{name:32} {b['bytes_per_second'] / 1e6:9.1f} {rtext:>12}   {ratio}")
print(f"(median of 3, CPU time; host: {d['context']['num_cpus']} CPUs @ {d['context']['mhz_per_cpu']} MHz)")
PY
  local rc=$?
  rm -f "$json"
  return $rc
}
