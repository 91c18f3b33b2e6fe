#!/usr/bin/env python3
"""Prints bench/run_aws_bench.sh's tables (markdown) from the two clients' JSON results.

Usage: aws_bench_report.py SHARDLINE_JSON BOTO3_JSON --pinned TEXT --served TEXT
         --duration S --reps N --command TEXT --load-before X --load-after Y
"""
import argparse
import json
import os


def pct(x):
    return "n/a" if x is None or x < 0 else f"{x * 100:.0f}%"


def runs(doc, name):
    return {r["inflight"]: r for r in doc["e2e"] if r["name"] == name}


def use(r):
    """CPU use: client / stub / others on the client's CPU / others on the stub's CPU."""
    return (f"{pct(r['client_util'])} / {pct(r['stub_util'])} / {pct(r.get('other_util'))}"
            f" / {pct(r.get('other_stub_cpu_util'))}")


def e2e_table(ours, boto, name, unit, scale, floor, rate_label, rate_fmt):
    print(f"| K in flight | shardline {rate_label} | user records/s | CPU {unit} | x floor"
          f" | CPU use: client / stub / others on client CPU / on stub CPU | boto3 {rate_label} | boto3 CPU {unit}"
          " | boto3 CPU / shardline CPU |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    b = runs(boto, name)
    for k, r in runs(ours, name).items():
        bb = b[k]
        records_per_s = r["calls_per_s"] * r["records_per_call"]
        x_floor = "n/a" if floor is None else f"{r['cpu_us_per_call'] / floor:.2f}"
        mark = "" if r.get("clean", True) and bb.get("clean", True) else " †"
        print(f"| {k}{mark} | {r['calls_per_s']:,{rate_fmt}} | {records_per_s:,.0f}"
              f" | {r['cpu_us_per_call'] / scale:,.{1 if scale == 1 else 2}f}"
              f" | {x_floor} | {use(r)}"
              f" | {bb['calls_per_s']:,{rate_fmt}} | {bb['cpu_us_per_call'] / scale:,.1f}"
              f" | **{bb['cpu_us_per_call'] / r['cpu_us_per_call']:.1f}x** |")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("boto")
    for opt in ("pinned", "served", "duration", "reps", "command", "load-before", "load-after",
                "max-other"):
        ap.add_argument(f"--{opt}", default="")
    a = ap.parse_args()
    ours = json.load(open(a.ours))
    boto = json.load(open(a.boto))
    micro = {m["name"]: m for m in ours["micro"]}
    floor_put = micro["floor_put"]["ns"] / 1000
    floor_get = micro["floor_get"]["ns"] / 1000

    print(f"PutRecords, 500 x 100-byte records per call (request body {ours['put_body_bytes']:,}"
          f" bytes); floor = {floor_put:.1f} us/call ({micro['floor_put']['what']})")
    print()
    e2e_table(ours, boto, "put_records", "us/call", 1, floor_put, "signed calls/s", ".0f")

    print("Small signed requests: PutRecords of one 100-byte record")
    print()
    e2e_table(ours, boto, "put_records_1", "us/call", 1, None, "signed requests/s", ".0f")

    print(f"GetRecords, {ours['get_records_per_response']:,} x 100-byte records per response"
          f" ({ours['get_response_bytes']:,} bytes); floor = {floor_get / 1000:.2f} ms/response"
          f" ({micro['floor_get']['what']})")
    print()
    e2e_table(ours, boto, "get_records", "ms/response", 1000, floor_get, "responses/s", ".1f")

    put_max = max(runs(ours, "put_records").items())[1]
    get_1 = min(runs(ours, "get_records").items())[1]
    print("CPU per call, broken down (in-process micro-benchmarks, one thread, median; the"
          " remainder is libcurl, syscalls and thread hand-offs)")
    print()
    print("| step | CPU us/call | x floor |")
    print("|---|---:|---:|")

    def row(label, us, floor, clean=True):
        print(f"| {label}{'' if clean else ' †'} | {us:,.1f} | {us / floor:.2f} |")

    row("PutRecords floor: base64 + SHA-256 (OpenSSL)", floor_put, floor_put)
    for name in ("floor_put_base64", "floor_put_sha256"):
        row(f"of which: {micro[name]['what']}", micro[name]["ns"] / 1000, floor_put,
            micro[name].get("clean", True))
    parts = 0.0
    for name in ("build_put_records", "sign", "parse_put_records"):
        us = micro[name]["ns"] / 1000
        parts += us
        row(f"`{name}`: {micro[name]['what']}", us, floor_put, micro[name].get("clean", True))
    row("sum of the three", parts, floor_put)
    row(f"end to end, K={put_max['inflight']} (process CPU / calls)", put_max["cpu_us_per_call"],
        floor_put)
    row("remainder: HTTP, event loop, hand-offs", put_max["cpu_us_per_call"] - parts, floor_put)
    row("GetRecords floor: base64 decode (OpenSSL)", floor_get, floor_get)
    pg = micro["parse_get_records"]["ns"] / 1000
    row(f"`parse_get_records`: {micro['parse_get_records']['what']}", pg, floor_get,
        micro["parse_get_records"].get("clean", True))
    row(f"end to end, K={get_1['inflight']} (process CPU / responses)", get_1["cpu_us_per_call"],
        floor_get)
    row("remainder: HTTP receive, request, hand-offs", get_1["cpu_us_per_call"] - pg, floor_get)
    print()

    cpu, mhz = "unknown", ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("cpu MHz") and not mhz:
                mhz = f" @ {float(line.split(':', 1)[1]):.0f} MHz"
    except OSError:
        pass
    errors = sum(r["errors"] for r in ours["e2e"] + boto["e2e"])
    ours_runs = ours["micro"] + ours["e2e"]
    discarded = (sum(r.get("discarded", 0) for r in ours_runs),
                 sum(r.get("discarded", 0) for r in boto["e2e"]))
    unclean = sum(not r.get("clean", True) for r in ours_runs + boto["e2e"])
    boto_other = max((r.get("other_util", -1) for r in boto["e2e"]), default=-1)
    print(f"Host: {cpu}{mhz}, {os.cpu_count()} CPUs; {a.pinned}; median of {a.reps} runs of"
          f" {a.duration} s each; failed calls: {errors}")
    limit = float(a.max_other or 0.05)
    check = ("off (every run kept)" if limit < 0 else
             f"runs during which other processes used more than {pct(limit)} of a CPU (both"
             " CPUs together) were repeated")
    print(f"Interference: {check} (discarded: shardline {discarded[0]}, boto3 {discarded[1]});"
          f" figures without {a.reps} clean runs (marked †): {unclean}; other CPU use in the"
          f" boto3 runs kept: at most {pct(boto_other)}; 1-min load average {a.load_before}"
          f" before, {a.load_after} after (including the benchmark itself)")
    print(f"boto3 {boto['boto3']} (botocore {boto['botocore']}, Python {boto['python']});"
          f" stub: {a.served}")
    print(f"Command: {a.command}")


if __name__ == "__main__":
    main()
