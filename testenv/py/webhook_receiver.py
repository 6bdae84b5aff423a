"""A webhook receiver for the tests: verifies every request's signature with the Standard
Webhooks reference library (an implementation independent of the functions'), records it as a
JSON line on stdout, and answers by a plan.

    webhook_receiver.py --secret whsec_... [--secret whsec_...] [--plan 500,timeout:3,redirect,200]

The first line printed is `PORT <n>` (127.0.0.1; `--port`, or a free one). Each secret is checked on its own,
so a request signed for two rotating secrets shows `"verified": [true, true]`. The plan answers
the requests in order (then 200): a status code, `timeout:<s>` (answer 200 after <s> seconds), or
`redirect` (302 to /redirected on this receiver, which a sender must not follow).
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

parser = argparse.ArgumentParser()
parser.add_argument("--secret", action="append", default=[])
parser.add_argument("--plan", default="")
parser.add_argument("--port", type=int, default=0)
args = parser.parse_args()
plan = [p for p in args.plan.split(",") if p]
lock = threading.Lock()
count = [0]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = []
        for secret in args.secret:
            try:
                Webhook(secret).verify(body, headers)
                verified.append(True)
            except Exception:
                verified.append(False)
        with lock:
            n = count[0]
            count[0] += 1
        answer = plan[n] if n < len(plan) else "200"
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        record = {
            "n": n,
            "path": self.path,
            "id": headers.get("webhook-id"),
            "timestamp": headers.get("webhook-timestamp"),
            "signature": headers.get("webhook-signature"),
            "verified": verified,
            "type": event.get("type"),
            "task_id": (event.get("data") or {}).get("task_id"),
            "status": (event.get("data") or {}).get("status"),
            "outputs": (event.get("data") or {}).get("outputs"),
            "answer": answer,
        }
        # One write under the lock: print() writes the line and its newline separately, and two
        # handler threads printing at once made `{a}{b}` of one line (both records lost).
        with lock:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
        if answer.startswith("timeout:"):
            time.sleep(float(answer.split(":", 1)[1]))
            answer = "200"
        if answer == "redirect":
            self.send_response(302)
            self.send_header("location", "/redirected")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        self.send_response(int(answer))
        self.send_header("content-length", "0")
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
print(f"PORT {server.server_address[1]}", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
