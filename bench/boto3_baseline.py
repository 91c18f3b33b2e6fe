#!/usr/bin/env python3
"""boto3 baseline for bench/aws_bench.cc: the same calls against the same stub Kinesis endpoint.

Measures, like shardline_aws_bench, calls/s and process CPU per call (resource.getrusage
RUSAGE_SELF: every thread) with K calls in flight (K threads sharing one client, as boto3 is
synchronous), median of --reps runs of --duration seconds after a short warm-up:
  - put_records with 500 x 100-byte records (36-character UUID-like partition keys);
  - put_records with one 100-byte record (small signed requests);
  - get_records with Limit 10000 (botocore decodes every Data blob and parses every timestamp).
Prints one JSON document on stdout.

Usage: bench/boto3_baseline.py --endpoint http://127.0.0.1:PORT [--duration S] [--reps N]
         [--inflight 1,8,32] [--get-inflight 1,4] [--stub-pid PID] [--max-other F]
"""
import argparse
import json
import os
import random
import resource
import sys
import threading
import time

import boto3
import botocore
from botocore.config import Config


def process_cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def other_process_cpu(pid):
    """User + system CPU seconds of another process (the stub), or None."""
    if not pid:
        return None
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pinned_cpu(pid=0):
    """The one CPU a process (0 = this one) is pinned to, or None."""
    cpus = os.sched_getaffinity(pid)
    return next(iter(cpus)) if len(cpus) == 1 else None


def cpu_busy(cpu=None):
    """Seconds one CPU (or the machine, None) ran tasks since boot, from /proc/stat: user, nice,
    system and steal; not interrupts (loopback networking is mostly softirq time)."""
    want = "cpu " if cpu is None else f"cpu{cpu} "
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(want):
                v = [int(x) for x in line.split()[1:9]]
                return (v[0] + v[1] + v[2] + v[7]) / os.sysconf("SC_CLK_TCK")
    return None


def closed_loop(k, seconds, call):
    """Runs `call` on k threads until `seconds` have passed; returns (calls, errors)."""
    stop = time.monotonic() + seconds
    counts = [0] * k
    errors = [0] * k
    first_error = []

    def worker(i):
        while time.monotonic() < stop:
            try:
                call()
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors[i] += 1
                if not first_error:
                    first_error.append(repr(e))
            counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if first_error:
        print(f"boto3: first error: {first_error[0]}", file=sys.stderr)
    return sum(counts), sum(errors)


def median(xs):
    return sorted(xs)[len(xs) // 2]


def measure(k, duration, call, stub_pid):
    """One measured run: calls, errors and CPU use of this process, the stub and the others.

    As in shardline_aws_bench: with client and stub pinned to different CPUs, "other" is what
    others used of the client's CPU and "other_stub_cpu" of the stub's; unpinned, "other" is
    the rest of the machine.
    """
    client_cpu = pinned_cpu()
    stub_cpu = pinned_cpu(stub_pid) if stub_pid else None
    split = client_cpu is not None and stub_cpu is not None and client_cpu != stub_cpu
    busy0 = cpu_busy(client_cpu if split else None)
    stub_busy0 = cpu_busy(stub_cpu) if split else None
    stub0, cpu0, t0 = other_process_cpu(stub_pid), process_cpu(), time.monotonic()
    calls, errors = closed_loop(k, duration, call)
    wall, cpu = time.monotonic() - t0, process_cpu() - cpu0
    stub = None if stub0 is None else other_process_cpu(stub_pid) - stub0
    if split:
        other = max(0.0, cpu_busy(client_cpu) - busy0 - cpu)
        other_stub_cpu = max(0.0, cpu_busy(stub_cpu) - stub_busy0 - (stub or 0.0))
    else:
        other = max(0.0, cpu_busy() - busy0 - cpu - (stub or 0.0))
        other_stub_cpu = None
    return {"calls": calls, "errors": errors, "wall": wall, "cpu": cpu, "stub": stub,
            "other": other, "other_stub_cpu": other_stub_cpu}


def share(m):
    """Others' CPU use on both CPUs during a run, as a fraction of one CPU."""
    return (m["other"] + (m["other_stub_cpu"] or 0.0)) / m["wall"]


def phase(name, k, records_per_call, call, duration, reps, stub_pid, max_other):
    closed_loop(k, min(0.5, duration / 4), call)  # warm-up: connections, caches
    # As shardline_aws_bench: a run during which others used more than max_other of a CPU is
    # repeated, up to 5 x reps runs; with too few clean runs, the least disturbed (not clean).
    every, ok = [], 0
    while len(every) < 5 * reps and ok < reps:
        m = measure(k, duration, call, stub_pid)
        every.append(m)
        if max_other < 0 or share(m) <= max_other:
            ok += 1
    clean = ok >= reps
    used = every if max_other < 0 else sorted(every, key=share)
    used = used[:reps]
    return {
        "name": name,
        "inflight": k,
        "records_per_call": records_per_call,
        "calls_per_s": median([m["calls"] / m["wall"] for m in used]),
        "cpu_us_per_call": median([m["cpu"] / m["calls"] * 1e6 for m in used]),
        "client_util": median([m["cpu"] / m["wall"] for m in used]),
        "stub_util": median([-1 if m["stub"] is None else m["stub"] / m["wall"] for m in used]),
        "other_util": median([m["other"] / m["wall"] for m in used]),
        "other_stub_cpu_util": median([-1 if m["other_stub_cpu"] is None
                                       else m["other_stub_cpu"] / m["wall"] for m in used]),
        "calls": sum(m["calls"] for m in used),
        "errors": sum(m["errors"] for m in every),
        "discarded": len(every) - len(used),
        "clean": clean,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--inflight", default="1,8,32")
    ap.add_argument("--get-inflight", default="1,4")
    ap.add_argument("--stub-pid", type=int, default=0)
    ap.add_argument("--max-other", type=float, default=0.05)
    args = ap.parse_args()
    inflight = [int(x) for x in args.inflight.split(",")]
    get_inflight = [int(x) for x in args.get_inflight.split(",")]
    max_k = max(inflight + get_inflight)

    rng = random.Random(42)
    records = []
    for _ in range(500):
        key = "".join(rng.choice("0123456789abcdef") for _ in range(32))
        key = f"{key[:8]}-{key[8:12]}-{key[12:16]}-{key[16:20]}-{key[20:]}"
        records.append({"Data": rng.randbytes(100), "PartitionKey": key})

    client = boto3.client(
        "kinesis",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        config=Config(max_pool_connections=max_k, retries={"max_attempts": 1, "mode": "standard"}),
    )
    iterator = client.get_shard_iterator(
        StreamName="bench", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]

    def put(batch):
        def call():
            r = client.put_records(StreamName="bench", Records=batch)
            if r["FailedRecordCount"] != 0 or len(r["Records"]) != len(batch):
                raise RuntimeError("bad PutRecords response")

        return call

    expected = len(client.get_records(ShardIterator=iterator, Limit=10000)["Records"])

    def get():
        r = client.get_records(ShardIterator=iterator, Limit=10000)
        if len(r["Records"]) != expected or not r.get("NextShardIterator"):
            raise RuntimeError("bad GetRecords response")

    timing = (args.duration, args.reps, args.stub_pid, args.max_other)
    runs = []
    for k in inflight:
        runs.append(phase("put_records", k, 500, put(records), *timing))
    for k in (1, max_k):
        runs.append(phase("put_records_1", k, 1, put(records[:1]), *timing))
    for k in get_inflight:
        runs.append(phase("get_records", k, expected, get, *timing))
    json.dump(
        {
            "boto3": boto3.__version__,
            "botocore": botocore.__version__,
            "python": sys.version.split()[0],
            "pid": os.getpid(),
            "e2e": runs,
        },
        sys.stdout,
    )
    print()
    return 1 if any(r["errors"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
