#!/usr/bin/env python3
"""Sign requests with botocore's SigV4Auth: the independent implementation the C++ signer is
compared against (tests/unit/sigv4_test.cc).

Input, on stdin, one JSON object per line:
  {"method": "POST", "host": "example.amazonaws.com", "path": "/a/b", "query": "k=v&k2",
   "headers": [["Name", "value"], ...],   # repeated names allowed, order kept
   "body_b64": "...", "access_key": "...", "secret_key": "...", "token": "..." or "",
   "region": "us-east-1", "service": "kinesis", "amz_date": "20150830T123600Z"}
Output, one JSON object per line, in the same order:
  {"authorization": "...", "canonical_request": "...", "string_to_sign": "..."}

The URL is https://<host><path>[?<query>], so botocore hashes the body (payload signing on)
and canonicalises path and query from the URL, as it does for every service but S3.
"""

import base64
import datetime
import json
import sys

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

FIXED_NOW = [None]


def fixed_now():
    return FIXED_NOW[0]


# botocore reads the time through this hook; pin it to the request's timestamp.
botocore.auth.get_current_datetime = fixed_now


class CapturingSigV4Auth(botocore.auth.SigV4Auth):
    """SigV4Auth that remembers its canonical request and string to sign."""

    def canonical_request(self, request):
        cr = super().canonical_request(request)
        self.captured_cr = cr
        return cr

    def string_to_sign(self, request, canonical_request):
        sts = super().string_to_sign(request, canonical_request)
        self.captured_sts = sts
        return sts


def sign(req):
    FIXED_NOW[0] = datetime.datetime.strptime(req["amz_date"], "%Y%m%dT%H%M%SZ")
    url = "https://" + req["host"] + req["path"]
    if req["query"]:
        url += "?" + req["query"]
    body = base64.b64decode(req["body_b64"])
    request = AWSRequest(method=req["method"], url=url, data=body)
    for name, value in req["headers"]:
        request.headers[name] = value  # HTTPHeaders: assignment appends, keeping repeats
    creds = Credentials(req["access_key"], req["secret_key"], req["token"] or None)
    auth = CapturingSigV4Auth(creds, req["service"], req["region"])
    auth.add_auth(request)
    return {"authorization": request.headers["Authorization"],
            "canonical_request": auth.captured_cr,
            "string_to_sign": auth.captured_sts}


def main():
    for line in sys.stdin:
        line = line.strip()
        if line:
            sys.stdout.write(json.dumps(sign(json.loads(line))) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
