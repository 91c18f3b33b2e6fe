#!/usr/bin/env python3
"""A KCL MultiLangDaemon record processor written with the Python standard library only.

It follows the KCL multi-language protocol (newline-delimited JSON on stdin/stdout) the way the
official amazon_kclpy library does, without it: messages are read line by line (blank lines
skipped), answers are written as "\\n<json>\\n" and flushed, and a checkpoint request waits for
the daemon's checkpoint reply, whose "error" is the KCL exception class name.

Usage (as executableName):  python3 python_processor.py [--out FILE] [--bench] [--checkpoint-every N]
  --out FILE    append one JSON line per record, and one per lifecycle event, to FILE:
                {"event":"record","shardId","sequenceNumber","subSequenceNumber","partitionKey","data"}
                {"event":"initialize"|"leaseLost"|"shardEnded"|"shutdownRequested"|"checkpointError", ...}
                Lines of one batch are written and flushed before the batch is checkpointed.
  --bench       decode every record's data and count, write nothing per record
  --checkpoint-every N   checkpoint after every N-th batch (default 1), always at the exact
                (sequenceNumber, subSequenceNumber) of the batch's last record: sub-sequence
                checkpoints inside KPL aggregates.
At shardEnded it checkpoints with no sequence number (SHARD_END); at shutdownRequested at the
last record it processed.
"""
import base64
import json
import os
import sys


class CheckpointError(Exception):
    def __init__(self, error):
        super().__init__(error)
        self.error = error


class Processor:
    def __init__(self, out_path, bench, every):
        self.out = open(out_path, "a", encoding="utf-8") if out_path else None
        self.bench = bench
        self.every = max(1, every)
        self.shard_id = None
        self.batches = 0
        self.records = 0
        self.bytes = 0
        self.last = None  # (sequenceNumber, subSequenceNumber) of the last record processed
        self.pid = os.getpid()

    # ---- I/O ---------------------------------------------------------------------------------
    def send(self, obj):
        sys.stdout.write("\n" + json.dumps(obj) + "\n")
        sys.stdout.flush()

    def receive(self):
        while True:
            line = sys.stdin.readline()
            if not line:
                return None  # EOF: the daemon closed stdin
            line = line.strip()
            if line:
                return json.loads(line)

    def event(self, name, **fields):
        if self.out:
            fields.update({"event": name, "shardId": self.shard_id, "pid": self.pid})
            self.out.write(json.dumps(fields) + "\n")
            self.out.flush()

    def checkpoint(self, sequence_number=None, sub_sequence_number=None):
        for attempt in range(5):
            self.send({"action": "checkpoint", "sequenceNumber": sequence_number,
                       "subSequenceNumber": sub_sequence_number})
            reply = self.receive()
            if reply is None:
                raise EOFError("stdin closed while waiting for a checkpoint reply")
            if reply.get("action") != "checkpoint":
                raise RuntimeError("expected a checkpoint reply, got %r" % reply)
            error = reply.get("error")
            if not error:
                return
            self.event("checkpointError", error=error, sequenceNumber=sequence_number,
                       subSequenceNumber=sub_sequence_number)
            if error == "ThrottlingException" and attempt < 4:
                continue
            raise CheckpointError(error)

    # ---- the processor -----------------------------------------------------------------------
    def initialize(self, msg):
        self.shard_id = msg["shardId"]
        self.event("initialize", sequenceNumber=msg.get("sequenceNumber"),
                   subSequenceNumber=msg.get("subSequenceNumber"))

    def process_records(self, msg):
        records = msg["records"]
        if self.bench:
            for r in records:
                self.bytes += len(base64.b64decode(r["data"]))
        elif self.out:
            lines = []
            for r in records:
                lines.append(json.dumps({
                    "event": "record", "shardId": self.shard_id, "pid": self.pid,
                    "sequenceNumber": r["sequenceNumber"],
                    "subSequenceNumber": r["subSequenceNumber"],
                    "partitionKey": r["partitionKey"],
                    "data": r["data"],
                    "approximateArrivalTimestamp": r.get("approximateArrivalTimestamp"),
                }))
            self.out.write("\n".join(lines) + ("\n" if lines else ""))
            self.out.flush()
        self.records += len(records)
        if records:
            self.last = (records[-1]["sequenceNumber"], records[-1]["subSequenceNumber"])
        self.batches += 1
        if self.last and self.batches % self.every == 0:
            try:
                self.checkpoint(*self.last)
            except CheckpointError as e:
                if e.error != "ShutdownException":
                    raise

    def shard_ended(self, msg):
        self.event("shardEnded")
        self.checkpoint()

    def lease_lost(self, msg):
        self.event("leaseLost")

    def shutdown_requested(self, msg):
        self.event("shutdownRequested", last=self.last)
        if self.last:
            try:
                self.checkpoint(*self.last)
            except CheckpointError:
                pass

    def run(self):
        handlers = {
            "initialize": self.initialize,
            "processRecords": self.process_records,
            "shardEnded": self.shard_ended,
            "leaseLost": self.lease_lost,
            "shutdownRequested": self.shutdown_requested,
        }
        while True:
            msg = self.receive()
            if msg is None:
                self.event("eof", records=self.records)
                return
            action = msg.get("action")
            handler = handlers.get(action)
            if handler is None:
                sys.stderr.write("unexpected action %r\n" % action)
                continue
            handler(msg)
            self.send({"action": "status", "responseFor": action})


def main(argv):
    out_path, bench, every = None, False, 1
    i = 1
    while i < len(argv):
        if argv[i] == "--out":
            out_path = argv[i + 1]
            i += 2
        elif argv[i] == "--bench":
            bench = True
            i += 1
        elif argv[i] == "--checkpoint-every":
            every = int(argv[i + 1])
            i += 2
        else:
            sys.stderr.write("unknown argument %s\n" % argv[i])
            return 2
    Processor(out_path, bench, every).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
