#!/usr/bin/env python3
"""A webhook receiver for tests/detect/respond.sh: what an operator's endpoint does.

    webhook.py PORTFILE LOG --secret FILE [--delay S] [--redirect] [--max-age S]

Listens on 127.0.0.1 (a free port chosen by the kernel, written to PORTFILE once
listening). For each POST it checks the m2mguard signature
    X-M2MGuard-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))
    X-M2MGuard-Timestamp: Unix seconds, at most --max-age (300) seconds old
recomputed here with hmac/hashlib and compared in constant time, appends one
JSON line to LOG ({"valid": bool, "why": ..., "ts": ..., "body": the alert}),
and answers 204 when valid, 401 otherwise. --delay sleeps before answering (a
slow endpoint), --redirect answers 302 to another path (must not be followed).
"""
import argparse
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

MAX_BODY = 64 * 1024


def read_secret(path):
    with open(path, "rb") as f:
        s = f.read()
    return s.rstrip(b"\r\n")


def verify(secret, ts, sig, body, max_age, now=None):
    """(valid, why) of one delivery."""
    if ts is None or not ts.isdigit():
        return False, "no timestamp"
    now = time.time() if now is None else now
    if abs(now - int(ts)) > max_age:
        return False, "stale timestamp"
    if sig is None or not sig.startswith("sha256="):
        return False, "no signature"
    want = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig[len("sha256="):]):
        return False, "bad signature"
    return True, "ok"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("portfile")
    ap.add_argument("log")
    ap.add_argument("--secret", required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--redirect", action="store_true")
    ap.add_argument("--max-age", type=int, default=300)
    a = ap.parse_args()
    secret = read_secret(a.secret)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # quiet
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            if n < 0 or n > MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(n)
            ts = self.headers.get("X-M2MGuard-Timestamp")
            sig = self.headers.get("X-M2MGuard-Signature")
            valid, why = verify(secret, ts, sig, body, a.max_age)
            try:
                alert = json.loads(body)
            except ValueError:
                alert = None
                valid, why = False, "body is not JSON"
            rec = {"valid": valid, "why": why, "ts": ts, "sig": sig,
                   "content_type": self.headers.get("Content-Type"), "path": self.path,
                   "body": alert, "raw": body.decode("utf-8", "replace")}
            with open(a.log, "a") as f:
                f.write(json.dumps(rec) + "\n")
            if a.delay > 0:
                time.sleep(a.delay)
            if a.redirect:
                self.send_response(302)
                self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(204 if valid else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    tmp = a.portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.portfile)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
