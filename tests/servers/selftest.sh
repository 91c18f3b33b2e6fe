#!/usr/bin/env bash
# Self-test of the local test-server tooling: scripts/servers, the kinesalite
# launcher and the fault-injection proxy.
#
# Starts every server plus the proxy (in a private state directory,
# .servers/selftest, so servers started by a developer are left alone), talks to
# them with curl, stops them and checks that no recorded PID survives.
# Prints "N passed, M failed" and exits non-zero if anything failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SERVERS="$ROOT/scripts/servers"
export SHARDLINE_SERVERS_DIR="$ROOT/.servers/selftest"
TMP=$(mktemp -d)
PASSED=0
FAILED=0
STARTED=0

cleanup() {
  if (( STARTED )); then
    "$SERVERS" stop >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

pass() {
  PASSED=$((PASSED + 1))
  printf 'ok   %s\n' "$1"
}

fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL %s\n' "$1"
  if (( $# > 1 )); then
    printf '     %s\n' "${@:2}"
  fi
}

check() { # DESCRIPTION COMMAND... : pass if COMMAND succeeds
  local desc=$1
  shift
  if "$@"; then pass "$desc"; else fail "$desc" "(command: $*)"; fi
}

# json FILE EXPR: evaluates a JavaScript expression over the JSON document `o`.
json() {
  node -e '
    const fs = require("fs");
    let o;
    try { o = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch (e) { process.exit(3); }
    const v = new Function("o", "return (" + process.argv[2] + ");")(o);
    process.stdout.write(typeof v === "object" ? JSON.stringify(v) : String(v));
  ' "$1" "$2"
}

SIGV4_DATE='X-Amz-Date: 20240101T000000Z'
sigv4_auth() { # SERVICE
  printf 'Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/20240101/us-east-1/%s/aws4_request, SignedHeaders=host;x-amz-date, Signature=00' "$1"
}

# call ENDPOINT TARGET BODY [MAXTIME]: AWS JSON call; response in $TMP/body and
# $TMP/headers; prints the HTTP status (000 when there was no HTTP answer).
call() {
  local endpoint=$1 target=$2 body=$3 maxtime=${4:-10} type service
  case $target in
    DynamoDB_*) type=application/x-amz-json-1.0 service=dynamodb ;;
    *) type=application/x-amz-json-1.1 service=kinesis ;;
  esac
  : >"$TMP/body"
  : >"$TMP/headers"
  curl -s -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' --max-time "$maxtime" -X POST \
    -H "Content-Type: $type" -H "X-Amz-Target: $target" -H "$SIGV4_DATE" \
    -H "$(sigv4_auth "$service")" --data "$body" "$endpoint/" 2>/dev/null || true
}

kinesis() { call "$1" "Kinesis_20131202.$2" "$3" "${4:-10}"; }

# proxy_config JSON: POST /__proxy/config; prints the HTTP status.
proxy_config() {
  curl -s -o "$TMP/config" -w '%{http_code}' --max-time 5 -X POST \
    -H 'Content-Type: application/json' --data "$1" "$SHARDLINE_PROXY_ENDPOINT/__proxy/config" || true
}

proxy_stats() {
  curl -s -o "$TMP/stats" --max-time 5 "$SHARDLINE_PROXY_ENDPOINT/__proxy/stats" || true
}

wait_active() { # ENDPOINT STREAM
  local deadline=$((SECONDS + 10)) code
  while (( SECONDS < deadline )); do
    code=$(kinesis "$1" DescribeStream "{\"StreamName\":\"$2\"}")
    if [[ $code == 200 && $(json "$TMP/body" 'o.StreamDescription.StreamStatus') == ACTIVE ]]; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

records_json() { # STREAM COUNT PREFIX: a PutRecords body with COUNT records
  # shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
  node -e '
    const [stream, n, prefix] = [process.argv[1], Number(process.argv[2]), process.argv[3]];
    const Records = [];
    for (let i = 0; i < n; i++) {
      Records.push({ Data: Buffer.from(`${prefix}-${i}`).toString("base64"), PartitionKey: `pk-${i}` });
    }
    process.stdout.write(JSON.stringify({ StreamName: stream, Records }));
  ' "$1" "$2" "$3"
}

# Reads every record of a one-shard stream straight from kinesalite; prints the
# decoded Data values, sorted, one a line.
read_stream() { # STREAM
  local code iterator
  code=$(kinesis "$SHARDLINE_KINESIS_ENDPOINT" GetShardIterator \
    "{\"StreamName\":\"$1\",\"ShardId\":\"shardId-000000000000\",\"ShardIteratorType\":\"TRIM_HORIZON\"}")
  [[ $code == 200 ]] || return 1
  iterator=$(json "$TMP/body" 'o.ShardIterator')
  code=$(kinesis "$SHARDLINE_KINESIS_ENDPOINT" GetRecords "{\"ShardIterator\":\"$iterator\",\"Limit\":1000}")
  [[ $code == 200 ]] || return 1
  json "$TMP/body" 'o.Records.map(r => Buffer.from(r.Data, "base64").toString()).sort().join("\n")'
}

# ---------------------------------------------------------------------------
printf '== start\n'
STARTED=1
if "$SERVERS" start kinesalite dynalite kinesis-local moto proxy >"$TMP/start.out" 2>&1; then
  pass "scripts/servers start (all servers + proxy)"
else
  fail "scripts/servers start (all servers + proxy)" "$(cat "$TMP/start.out")"
  printf '%s passed, %s failed\n' "$PASSED" "$FAILED"
  exit 1
fi
sed 's/^/     /' "$TMP/start.out"

ENV_FILE="$SHARDLINE_SERVERS_DIR/env"
# shellcheck source=/dev/null
source "$ENV_FILE"
MOTO=1
command -v moto_server >/dev/null 2>&1 || MOTO=0
for var in SHARDLINE_KINESIS_ENDPOINT SHARDLINE_DYNAMODB_ENDPOINT SHARDLINE_KINESIS_LOCAL_ENDPOINT \
  SHARDLINE_PROXY_ENDPOINT SHARDLINE_MOTO_ENDPOINT; do
  if [[ $var == SHARDLINE_MOTO_ENDPOINT ]] && (( MOTO == 0 )); then
    printf 'skip %s (moto_server not installed)\n' "$var"
    continue
  fi
  check "env file exports $var" test -n "${!var:-}"
done

mapfile -t PIDS < <(cat "$SHARDLINE_SERVERS_DIR"/*.pid)
expected=$((4 + MOTO))
check "one PID file per server ($expected)" test "${#PIDS[@]}" -eq "$expected"
check "scripts/servers status exits 0" "$SERVERS" status

# ---------------------------------------------------------------------------
printf '== fault proxy: whole-call throttle\n'
code=$(proxy_config '{"throttleProbability":1}')
check "POST /__proxy/config throttleProbability=1" \
  test "$code:$(json "$TMP/config" 'o.throttleProbability' || true)" = 200:1

code=$(kinesis "$SHARDLINE_PROXY_ENDPOINT" CreateStream '{"StreamName":"selftest","ShardCount":1}')
check "CreateStream through the proxy passes (control plane is not throttled)" test "$code" = 200
check "stream becomes ACTIVE (DescribeStream through the proxy)" \
  wait_active "$SHARDLINE_PROXY_ENDPOINT" selftest

PUT3=$(records_json selftest 3 put)
code=$(kinesis "$SHARDLINE_PROXY_ENDPOINT" PutRecords "$PUT3")
if [[ $code == 400 && $(json "$TMP/body" 'o.__type') == ProvisionedThroughputExceededException ]]; then
  pass "PutRecords is throttled: HTTP 400 ProvisionedThroughputExceededException"
else
  fail "PutRecords is throttled: HTTP 400 ProvisionedThroughputExceededException" \
    "got HTTP $code: $(cat "$TMP/body")"
fi
check "throttle carries x-amzn-ErrorType" \
  grep -qi '^x-amzn-ErrorType: ProvisionedThroughputExceededException' "$TMP/headers"
proxy_stats
check "GET /__proxy/stats counts the throttle" test "$(json "$TMP/stats" 'o.throttles')" = 1

code=$(proxy_config '{"throttleProbability":0}')
check "POST /__proxy/config throttleProbability=0" test "$code" = 200
code=$(kinesis "$SHARDLINE_PROXY_ENDPOINT" PutRecords "$PUT3")
if [[ $code == 200 && $(json "$TMP/body" 'o.FailedRecordCount + ":" + o.Records.filter(r => r.SequenceNumber).length') == 0:3 ]]; then
  pass "PutRecords passes through: HTTP 200, FailedRecordCount 0, 3 sequence numbers"
else
  fail "PutRecords passes through" "got HTTP $code: $(cat "$TMP/body")"
fi

# ---------------------------------------------------------------------------
printf '== fault proxy: per-record PutRecords failures\n'
code=$(kinesis "$SHARDLINE_KINESIS_ENDPOINT" CreateStream '{"StreamName":"selftest-partial","ShardCount":1}')
check "CreateStream selftest-partial (direct)" test "$code" = 200
check "selftest-partial becomes ACTIVE" wait_active "$SHARDLINE_KINESIS_ENDPOINT" selftest-partial

proxy_config '{"recordFailureProbability":0.5,"seed":42}' >/dev/null
code=$(kinesis "$SHARDLINE_PROXY_ENDPOINT" PutRecords "$(records_json selftest-partial 20 a)")
cp "$TMP/body" "$TMP/partial1"
pattern1=$(json "$TMP/partial1" 'o.Records.map(r => r.ErrorCode ? "F" : ".").join("")' || true)
failed1=$(json "$TMP/partial1" 'o.FailedRecordCount' || true)
marked1=$(json "$TMP/partial1" 'o.Records.filter(r => r.ErrorCode === "ProvisionedThroughputExceededException" && r.ErrorMessage === "Rate exceeded").length' || true)
if [[ $code == 200 && ${#pattern1} == 20 && $failed1 -gt 0 && $failed1 -lt 20 && $failed1 == "$marked1" ]]; then
  pass "PutRecords(20) at p=0.5: $failed1 entries failed in place ($pattern1), FailedRecordCount fixed up"
else
  fail "PutRecords(20) at p=0.5 gives partial failures" "got HTTP $code: $(cat "$TMP/body")"
fi
expected_data=$(json "$TMP/partial1" \
  'o.Records.map((r, i) => r.ErrorCode ? null : "a-" + i).filter(Boolean).sort().join("\n")' || true)
stored=$(read_stream selftest-partial || true)
if [[ -n $stored && $stored == "$expected_data" ]]; then
  pass "failed entries were not written: the stream holds exactly the $((20 - failed1)) successful ones"
else
  fail "failed entries were not written" "expected: ${expected_data//$'\n'/ }" "stored:   ${stored//$'\n'/ }"
fi

proxy_config '{"seed":42}' >/dev/null
kinesis "$SHARDLINE_PROXY_ENDPOINT" PutRecords "$(records_json selftest-partial 20 b)" >/dev/null
pattern2=$(json "$TMP/body" 'o.Records.map(r => r.ErrorCode ? "F" : ".").join("")' || true)
check "same seed, same failure pattern ($pattern2)" test "$pattern1" = "$pattern2"

proxy_config '{"recordFailureProbability":1}' >/dev/null
code=$(kinesis "$SHARDLINE_PROXY_ENDPOINT" PutRecords "$(records_json selftest-partial 4 c)")
check "all entries failed: HTTP 200, FailedRecordCount 4" \
  test "$code:$(json "$TMP/body" 'o.FailedRecordCount' || true)" = 200:4

code=$(kinesis "$SHARDLINE_PROXY_ENDPOINT" PutRecords '{"StreamName":"selftest-partial","Records":[{"Data":')
check "malformed JSON is forwarded untouched (kinesalite: 400 SerializationException)" \
  test "$code:$(json "$TMP/body" 'o.__type' || true)" = 400:SerializationException
health=$(curl -s --max-time 5 "$SHARDLINE_PROXY_ENDPOINT/__proxy/health" || true)
check "proxy still healthy after malformed JSON" test "$health" = '{"ok":true}'
proxy_config '{"recordFailureProbability":0}' >/dev/null

# ---------------------------------------------------------------------------
printf '== fault proxy: 500s, resets, latency, blackhole\n'
proxy_config '{"error500Probability":1}' >/dev/null
code=$(kinesis "$SHARDLINE_PROXY_ENDPOINT" GetShardIterator \
  '{"StreamName":"selftest","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}')
check "error500Probability=1: HTTP 500 InternalFailure" \
  test "$code:$(json "$TMP/body" 'o.__type' || true)" = 500:InternalFailure
code=$(call "$SHARDLINE_PROXY_ENDPOINT" DynamoDB_20120810.GetItem '{}')
check "DynamoDB errors carry the com.amazonaws.dynamodb.v20120810# prefix" \
  test "$code:$(json "$TMP/body" 'o.__type' || true)" = 500:com.amazonaws.dynamodb.v20120810#InternalFailure
proxy_config '{"error500Probability":0}' >/dev/null

code=$(proxy_config '{"latencyMs":5,"throttleProbability":2}')
check "invalid setting is rejected with 400" test "$code" = 400
code=$(proxy_config '{"throttleProbability":')
check "malformed control JSON is rejected with 400" test "$code" = 400
curl -s -o "$TMP/config" --max-time 5 "$SHARDLINE_PROXY_ENDPOINT/__proxy/config" || true
check "rejected settings changed nothing (all or nothing)" \
  test "$(json "$TMP/config" '[o.latencyMs, o.throttleProbability].join()' || true)" = 0,0

proxy_config '{"resetProbability":1}' >/dev/null
code=$(kinesis "$SHARDLINE_PROXY_ENDPOINT" ListStreams '{}')
check "resetProbability=1: connection dropped without an HTTP answer" test "$code" = 000
proxy_config '{"resetProbability":0,"latencyMs":300}' >/dev/null
t0=$(date +%s%N)
code=$(kinesis "$SHARDLINE_PROXY_ENDPOINT" ListStreams '{}')
elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "latencyMs=300: answer after ${elapsed_ms} ms" test "$code:$(( elapsed_ms >= 300 ))" = 200:1
proxy_config '{"latencyMs":0,"blackhole":true}' >/dev/null
code=$(kinesis "$SHARDLINE_PROXY_ENDPOINT" ListStreams '{}' 1)
check "blackhole: no answer within 1 s" test "$code" = 000
proxy_config '{"blackhole":false}' >/dev/null
code=$(kinesis "$SHARDLINE_PROXY_ENDPOINT" ListStreams '{}')
check "blackhole off: answers again" test "$code" = 200
proxy_stats
check "stats count resets, blackholes, 500s and record failures" \
  test "$(json "$TMP/stats" '[o.resets, o.blackholed, o.errors500 >= 2, o.recordFailures > 0].join()')" = 1,1,true,true

# ---------------------------------------------------------------------------
printf '== other servers\n'
code=$(call "$SHARDLINE_DYNAMODB_ENDPOINT" DynamoDB_20120810.ListTables '{}')
check "dynalite answers ListTables" test "$code:$(json "$TMP/body" 'Array.isArray(o.TableNames)' || true)" = 200:true
code=$(kinesis "$SHARDLINE_KINESIS_LOCAL_ENDPOINT" ListStreams '{}')
check "kinesis-local answers ListStreams" test "$code:$(json "$TMP/body" 'Array.isArray(o.StreamNames)' || true)" = 200:true
if (( MOTO )); then
  code=$(kinesis "$SHARDLINE_MOTO_ENDPOINT" ListStreams '{}')
  check "moto answers ListStreams" test "$code:$(json "$TMP/body" 'Array.isArray(o.StreamNames)' || true)" = 200:true
fi

# ---------------------------------------------------------------------------
printf '== stop\n'
pid_alive() { # alive and not a zombie
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n ${stat// /} && ${stat// /} != Z* ]]
}
check "scripts/servers stop" "$SERVERS" stop
STARTED=0
survivors=()
for pid in "${PIDS[@]}"; do
  if pid_alive "$pid"; then survivors+=("$pid"); fi
done
check "no server PID survives (${PIDS[*]})" test "${#survivors[@]}" -eq 0
check "PID files and env file removed" \
  test -z "$(find "$SHARDLINE_SERVERS_DIR" -maxdepth 1 \( -name '*.pid' -o -name env \) -print)"
status_rc=0
"$SERVERS" status >/dev/null || status_rc=$?
check "scripts/servers status reports nothing recorded (exit 3)" test "$status_rc" -eq 3
check "scripts/servers stop again is a no-op" "$SERVERS" stop

printf '%s passed, %s failed\n' "$PASSED" "$FAILED"
(( FAILED == 0 ))
