#!/usr/bin/env python3
"""A loopback fake of the AWS credential endpoints, Python standard library only.

Serves, on 127.0.0.1 (port from --port, 0 = any free port, printed as "PORT <n>" on stdout):

  EC2 instance metadata (IMDSv2), as documented in the EC2 user guide:
    PUT /latest/api/token            needs X-aws-ec2-metadata-token-ttl-seconds; returns a token
    GET /latest/meta-data/iam/security-credentials/        the role name
    GET /latest/meta-data/iam/security-credentials/<role>  credentials JSON
        {"Code": "Success", "LastUpdated": ..., "Type": "AWS-HMAC", "AccessKeyId": ...,
         "SecretAccessKey": ..., "Token": ..., "Expiration": "YYYY-MM-DDTHH:MM:SSZ"}
  ECS/EKS container credentials:
    GET /ecs/...   checks the Authorization header; returns
        {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"}
  STS (query protocol, API version 2011-06-15):
    POST /  Action=AssumeRole (SigV4 signature verified against the known keys, which include
            every key this server has issued) or Action=AssumeRoleWithWebIdentity (unsigned;
            the WebIdentityToken is checked). XML responses, <ErrorResponse> on failure.

Test control (JSON):
  GET  /_stats     request counters and the last STS request's parameters
  POST /_control   merge settings into the state; {"reset": true} restores the defaults

Issued credentials are numbered per kind: AccessKeyId ASIA<KIND><n>, secret
"SECRET-<kind>-<n>/+&x" (the XML response escapes the '&'), token "TOKEN-<kind>-<n>".
Stopped with SIGTERM.
"""

import argparse
import datetime
import hashlib
import hmac
import json
import signal
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

DEFAULTS = {
    "expires_in": 3600,             # seconds until issued credentials expire
    "imds_token_status": 200,       # 200, or 404/405 (IMDSv1-only), 403 (forbidden)
    "imds_require_token": True,     # GETs without a valid token get 401
    "imds_role": "test-role",       # "" -> no role (404)
    "ecs_auth_token": "ecs-auth-token",  # expected Authorization value ("" = none needed)
    "web_identity_token": "web-identity-token-value",
    "known_keys": {},               # access key id -> secret, for AssumeRole signatures
    "fail_next": {},                # kind -> number of upcoming requests answered with 500
    "denied_role_suffix": "/denied",  # AssumeRole of a role ARN ending so -> AccessDenied
}

LOCK = threading.Lock()
STATE = {}
STATS = {}


def reset():
    STATE.clear()
    STATE.update(json.loads(json.dumps(DEFAULTS)))
    STATE["tokens"] = []
    STATE["issued"] = {}
    STATS.clear()
    STATS.update({"imds_token": 0, "imds_role": 0, "imds_creds": 0, "ecs": 0,
                  "sts_assume_role": 0, "sts_web_identity": 0, "imds_v1_requests": 0,
                  "last_sts": {}, "last_ecs_authorization": None})


def utc_iso(seconds_from_now):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds_from_now)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def issue(kind):
    """New credentials of `kind`; locked by the caller."""
    n = len([k for k in STATE["issued"] if k.startswith("ASIA" + kind.upper())]) + 1
    creds = {
        "AccessKeyId": "ASIA%s%d" % (kind.upper(), n),
        "SecretAccessKey": "SECRET-%s-%d/+&x" % (kind, n),
        "Token": "TOKEN-%s-%d" % (kind, n),
        "Expiration": utc_iso(STATE["expires_in"]),
    }
    STATE["issued"][creds["AccessKeyId"]] = creds["SecretAccessKey"]
    return creds


def should_fail(kind):
    left = STATE["fail_next"].get(kind, 0)
    if left > 0:
        STATE["fail_next"][kind] = left - 1
        return True
    return False


def sigv4_check(method, path, headers, body):
    """Verify an AWS4-HMAC-SHA256 Authorization header. Returns (ok, access_key, region)."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False, None, None
    fields = {}
    for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    try:
        access_key, date, region, service, terminator = fields["Credential"].split("/")
    except (KeyError, ValueError):
        return False, None, None
    secret = STATE["known_keys"].get(access_key) or STATE["issued"].get(access_key)
    if secret is None or terminator != "aws4_request":
        return False, access_key, region
    signed = fields.get("SignedHeaders", "").split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return False, access_key, region
    if "x-amz-security-token" in headers and "x-amz-security-token" not in signed:
        return False, access_key, region
    canonical_headers = "".join(
        "%s:%s\n" % (h, " ".join(headers.get(h, "").split())) for h in signed)
    canonical_uri = urllib.parse.quote(path or "/", safe="/~")
    canonical = "\n".join([method, canonical_uri, "", canonical_headers, ";".join(signed),
                           hashlib.sha256(body).hexdigest()])
    amz_date = headers.get("x-amz-date", "")
    scope = "/".join([date, region, service, "aws4_request"])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("Signature", "")), access_key, region


def sts_credentials_xml(action, creds, role_arn):
    return (
        '<%sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n'
        "  <%sResult>\n"
        "    <AssumedRoleUser><Arn>%s/session</Arn><AssumedRoleId>AROA:s</AssumedRoleId>"
        "</AssumedRoleUser>\n"
        "    <Credentials>\n"
        "      <AccessKeyId>%s</AccessKeyId>\n"
        "      <SecretAccessKey>%s</SecretAccessKey>\n"
        "      <SessionToken>%s</SessionToken>\n"
        "      <Expiration>%s</Expiration>\n"
        "    </Credentials>\n"
        "  </%sResult>\n"
        "  <ResponseMetadata><RequestId>req-%s</RequestId></ResponseMetadata>\n"
        "</%sResponse>\n" % (action, action, escape(role_arn), creds["AccessKeyId"],
                             escape(creds["SecretAccessKey"]), escape(creds["Token"]),
                             creds["Expiration"], action, creds["AccessKeyId"], action))


def sts_error_xml(code, message):
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n'
        "  <Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>\n"
        "  <RequestId>err-request-id</RequestId>\n"
        "</ErrorResponse>\n" % (code, escape(message)))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status, body, content_type="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def lower_headers(self):
        return {k.lower(): v for k, v in self.headers.items()}

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ---- IMDS ----
    def imds_token_ok(self):
        token = self.headers.get("X-aws-ec2-metadata-token")
        if token is None:
            STATS["imds_v1_requests"] += 1
            return not STATE["imds_require_token"]
        return token in STATE["tokens"]

    def do_PUT(self):
        self.body()
        with LOCK:
            if self.path != "/latest/api/token":
                return self.reply(404, "not found")
            STATS["imds_token"] += 1
            if should_fail("imds_token"):
                return self.reply(500, "injected failure")
            if self.headers.get("X-aws-ec2-metadata-token-ttl-seconds") is None:
                return self.reply(400, "missing TTL header")
            status = STATE["imds_token_status"]
            if status != 200:
                return self.reply(status, "token status %d" % status)
            token = "imds-token-%d" % (len(STATE["tokens"]) + 1)
            STATE["tokens"].append(token)
            return self.reply(200, token)

    def do_GET(self):
        with LOCK:
            path = self.path
            if path == "/_stats":
                return self.reply(200, json.dumps(STATS), "application/json")
            prefix = "/latest/meta-data/iam/security-credentials/"
            if path == prefix:
                STATS["imds_role"] += 1
                if should_fail("imds_role"):
                    return self.reply(500, "injected failure")
                if not self.imds_token_ok():
                    return self.reply(401, "unauthorized")
                if not STATE["imds_role"]:
                    return self.reply(404, "no role")
                return self.reply(200, STATE["imds_role"] + "\n")
            if path.startswith(prefix):
                STATS["imds_creds"] += 1
                if should_fail("imds_creds"):
                    return self.reply(500, "injected failure")
                if not self.imds_token_ok():
                    return self.reply(401, "unauthorized")
                if path[len(prefix):] != STATE["imds_role"]:
                    return self.reply(404, "no such role")
                c = issue("imds")
                doc = {"Code": "Success", "LastUpdated": utc_iso(0), "Type": "AWS-HMAC",
                       "AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                       "Token": c["Token"], "Expiration": c["Expiration"]}
                return self.reply(200, json.dumps(doc), "application/json")
            if path.startswith("/ecs/"):
                STATS["ecs"] += 1
                STATS["last_ecs_authorization"] = self.headers.get("Authorization")
                if should_fail("ecs"):
                    return self.reply(500, "injected failure")
                want = STATE["ecs_auth_token"]
                if want and self.headers.get("Authorization") != want:
                    return self.reply(401, json.dumps({"code": "Unauthorized"}),
                                      "application/json")
                c = issue("ecs")
                c["RoleArn"] = "arn:aws:iam::123456789012:role/ecs-task"
                return self.reply(200, json.dumps(c), "application/json")
            return self.reply(404, "not found")

    # ---- STS and control ----
    def do_POST(self):
        raw = self.body()
        with LOCK:
            if self.path == "/_control":
                update = json.loads(raw or b"{}")
                if update.pop("reset", False):
                    reset()
                STATE.update(update)
                return self.reply(200, "{}", "application/json")
            params = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
            action = params.get("Action", "")
            last = {k: v for k, v in params.items() if k != "WebIdentityToken"}
            last["content_type"] = self.headers.get("Content-Type")
            last["signed"] = "Authorization" in self.headers
            STATS["last_sts"] = last
            if params.get("Version") != "2011-06-15":
                return self.reply(400, sts_error_xml("InvalidParameterValue", "bad Version"),
                                  "text/xml")
            if action == "AssumeRole":
                STATS["sts_assume_role"] += 1
                if should_fail("sts"):
                    return self.reply(500, sts_error_xml("InternalFailure", "injected"),
                                      "text/xml")
                ok, access_key, region = sigv4_check("POST", urllib.parse.urlsplit(self.path).path,
                                                     self.lower_headers(), raw)
                last["signing_access_key"] = access_key
                last["signing_region"] = region
                last["security_token"] = self.headers.get("X-Amz-Security-Token")
                if not ok:
                    return self.reply(403, sts_error_xml(
                        "SignatureDoesNotMatch", "The request signature we calculated does not "
                        "match the signature you provided."), "text/xml")
                role = params.get("RoleArn", "")
                if role.endswith(STATE["denied_role_suffix"]):
                    return self.reply(403, sts_error_xml(
                        "AccessDenied", "User is not authorized to perform: sts:AssumeRole on "
                        "resource: " + role), "text/xml")
                c = issue("sts")
                return self.reply(200, sts_credentials_xml("AssumeRole", c, role), "text/xml")
            if action == "AssumeRoleWithWebIdentity":
                STATS["sts_web_identity"] += 1
                if "Authorization" in self.headers:
                    return self.reply(400, sts_error_xml("InvalidParameterValue",
                                                         "unexpected signature"), "text/xml")
                if params.get("WebIdentityToken") != STATE["web_identity_token"]:
                    return self.reply(400, sts_error_xml("InvalidIdentityToken",
                                                         "Couldn't retrieve verification key"),
                                      "text/xml")
                c = issue("web")
                return self.reply(200, sts_credentials_xml("AssumeRoleWithWebIdentity", c,
                                                           params.get("RoleArn", "")), "text/xml")
            return self.reply(400, sts_error_xml("InvalidAction", "unknown action"), "text/xml")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    reset()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except (SystemExit, KeyboardInterrupt):
        pass


if __name__ == "__main__":
    main()
