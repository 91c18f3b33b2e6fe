#!/usr/bin/env python3
"""Writes N lines of base64 KPL aggregates (100-byte records, 36-char keys, ~51200 bytes each),
encoded here in Python so the benchmark input does not come from the code under test."""
import base64, hashlib, random, sys

def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80); n >>= 7
    out.append(n)
    return bytes(out)

def field(tag, payload):
    return bytes([tag]) + varint(len(payload)) + payload

def aggregate(rng):
    keys, recs, size = [], [], 20
    while True:
        pk = ("%08x-%04x-%04x-%04x-%012x" % tuple(rng.getrandbits(b) for b in (32, 16, 16, 16, 48))).encode()
        data = bytes(rng.randrange(97, 123) for _ in range(100))
        body = bytes([0x08]) + varint(len(keys)) + field(0x1A, data)
        add = len(field(0x0A, pk)) + len(field(0x1A, body))
        if size + add > 51200:
            break
        keys.append(pk); recs.append(body); size += add
    proto = b"".join(field(0x0A, k) for k in keys) + b"".join(field(0x1A, r) for r in recs)
    return b"\xf3\x89\x9a\xc2" + proto + hashlib.md5(proto).digest()

rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
templates = [aggregate(rng) for _ in range(16)]
for i in range(int(sys.argv[1])):
    sys.stdout.write(base64.b64encode(templates[i % len(templates)]).decode() + "\n")
