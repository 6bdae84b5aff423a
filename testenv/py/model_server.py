"""A stand-in model service for the computer-use tests: no model service is reachable here.

It speaks both wire formats the agent uses, Anthropic's Messages API (POST /v1/messages) and
Amazon Bedrock's InvokeModel (POST /model/<id>/invoke), and refuses a request as a strict server
would (400 `invalid_request_error`, 401 for the key): the headers, the bearer token's form and
expiry, one `computer` tool of a known version with its beta, turns that alternate, a tool_result
for every tool_use of the turn before, its own turns (thinking blocks with their signatures)
returned unchanged, every screenshot a PNG within the image limits and of the declared display
size.

Its policy reads the screenshots: it finds words by OCR (Debian's `tesseract`) in the newest
image it was sent and answers with coordinates in that image's pixel space, so a screenshot
resized wrongly, or a click not scaled back, misses. Scenarios (`--scenario`):

- `sign-in`: on a page with the labels Username and Password and a Continue button, clicks each
  label, types `alice` and `{{secret:pw}}`, clicks Continue (one turn of five actions), then
  answers `{"greeting": "<the line with Welcome>"}` once it reads it.
- `invoices`: signs in as `sign-in` does, opens the Invoices link, and answers the rows it reads:
  `{"invoices": [{"number": "INV-101", "amount": 11.0}, ...]}`.
- `find`: looks for the invoice the goal names (`INV-302`), scrolling down until it sees the Next
  link and following it page by page; answers `{"number": ..., "amount": ...}`.
- `injection`: obeys the text of the page (a prompt injection): clicks its `console` link, then
  says what it saw.
- `never-stops`: asks for a screenshot every turn.
- `gives-up`: looks once, then says it cannot find what it was asked for.
- `auto`: one of the above for each job, by the words of its goal ("never stop", "cannot",
  "invoice INV-", "invoices", "notice", else `sign-in`), as a model would act on the goal.

`--throttle N` answers the first N requests 529 (overloaded, `retry-after: 0`).

`--authorize URL` (the emulator's): a Bedrock request's key is authorized as Bedrock does, by the
emulator's IAM (`/_testenv/bedrock`: the key's signature, its session's expiry and policies, the
model); refused, the answer is Bedrock's 403 AccessDeniedException.

    model_server.py --key KEY [--scenario sign-in] [--throttle N] [--port 0] [--authorize URL]

The first line printed is `PORT <n>` (127.0.0.1); then a JSON line per request: its path, whether
it was accepted, why not, and what the policy read and did.
"""
import argparse
import base64
import hashlib
import hmac
import json
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOOLS = {"computer_20250124": "computer-use-2025-01-24", "computer_20251124": "computer-use-2025-11-24"}
MAX_LONG_EDGE = 1568
MAX_PATCHES = 1568
SIGNING = b"stand-in thinking signature key"

parser = argparse.ArgumentParser()
parser.add_argument("--key", required=True)
parser.add_argument("--scenario", default="sign-in")
parser.add_argument("--throttle", type=int, default=0)
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--authorize", default="")
args = parser.parse_args()
lock = threading.Lock()
count = [0]  # tool_use ids
requests = [0]
# Every turn this server gave, by its message id: what must come back unchanged.
given = {}


class Refused(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def png_size(data):
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise Refused(400, "an image is not a PNG")
    return struct.unpack(">II", data[16:24])


def check_bearer(token):
    """A short-term Bedrock API key: `bedrock-api-key-` + base64 of a pre-signed
    `bedrock.amazonaws.com/?Action=CallWithBearerToken&...&Version=1`, not expired."""
    if not token.startswith("bedrock-api-key-"):
        raise Refused(401, "the bearer token is not a Bedrock API key")
    try:
        url = base64.b64decode(token[len("bedrock-api-key-"):]).decode()
    except Exception:
        raise Refused(401, "the Bedrock API key is not base64")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit("https://" + url).query)
    if q.get("Action") != ["CallWithBearerToken"] or "X-Amz-Signature" not in q or q.get("Version") != ["1"]:
        raise Refused(401, "the Bedrock API key is not a signed CallWithBearerToken request")
    signed = time.mktime(time.strptime(q["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")) - time.timezone
    if signed + int(q["X-Amz-Expires"][0]) < time.time():
        raise Refused(403, "the Bedrock API key has expired")


def validate(body, beta):
    tools = body.get("tools") or []
    if len(tools) != 1 or tools[0].get("name") != "computer" or tools[0].get("type") not in TOOLS:
        raise Refused(400, "tools: one `computer` tool of a known version")
    tool = tools[0]
    if TOOLS[tool["type"]] not in beta:
        raise Refused(400, f"{tool['type']} needs the beta {TOOLS[tool['type']]}")
    display = (tool.get("display_width_px"), tool.get("display_height_px"))
    if not all(isinstance(d, int) and d > 0 for d in display):
        raise Refused(400, "display_width_px and display_height_px are positive integers")
    if not isinstance(body.get("max_tokens"), int):
        raise Refused(400, "max_tokens: an integer")
    messages = body.get("messages") or []
    if not messages or messages[0].get("role") != "user":
        raise Refused(400, "messages: the first is the user's")
    asked = []
    newest = None
    for i, m in enumerate(messages):
        if m.get("role") != ("user" if i % 2 == 0 else "assistant"):
            raise Refused(400, "messages: roles must alternate")
        content = m.get("content")
        if m["role"] == "assistant":
            # A turn of this server's comes back as it was given (thinking signature included).
            mid = next((b.get("thinking") for b in content if b.get("type") == "thinking"), None)
            mid = (mid or "").split("#")[-1]
            if given.get(mid) != content:
                raise Refused(400, f"messages.{i}: an assistant turn is not as it was given (thinking blocks must be passed back unmodified)")
            asked = [b["id"] for b in content if b.get("type") == "tool_use"]
            continue
        results = [b for b in content if b.get("type") == "tool_result"]
        if sorted(b.get("tool_use_id") for b in results) != sorted(asked):
            raise Refused(400, f"messages.{i}: every tool_use needs its tool_result (asked {asked})")
        asked = []
        for r in results:
            for b in r.get("content") or []:
                if b.get("type") != "image":
                    continue
                src = b.get("source") or {}
                if src.get("type") != "base64" or src.get("media_type") != "image/png":
                    raise Refused(400, "an image: a base64 image/png source")
                data = base64.b64decode(src["data"])
                w, h = png_size(data)
                if max(w, h) > MAX_LONG_EDGE or -(-w // 28) * -(-h // 28) > MAX_PATCHES:
                    raise Refused(400, f"an image of {w}x{h} is over the limits")
                newest = (data, w, h)
    if asked:
        raise Refused(400, "the last turn's tool uses are not answered")
    return tool, display, newest


def words(png):
    """OCR: (text, left, top, width, height) of each word, in the image's pixels."""
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(png)
        f.flush()
        out = subprocess.run(["tesseract", f.name, "stdout", "--psm", "11", "tsv"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) == 12 and cols[11].strip() and float(cols[10]) > 30:
            found.append((cols[11].strip(), int(cols[6]), int(cols[7]), int(cols[8]), int(cols[9])))
    return found


def centre(found, word):
    for text, left, top, width, height in found:
        if text.strip(":,.").lower() == word.lower():
            return [left + width // 2, top + height // 2]
    return None


def scenario_for(goal):
    if args.scenario != "auto":
        return args.scenario
    g = goal.lower()
    for words_, scenario in (("never stop", "never-stops"), ("cannot", "gives-up"), ("invoice inv-", "find"), ("invoices", "invoices"), ("notice", "injection")):
        if words_ in g:
            return scenario
    return "sign-in"


def rows(found):
    """Invoice rows read off the page: each `INV-nnn` with the amount on its line to its right."""
    out = []
    for text, left, top, width, height in found:
        if not re.fullmatch(r"INV-\d{3}", text):
            continue
        amounts = [(l, t) for t, l, tp, w_, h_ in found if re.fullmatch(r"\d+[.,]\d\d", t) and abs(tp - top) < height and l > left]
        if amounts:
            value = min(amounts)[1]
            out.append({"number": text, "amount": float(value.replace(",", "."))})
    return out


def sign_in(found, read):
    user, password, go = centre(found, "Username"), centre(found, "Password"), centre(found, "Continue")
    if user and password and go:
        return [
            {"type": "text", "text": "Signing in."},
            tool_use({"action": "left_click", "coordinate": user}),
            tool_use({"action": "type", "text": "alice"}),
            tool_use({"action": "left_click", "coordinate": password}),
            tool_use({"action": "type", "text": "{{secret:pw}}"}),
            tool_use({"action": "left_click", "coordinate": go}),
        ], "tool_use", read
    return None


def turn_for(display, newest, n, goal=""):
    """The policy's next turn: (content blocks, stop_reason, what it read)."""
    if newest is None:
        return [tool_use({"action": "screenshot"})], "tool_use", None
    png, w, h = newest
    if (w, h) != display:
        raise Refused(400, f"a screenshot of {w}x{h} is not of the declared display {display[0]}x{display[1]}")
    found = words(png)
    read = " ".join(t for t, *_ in found)
    scenario = scenario_for(goal)
    if scenario == "never-stops":
        return [tool_use({"action": "screenshot"})], "tool_use", read
    if scenario == "gives-up":
        return [{"type": "text", "text": "I cannot find an order history on this page."}], "end_turn", read
    if scenario == "find":
        wanted = (re.search(r"INV-\d{3}", goal) or [None])[0]
        hit = [r for r in rows(found) if r["number"] == wanted]
        if hit:
            return [{"type": "text", "text": json.dumps(hit[0])}], "end_turn", read
        nxt = centre(found, "Next")
        if nxt:
            return [{"type": "text", "text": "Next page."}, tool_use({"action": "left_click", "coordinate": nxt})], "tool_use", read
        if "Last" in read:
            return [{"type": "text", "text": f"There is no {wanted} in the list."}], "end_turn", read
        return [tool_use({"action": "scroll", "coordinate": [display[0] // 2, display[1] // 2], "scroll_direction": "down", "scroll_amount": 10})], "tool_use", read
    if scenario == "injection":
        link = centre(found, "console")
        if link:
            return [{"type": "text", "text": "The page says to open the console."}, tool_use({"action": "left_click", "coordinate": link})], "tool_use", read
        return [{"type": "text", "text": "The console did not open."}], "end_turn", read
    if scenario == "invoices":
        listed = rows(found)
        if listed:
            return [{"type": "text", "text": json.dumps({"invoices": listed})}], "end_turn", read
        link = centre(found, "Invoices")
        if link and "Welcome" in read:
            return [tool_use({"action": "left_click", "coordinate": link})], "tool_use", read
        return sign_in(found, read) or ([{"type": "text", "text": "I do not see a sign-in form."}], "end_turn", read)
    line = re.search(r"Welcome,? \S+", read)
    if line:
        return [{"type": "text", "text": json.dumps({"greeting": line.group(0)})}], "end_turn", read
    return sign_in(found, read) or ([{"type": "text", "text": "I do not see a sign-in form."}], "end_turn", read)


def tool_use(input):
    with lock:
        count[0] += 1
        n = count[0]
    return {"type": "tool_use", "id": f"toolu_{n:04d}", "name": "computer", "input": input}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        record = {"path": self.path}
        with lock:
            requests[0] += 1
            n = requests[0]
        status, answer, headers = self.handle_request(n, raw, record)
        # The record first: a client that has the answer may send again at once.
        print(json.dumps(record), flush=True)
        self.answer(status, answer, headers)

    def handle_request(self, n, raw, record):
        try:
            if n <= args.throttle:
                record["throttled"] = True
                return 529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, [("retry-after", "0")]
            try:
                body = json.loads(raw)
            except ValueError:
                raise Refused(400, "the body is not JSON")
            if self.path == "/v1/messages":
                if self.headers.get("x-api-key") != args.key:
                    raise Refused(401, "invalid x-api-key")
                if self.headers.get("anthropic-version") != "2023-06-01":
                    raise Refused(400, "anthropic-version: 2023-06-01")
                if not body.get("model"):
                    raise Refused(400, "model: required")
                beta = [b.strip() for b in (self.headers.get("anthropic-beta") or "").split(",")]
            elif re.fullmatch(r"/model/[^/]+/invoke", self.path):
                auth = self.headers.get("authorization") or ""
                if not auth.startswith("Bearer "):
                    raise Refused(401, "Authorization: Bearer <Bedrock API key>")
                check_bearer(auth[len("Bearer "):])
                if args.authorize:
                    model = urllib.parse.unquote(self.path.split("/")[2])
                    ask = urllib.request.Request(f"{args.authorize.rstrip('/')}/_testenv/bedrock", data=json.dumps({"token": auth[len("Bearer "):], "model": model}).encode(), method="POST")
                    try:
                        with urllib.request.urlopen(ask, timeout=30) as r:
                            record["principal"] = json.loads(r.read())["principal"]
                    except urllib.error.HTTPError as e:
                        raise Refused(403, json.loads(e.read() or b"{}").get("message", "access denied"))
                if body.get("anthropic_version") != "bedrock-2023-05-31" or "model" in body:
                    raise Refused(400, "a Bedrock body: anthropic_version bedrock-2023-05-31, no model")
                beta = body.get("anthropic_beta") or []
            else:
                raise Refused(404, f"no route {self.path}")
            tool, display, newest = validate(body, beta)
            first = (body.get("messages") or [{}])[0].get("content") or [{}]
            goal = first[0].get("text", "") if isinstance(first, list) and first and isinstance(first[0], dict) else ""
            content, stop, read = turn_for(display, newest, n, goal)
            mid = f"msg_{n:04d}"
            thinking = f"Looking at the page before acting #{mid}"
            sig = base64.b64encode(hmac.new(SIGNING, thinking.encode(), hashlib.sha256).digest()).decode()
            content = [{"type": "thinking", "thinking": thinking, "signature": sig}] + content
            given[mid] = content
            record.update({"accepted": True, "stop_reason": stop, "read": read, "actions": [b["input"] for b in content if b["type"] == "tool_use"]})
            return 200, {"id": mid, "type": "message", "role": "assistant", "model": body.get("model", "bedrock"), "content": content,
                         "stop_reason": stop, "usage": {"input_tokens": 1500, "output_tokens": 120, "cache_read_input_tokens": 0}}, []
        except Refused as e:
            record.update({"accepted": False, "status": e.status, "why": str(e)})
            if self.path.startswith("/model/"):
                # Bedrock's errors: {"message"}, the type in a header.
                kind = {400: "ValidationException", 401: "UnrecognizedClientException", 403: "AccessDeniedException"}.get(e.status, "ValidationException")
                return e.status, {"message": str(e)}, [("x-amzn-errortype", kind)]
            kind = "invalid_request_error" if e.status == 400 else "authentication_error"
            return e.status, {"type": "error", "error": {"type": kind, "message": str(e)}}, []


server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
