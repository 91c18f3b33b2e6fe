#!/usr/bin/env python3
"""Baseline for the producer benchmark: what a Python user does today without the KPL.
boto3 put_records in batches of 500 records, no aggregation, one thread, against the same
endpoint. Prints one JSON line: records/s and CPU microseconds per record."""
import json, os, resource, sys, time, uuid

import boto3
from botocore.config import Config

endpoint, records, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench-secret",
                      config=Config(retries={"max_attempts": 0}))
keys = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(100000)]
data = b"x" * size

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

t0, c0, ok = time.monotonic(), cpu(), 0
for off in range(0, records, 500):
    batch = [{"Data": data, "PartitionKey": keys[(off + i) % len(keys)]}
             for i in range(min(500, records - off))]
    resp = client.put_records(StreamName="bench", Records=batch)
    ok += len(batch) - resp["FailedRecordCount"]
secs, c = time.monotonic() - t0, cpu() - c0
print(json.dumps({"tool": "boto3 put_records", "records": records, "size": size, "seconds": round(secs, 3),
                  "recordsPerSecond": round(records / secs), "cpuMicrosPerRecord": round(c / records * 1e6, 3),
                  "succeeded": ok}))
