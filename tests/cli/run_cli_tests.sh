#!/usr/bin/env bash
# End-to-end tests of the shardline CLI's offline commands (agg, deagg, config).
# Usage: run_cli_tests.sh PATH/TO/shardline TESTDATA_DIR
set -uo pipefail

CLI=${1:?usage: run_cli_tests.sh SHARDLINE TESTDATA}
DATA=${2:?usage: run_cli_tests.sh SHARDLINE TESTDATA}
VEC="$DATA/kpl-aggregation"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { # check NAME COMMAND...: passes when the command exits 0
  local name=$1; shift
  if "$@"; then ok; else fail "$name"; fi
}

# --- deagg: every vector, record counts and flags -------------------------------------------
declare -A expect_count=([01_kpl_4rec_with_ehk]=4 [02_kpl_8rec_no_ehk]=8
  [03_kpl_via_kda_4rec_same_pk_ehk]=4 [04_kpl_via_kda_non_aggregated]=1
  [05_java_sample_lambda_event_100rec]=100 [06_fanout_0rec_empty_aggregate]=1
  [07_fanout_1rec]=1 [08_fanout_2rec]=2)
for v in "${!expect_count[@]}"; do
  out=$("$CLI" deagg "$VEC/$v.b64" 2>"$TMP/err"); rc=$?
  n=$(printf '%s\n' "$out" | grep -c '^{')
  if [[ $rc -eq 0 && $n -eq ${expect_count[$v]} && ! -s $TMP/err ]]; then ok; else
    fail "deagg $v: rc=$rc lines=$n (want ${expect_count[$v]}) stderr=$(cat "$TMP/err")"; fi
done

# Output fields match expected.json for every vector (checked in Python, independently).
cat "$VEC"/0*.b64 | sed -e '$a\' > "$TMP/all.b64"
"$CLI" deagg "$TMP/all.b64" > "$TMP/all.jsonl" 2>/dev/null
check "deagg fields match expected.json" python3 - "$VEC" "$TMP/all.jsonl" <<'PY'
import base64, glob, json, os, sys
vec, out = sys.argv[1], sys.argv[2]
lines = [json.loads(l) for l in open(out)]
want = []
for f in sorted(glob.glob(os.path.join(vec, "0*.expected.json"))):
    e = json.load(open(f))
    blob = open(f.replace(".expected.json", ".b64")).read().strip()
    if not e["aggregated"]:
        want.append({"partitionKey": None, "explicitHashKey": None, "data": blob,
                     "subSequenceNumber": 0, "aggregated": False})
        continue
    for r in e["records"]:
        want.append({"partitionKey": r["partition_key"], "explicitHashKey": r["explicit_hash_key"],
                     "data": r["data_b64"], "subSequenceNumber": r["sub_sequence_number"],
                     "aggregated": True})
if len(lines) != len(want):
    sys.exit(f"{len(lines)} lines, want {len(want)}")
for i, (a, b) in enumerate(zip(lines, want)):
    if a != b:
        sys.exit(f"line {i}: {a} != {b}")
PY

# JSON input: Lambda event records, SDK capitalisation, sequence numbers, pass-through keys.
b08=$(tr -d '\n' < "$VEC/08_fanout_2rec.b64")
b04=$(tr -d '\n' < "$VEC/04_kpl_via_kda_non_aggregated.b64")
printf '%s\n' \
  "{\"kinesis\":{\"data\":\"$b08\",\"partitionKey\":\"a\",\"sequenceNumber\":\"4960\"},\"eventID\":\"x\"}" \
  "{\"Data\":\"$b04\",\"PartitionKey\":\"pk-\\\"q\\\"\",\"SequenceNumber\":\"4961\",\"ApproximateArrivalTimestamp\":1.5}" \
  > "$TMP/json.in"
"$CLI" deagg "$TMP/json.in" > "$TMP/json.out" 2>"$TMP/err"
check "deagg JSON input" python3 - "$TMP/json.out" <<'PY'
import json, sys
l = [json.loads(x) for x in open(sys.argv[1])]
assert len(l) == 3, l
assert l[0]["sequenceNumber"] == "4960" and l[0]["subSequenceNumber"] == 0 and l[0]["partitionKey"] == "key-0"
assert l[1]["sequenceNumber"] == "4960" and l[1]["subSequenceNumber"] == 1 and l[1]["aggregated"] is True
assert l[2]["partitionKey"] == 'pk-"q"' and l[2]["aggregated"] is False and l[2]["sequenceNumber"] == "4961"
assert list(l[0].keys()) == ["partitionKey", "explicitHashKey", "data", "subSequenceNumber", "aggregated", "sequenceNumber"]
PY

# Corrupt aggregate (flipped MD5 byte): passes through raw with a warning, exit 0.
python3 -c "
import base64,sys
b=bytearray(base64.b64decode(open('$VEC/08_fanout_2rec.b64').read().strip())); b[-1]^=1
print(base64.b64encode(bytes(b)).decode())" > "$TMP/corrupt.b64"
out=$("$CLI" deagg "$TMP/corrupt.b64" 2>"$TMP/err"); rc=$?
if [[ $rc -eq 0 && $(grep -c aggregated\":false <<<"$out") -eq 1 ]] && grep -q "md5 mismatch" "$TMP/err"; then ok; else
  fail "corrupt blob pass-through: rc=$rc out=$out err=$(cat "$TMP/err")"; fi

# Unreadable lines are named on stderr and make the exit status 1; good lines still come out.
printf '%s\n' "$b08" 'not base64!!' '{"data": 5}' '{"nodata":"x"}' '{broken' > "$TMP/mixed.in"
out=$("$CLI" deagg "$TMP/mixed.in" 2>"$TMP/err"); rc=$?
if [[ $rc -eq 1 && $(grep -c '^{' <<<"$out") -eq 2 && $(grep -c 'line [2-5]' "$TMP/err") -eq 4 ]]; then ok; else
  fail "unreadable lines: rc=$rc err=$(cat "$TMP/err")"; fi

# --shard-range and --kcl-exact, on an aggregate with records in both halves of the space.
half=170141183460469231731687303715884105727
printf '%s\n' '{"partitionKey":"lo","explicitHashKey":"5","data":"bG8="}' \
  '{"partitionKey":"hi","explicitHashKey":"340282366920938463463374607431768211455","data":"aGk="}' \
  | "$CLI" agg > "$TMP/mixed.agg"
n=$("$CLI" deagg --shard-range "0:$half" "$TMP/mixed.agg" 2>/dev/null | grep -c '"lo"')
m=$("$CLI" deagg --shard-range "0:$half" --kcl-exact "$TMP/mixed.agg" 2>/dev/null | grep -c '^{')
if [[ $n -eq 1 && $m -eq 0 ]]; then ok; else fail "shard-range filtering: n=$n m=$m"; fi

# --- agg: byte-identical re-encoding of the real KPL vectors 01 and 02 ------------------------
for v in 01_kpl_4rec_with_ehk 02_kpl_8rec_no_ehk; do
  python3 - "$VEC/$v.expected.json" > "$TMP/$v.in" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["records"]:
    o = {"partitionKey": r["partition_key"], "data": r["data_b64"]}
    if r["explicit_hash_key"] is not None:
        o["explicitHashKey"] = r["explicit_hash_key"]
    print(json.dumps(o))
PY
  got=$("$CLI" agg "$TMP/$v.in" | python3 -c 'import json,sys; l=[json.loads(x) for x in sys.stdin]; assert len(l)==1 and l[0]["partitionKey"]=="a"; print(l[0]["data"])')
  if [[ "$got" == "$(tr -d '\n' < "$VEC/$v.b64")" ]]; then ok; else fail "agg re-encodes $v"; fi
done

# --- agg -> deagg round trip on generated data, with per-shard grouping -----------------------
python3 - > "$TMP/gen.in" <<'PY'
import base64, json, random
random.seed(5)
for i in range(3000):
    o = {"partitionKey": f"user-{random.randrange(400)}-é",
         "data": base64.b64encode(bytes(random.randrange(256) for _ in range(random.randrange(0, 300)))).decode()}
    if i % 7 == 0:
        o["explicitHashKey"] = str(random.randrange(2**128))
    print(json.dumps(o))
PY
"$CLI" agg --shards 4 --max-size 4096 "$TMP/gen.in" > "$TMP/gen.agg"; rc=$?
"$CLI" deagg "$TMP/gen.agg" > "$TMP/gen.out"
check "agg --shards round trip and routing" python3 - "$TMP/gen.in" "$TMP/gen.agg" "$TMP/gen.out" <<'PY'
import base64, hashlib, json, sys
inp = [json.loads(l) for l in open(sys.argv[1])]
agg = [json.loads(l) for l in open(sys.argv[2])]
out = [json.loads(l) for l in open(sys.argv[3])]
key = lambda r: (r["partitionKey"], r.get("explicitHashKey") or "", r["data"])
assert sorted(map(key, inp)) == sorted(map(key, out)), "user records differ after the round trip"
def hk(pk, ehk):
    return int(ehk) if ehk is not None else int.from_bytes(hashlib.md5(pk.encode()).digest(), "big")
width = 2**128 // 4
shard = lambda h: min(h // width, 3)
for a in agg:
    data = base64.b64decode(a["data"])
    assert len(data) <= 4096 or not data.startswith(b"\xf3\x89\x9a\xc2"), "aggregate over --max-size"
    assert len(a["partitionKey"].encode()) + len(data) <= 1048576
# Each aggregate's user records hash into the same shard as its outer explicit hash key
# (decoded here in Python, independently of the C++ reader).
def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
        if c < 0x80: return v, i
for a in agg:
    data = base64.b64decode(a["data"])
    outer = shard(int(a["explicitHashKey"]))
    if not data.startswith(b"\xf3\x89\x9a\xc2"):
        assert shard(hk(a["partitionKey"], a["explicitHashKey"])) == outer
        continue
    p = data[4:-16]; i = 0; pks = []; ehks = []; recs = []
    while i < len(p):
        tag, i = varint(p, i); ln, i = varint(p, i); v = p[i:i+ln]; i += ln
        [pks, ehks, recs][(tag >> 3) - 1].append(v)
    for r in recs:
        j = 0; f = {}
        while j < len(r):
            t, j = varint(r, j)
            if t & 7 == 0: f[t >> 3], j = varint(r, j)
            else:
                ln, j = varint(r, j); f[t >> 3] = r[j:j+ln]; j += ln
        pk = pks[f[1]].decode(); ehk = ehks[f[2]].decode() if 2 in f else None
        assert shard(hk(pk, ehk)) == outer, "an aggregate mixes shards"
PY
[[ $rc -eq 0 ]] && ok || fail "agg exit status $rc"

# agg rejects bad records by name and exits 1, but still writes the good ones.
printf '%s\n' '{"partitionKey":"ok","data":"eA=="}' '{"partitionKey":"k","explicitHashKey":"0x10","data":"eA=="}' \
  '{"partitionKey":"","data":"eA=="}' '{"data":"eA=="}' > "$TMP/bad.in"
out=$("$CLI" agg "$TMP/bad.in" 2>"$TMP/err"); rc=$?
if [[ $rc -eq 1 && $(grep -c '^{' <<<"$out") -eq 1 ]] && grep -q "line 2: explicit hash key must be a decimal" "$TMP/err" \
  && grep -q "line 3: partition key is empty" "$TMP/err"; then ok; else fail "agg bad records: rc=$rc $(cat "$TMP/err")"; fi

# A record over the stream's record limit is rejected with the limit named.
python3 -c "import base64,json; print(json.dumps({'partitionKey':'big','data':base64.b64encode(b'x'*1048574).decode()}))" > "$TMP/big.in"
"$CLI" agg "$TMP/big.in" >/dev/null 2>"$TMP/err"; rc=$?
if [[ $rc -eq 1 ]] && grep -q "exceeds the stream's 1048576-byte record limit" "$TMP/err"; then ok; else fail "oversized record"; fi
"$CLI" agg --max-record-size 2097152 "$TMP/big.in" >/dev/null 2>&1 && ok || fail "--max-record-size raises the limit"

# --- arguments --------------------------------------------------------------------------------
for args in "agg --max-size 10" "agg --max-size abc" "deagg --shard-range 5:1" "deagg --bogus" \
            "nosuchcommand" "" "agg --shards 0" "config" "tail" "tail --stream s --from YESTERDAY" \
            "tail --stream s --from AT_TIMESTAMP:abc" "streams" "streams create s" \
            "streams create s --shards 2 --on-demand" "streams split s shard-0 --at 0x10" \
            "tail --stream s --until-idle -1" "leases" "leases --application" \
            "config check --scope kcl x.properties" "config check --scope"; do
  # shellcheck disable=SC2086
  "$CLI" $args </dev/null >/dev/null 2>"$TMP/err"; rc=$?
  if [[ $rc -eq 2 && $(wc -l < "$TMP/err") -eq 1 ]] && grep -q '^shardline: error: ' "$TMP/err"; then ok; else
    fail "bad arguments '$args': rc=$rc stderr=$(cat "$TMP/err")"; fi
done
for cmd in "" agg deagg config "config check" "config docs" tail leases streams "streams create" \
           "streams describe" "streams list" "streams split" "streams merge" "streams delete"; do
  # shellcheck disable=SC2086
  "$CLI" $cmd --help >/dev/null 2>&1 && ok || fail "--help for '$cmd'"
done
"$CLI" deagg /nonexistent/file >/dev/null 2>"$TMP/err"; rc=$?
[[ $rc -eq 1 ]] && grep -q "cannot open '/nonexistent/file'" "$TMP/err" && ok || fail "missing input file"

# --- config ------------------------------------------------------------------------------------
printf 'AggregationMaxSize = 1048576\nRecordTtl = 5\n' > "$TMP/bad.properties"
"$CLI" config check "$TMP/bad.properties" >/dev/null 2>"$TMP/err"; rc=$?
[[ $rc -eq 2 ]] && grep -q "bad.properties:2: RecordTtl must be in \[100, 9223372036854775807\] ms, got '5'" "$TMP/err" \
  && ok || fail "config check reports the bad line: $(cat "$TMP/err")"
printf 'RecordTtl = 500\nRecordTTL = 5\n' > "$TMP/warn.properties"
"$CLI" config check "$TMP/warn.properties" >/dev/null 2>"$TMP/err" && grep -q "did you mean 'RecordTtl'" "$TMP/err" \
  && ok || fail "config check warns about unknown keys"
"$CLI" config check --scope producer "$TMP/bad.properties" >/dev/null 2>"$TMP/err"; rc=$?
[[ $rc -eq 2 ]] && grep -q "bad.properties:2: RecordTtl must be in" "$TMP/err" \
  && ok || fail "config check --scope producer is the default table: rc=$rc $(cat "$TMP/err")"
# --scope consumer: the KCL table (same messages, KCL key names).
printf '%s\n' '# a KCL properties file' 'applicationName = orders-app' 'streamName = orders' \
  'failoverTimeMillis = 20000' 'initialPositionInStream = TRIM_HORIZON' \
  'AwsCredentialsProvider = DefaultCredentialsProvider' > "$TMP/kcl.properties"
out=$("$CLI" config check --scope consumer "$TMP/kcl.properties" 2>"$TMP/err"); rc=$?
if [[ $rc -eq 0 && $out == "$TMP/kcl.properties: OK" && $(wc -l < "$TMP/err") -eq 1 ]] \
  && grep -q "^shardline: warning: .*kcl.properties:6: AwsCredentialsProvider accepted, not used: " "$TMP/err"; then ok; else
  fail "config check --scope consumer accepts a KCL file: rc=$rc out=$out err=$(cat "$TMP/err")"; fi
"$CLI" config check "$TMP/kcl.properties" >/dev/null 2>"$TMP/err"; rc=$?
[[ $rc -eq 0 ]] && grep -q "unknown key 'applicationName' ignored" "$TMP/err" \
  && ok || fail "config check without --scope still reads KPL keys: rc=$rc $(cat "$TMP/err")"
printf 'streamName = orders\nfailoverTimeMillis = 5\n' > "$TMP/kcl-bad.properties"
"$CLI" config check --scope consumer "$TMP/kcl-bad.properties" >/dev/null 2>"$TMP/err"; rc=$?
[[ $rc -eq 2 ]] && grep -q "kcl-bad.properties:2: failoverTimeMillis must be in \[300, 9223372036854775807\] ms, got '5'" "$TMP/err" \
  && ok || fail "config check --scope consumer reports the bad line: rc=$rc $(cat "$TMP/err")"
printf 'failoverTimeMillis = 20000\nfailoverTimeMilis = 5\n' > "$TMP/kcl-warn.properties"
"$CLI" config check --scope consumer "$TMP/kcl-warn.properties" >/dev/null 2>"$TMP/err" \
  && grep -q "kcl-warn.properties:2: unknown key 'failoverTimeMilis' ignored; did you mean 'failoverTimeMillis'?" "$TMP/err" \
  && ok || fail "config check --scope consumer warns about unknown keys: $(cat "$TMP/err")"

# --- put: argument checks (offline: each fails before any request) ----------------------------
printf 'AggregationMaxSize = 1048576\nRecordTtl = 5\n' > "$TMP/put-bad.properties"
for args in "put" "put --stream s --format xml" "put --stream s --format" \
            "put --stream s --partition-key k --random-partition-key" \
            "put --stream s --random-partition-key --partition-key k" \
            "put --stream s -X RecordTtl=5" "put --stream s -X RecordTtl" "put --stream s -X =5" \
            "put --stream s -X AggregationEnabled=maybe" "put --stream s --config $TMP/put-bad.properties" \
            "put --stream s --config $TMP/no-such.properties" "put --stream s --partition-key ''"; do
  eval "\"\$CLI\" $args" </dev/null >"$TMP/out" 2>"$TMP/err"; rc=$?
  if [[ $rc -eq 2 && $(wc -l < "$TMP/err") -eq 1 && ! -s $TMP/out ]] && grep -q '^shardline: error: ' "$TMP/err"; then ok; else
    fail "put bad arguments '$args': rc=$rc stderr=$(cat "$TMP/err")"; fi
done
"$CLI" put --stream s --config "$TMP/put-bad.properties" </dev/null >/dev/null 2>"$TMP/err"
grep -q "put-bad.properties:2: RecordTtl must be in \[100, 9223372036854775807\] ms, got '5'" "$TMP/err" \
  && ok || fail "put --config reports the loader's message: $(cat "$TMP/err")"
"$CLI" put --stream s -X RecordTtl=5 </dev/null >/dev/null 2>"$TMP/err"
grep -q "RecordTtl must be in \[100, 9223372036854775807\] ms, got '5'" "$TMP/err" \
  && ok || fail "put -X is validated like --config: $(cat "$TMP/err")"
"$CLI" put --help >/dev/null 2>&1 && ok || fail "--help for 'put'"
# Settings warnings are printed once each; an empty input needs no request: exit 0, zero records.
printf 'RecordTtl = 500\nRecordTTL = 5\n' > "$TMP/put-warn.properties"
out=$("$CLI" put --stream s --region us-east-1 --config "$TMP/put-warn.properties" -X RecordTTL=7 \
  -X RecordTTL=7 -X RecordMaxBufferedTime=50 </dev/null 2>"$TMP/err"); rc=$?
if [[ $rc -eq 0 && $(grep -c "unknown key 'RecordTTL'" "$TMP/err") -eq 2 ]] \
  && grep -q "put-warn.properties:2: unknown key 'RecordTTL'" "$TMP/err" \
  && python3 -c 'import json,sys; s=json.loads(sys.argv[1]); assert s["userRecords"]==0 and s["failed"]==0 and s["interrupted"] is False, s' "$out"; then ok; else
  fail "put settings warnings once each / empty input: rc=$rc out=$out err=$(cat "$TMP/err")"; fi

# ==============================================================================================
# --- consume: argument and settings checks (offline: each fails before any request) ----------
# Run in an empty directory: the default lease store (sqlite:APP.leases.db) must not be left
# behind by a run that cannot start.
CONSUME_CLI=$(realpath "$CLI")
CWD="$TMP/consume-cwd"
mkdir -p "$CWD"
printf 'maxRecords = 20000\n' > "$TMP/consume-range.properties"
printf 'streamName = s\napplicationName = a\ninitialPositionInStream = NOW\n' > "$TMP/consume-enum.properties"
printf 'retrievalMode = PUSH\n' > "$TMP/consume-fanout.properties"
# "ARGUMENTS => text the one stderr line must contain"
consume_cases=(
  "consume --application a => --stream is required"
  "consume --stream s => --application is required"
  "consume --stream '' --application a => --stream is required"
  "consume --stream s --application a --initial-position NOW => --initial-position must be TRIM_HORIZON, LATEST or AT_TIMESTAMP:<epoch-ms>, got 'NOW'"
  "consume --stream s --application a --initial-position AT_TIMESTAMP:soon => AT_TIMESTAMP:<epoch-ms> needs a millisecond epoch, got 'soon'"
  "consume --stream s --application a --initial-position AT_TIMESTAMP: => AT_TIMESTAMP:<epoch-ms> needs a millisecond epoch, got ''"
  "consume --stream s --application a --config $TMP/no-such.properties => no-such.properties"
  "consume --stream s --application a --config $TMP/consume-range.properties => consume-range.properties:1: maxRecords must be in [1, 10000] records, got '20000'"
  "consume --config $TMP/consume-enum.properties => consume-enum.properties:3: initialPositionInStream must be one of TRIM_HORIZON|LATEST|AT_TIMESTAMP, got 'NOW'"
  "consume --stream s --application a --until-idle -1 => --until-idle"
  "consume --stream s --application a --lease-table dynamo:x => unknown scheme 'dynamo:'"
  "consume --stream s --application a --region us-east-1 --config $TMP/consume-fanout.properties => consume-fanout.properties:1: retrievalMode must be one of POLLING|FANOUT|DEFAULT, got 'PUSH'"
  "consume --stream s --application a --region us-east-1 --initial-position AT_TIMESTAMP:0 => AT_TIMESTAMP"
)
for c in "${consume_cases[@]}"; do
  args=${c%% => *}
  want=${c#* => }
  (cd "$CWD" && eval "AWS_EC2_METADATA_DISABLED=true \"\$CONSUME_CLI\" $args") </dev/null >"$TMP/out" 2>"$TMP/err"; rc=$?
  if [[ $rc -eq 2 && $(wc -l < "$TMP/err") -eq 1 && ! -s $TMP/out ]] && grep -q '^shardline: error: ' "$TMP/err" \
    && grep -qF -e "$want" "$TMP/err"; then ok; else
    fail "consume bad arguments '$args': rc=$rc (want 2, one line with '$want') stderr=$(cat "$TMP/err")"; fi
done
# Settings warnings come first, as `shardline: warning: ...`; then the error.
printf 'maxRecord = 5\nmaxRecords = 0\n' > "$TMP/consume-warn.properties"
(cd "$CWD" && "$CONSUME_CLI" consume --stream s --application a --config "$TMP/consume-warn.properties") \
  </dev/null >"$TMP/out" 2>"$TMP/err"; rc=$?
if [[ $rc -eq 2 && $(wc -l < "$TMP/err") -eq 2 ]] \
  && sed -n 1p "$TMP/err" | grep -q "^shardline: warning: .*consume-warn.properties:1: unknown key 'maxRecord'.*did you mean 'maxRecords'" \
  && sed -n 2p "$TMP/err" | grep -q "^shardline: error: .*consume-warn.properties:2: maxRecords must be in \[1, 10000\] records, got '0'"; then ok; else
  fail "consume --config warnings then the error: rc=$rc stderr=$(cat "$TMP/err")"; fi
[[ -z $(ls -A "$CWD") ]] && ok || fail "consume left files behind after usage errors: $(ls -A "$CWD")"
"$CLI" consume --help >"$TMP/out" 2>&1 && grep -q "default: TRIM_HORIZON" "$TMP/out" \
  && ok || fail "--help for 'consume' documents the TRIM_HORIZON default: $(cat "$TMP/out")"
"$CLI" --help 2>&1 | grep -q "^  consume " && ok || fail "'consume' is listed in --help"
# ==============================================================================================

# --- multilang: argument and settings checks (offline: each fails before any request) --------
ML="$TMP/multilang"
ML_CLI=$(realpath "$CLI")
mkdir -p "$ML"
ml_props() { # ml_props NAME LINES...: a properties file with the required keys, then LINES
  local f="$ML/$1.properties"; shift
  printf 'executableName = python3 app.py\nstreamName = s\napplicationName = ml-app\nregionName = us-east-1\n' > "$f"
  for l in "$@"; do printf '%s\n' "$l" >> "$f"; done
  printf '%s\n' "$f"
}
ok_props=$(ml_props ok)
printf 'streamName = s\napplicationName = a\n' > "$ML/no-exec.properties"
printf 'executableName = python3 app.py\nstreamName = s\n' > "$ML/no-app.properties"
printf 'executableName = python3 app.py\napplicationName = a\n' > "$ML/no-stream.properties"
range_props=$(ml_props range 'timeoutInSeconds = -1')
fanout_props=$(ml_props fanout 'retrievalMode = PUSH')
missing_props=$(ml_props missing 'executableName = no-such-program-anywhere --x')
sts_props=$(ml_props sts 'AwsCredentialsProvider = KclStsAssumeRoleCredentialsProvider')
# "ARGUMENTS => text the one stderr line must contain"
multilang_cases=(
  "multilang => a properties file is required: shardline multilang --properties FILE"
  "multilang $ok_props $ok_props => expected a single properties file, got 2"
  "multilang $ML/no-such.properties => cannot read properties file '$ML/no-such.properties'"
  "multilang -p $ML/no-exec.properties => executableName is required"
  "multilang --properties $ML/no-app.properties => applicationName is required"
  "multilang --properties-file $ML/no-stream.properties => streamName or streamArn is required"
  "multilang $range_props => range.properties:5: timeoutInSeconds must be in [0, 86400] s, got '-1'"
  "multilang $fanout_props => fanout.properties:5: retrievalMode must be one of POLLING|FANOUT|DEFAULT, got 'PUSH'"
  "multilang $missing_props => 'no-such-program-anywhere' was not found in PATH"
  "multilang $sts_props => the role ARN is missing"
  "multilang $ok_props --lease-table dynamo:x => unknown scheme 'dynamo:'"
)
for c in "${multilang_cases[@]}"; do
  args=${c%% => *}
  want=${c#* => }
  (cd "$ML" && eval "AWS_EC2_METADATA_DISABLED=true \"\$ML_CLI\" $args") </dev/null >"$TMP/out" 2>"$TMP/err"; rc=$?
  if [[ $rc -eq 2 && $(wc -l < "$TMP/err") -eq 1 && ! -s $TMP/out ]] && grep -q '^shardline: error: ' "$TMP/err" \
    && grep -qF -e "$want" "$TMP/err"; then ok; else
    fail "multilang bad arguments '$args': rc=$rc (want 2, one line with '$want') stderr=$(cat "$TMP/err")"; fi
done
# --check: warnings (unknown key with the nearest one, unused keys, ignored -l) on stderr, what
# would run on stdout, exit 0; -p wins over the positional file, with a warning.
warn_props=$(ml_props warn 'executableNme = x' 'processingLanguage = python/3' \
  'AWSCredentialsProvider = DefaultAWSCredentialsProviderChain' 'tableName = t1')
(cd "$ML" && PATH=/usr/bin:/bin "$ML_CLI" multilang --check "$ok_props" -p "$warn_props" -l logback.xml) \
  </dev/null >"$TMP/out" 2>"$TMP/err"; rc=$?
if [[ $rc -eq 0 ]] && grep -q "^shardline: warning: overriding the properties file '$ok_props' with --properties" "$TMP/err" \
  && grep -q "warn.properties:5: unknown key 'executableNme' ignored; did you mean 'executableName'?" "$TMP/err" \
  && grep -q "warn.properties:6: processingLanguage accepted, not used" "$TMP/err" \
  && grep -q "log-configuration 'logback.xml' ignored" "$TMP/err" \
  && grep -q "^$warn_props: OK" "$TMP/out" && grep -q "child: *\(/usr\)\?/bin/python3 app.py" "$TMP/out" \
  && grep -q "lease store: dynamodb:t1" "$TMP/out" && grep -q "credentials: the default chain" "$TMP/out" \
  && grep -q "retrieval: *polling, GetRecords every 1500 ms" "$TMP/out"; then ok; else
  fail "multilang --check: rc=$rc stdout=$(cat "$TMP/out") stderr=$(cat "$TMP/err")"; fi
efo_props=$(ml_props efo 'retrievalMode = FANOUT' 'consumerName = efo-readers')
(cd "$ML" && PATH=/usr/bin:/bin "$ML_CLI" multilang --check "$efo_props") </dev/null >"$TMP/out" 2>"$TMP/err"; rc=$?
[[ $rc -eq 0 ]] && grep -q "retrieval: *enhanced fan-out, consumer efo-readers" "$TMP/out" && ok \
  || fail "multilang --check with FANOUT: rc=$rc stdout=$(cat "$TMP/out") stderr=$(cat "$TMP/err")"
"$CLI" multilang --help >"$TMP/out" 2>&1 && grep -q "shutdownGraceMillis (default 5000)" "$TMP/out" \
  && grep -q -- "--properties-file" "$TMP/out" && ok || fail "--help for 'multilang': $(cat "$TMP/out")"
"$CLI" --help 2>&1 | grep -q "^  multilang " && ok || fail "'multilang' is listed in --help"
# ==============================================================================================

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
