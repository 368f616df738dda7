"""An MCP upstream whose JSON decoder reads messages the way Go's
`encoding/json` decodes into structs (as the Go MCP SDK before 1.3.1 and
mcp-go do), for the gateway's smuggling tests. Standard library only.

    python mcp_golike_upstream.py --executed-log FILE

Binds 127.0.0.1 on a free port, prints `listening on PORT`, and answers
POST /mcp with plain JSON (Streamable HTTP without sessions or SSE): one
JSON-RPC message per POST, 202 for a message without an id.

How it reads a message, as Go does for a struct:
- an object member goes to the field whose name it equals exactly, else to
  the field it equals under Go's folding (ASCII case, and each other
  character mapped through lower- then upper-case: `ſ` reads as `S`, the
  Kelvin sign as `K`, `ı` and `İ` as `I`); members matching no field are
  skipped;
- members are applied in order, so the last one for a field wins (a
  JSON null leaves a string field as it was);
- `\\u` escapes in names are decoded before matching.

With `--methods-any-case`, methods are dispatched whatever their case
(`Tools/List` is tools/list), as some JSON-RPC routers do.

It records what it executes, one JSON line per action in FILE:
`{"method": ..., "name": ...}` for `tools/call` and `prompts/get`,
`{"method": "resources/read", "uri": ...}`. A `tools/call` runs whether or
not the message has an id (some JSON-RPC servers run a notification they
have a handler for), so a call the gateway took for a notification counts.
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOOLS = [
    {"name": "search_issues", "description": "Searches issues.", "inputSchema": {"type": "object"}},
    {"name": "delete_repo", "description": "Deletes a repository.", "inputSchema": {"type": "object"}},
]

# The structs a Go server decodes into: field names as tagged.
MESSAGE = ("jsonrpc", "id", "method", "params", "result", "error")
PARAMS = {
    "tools/call": ("name", "arguments", "_meta"),
    "prompts/get": ("name", "arguments", "_meta"),
    "resources/read": ("uri", "_meta"),
}


def fold_char(c):
    """Go's fold for one character: ASCII upper-cased; any other character
    lower-cased, then upper-cased, with the simple (one-character) mappings
    Go uses. Python's mappings are the full ones: a mapping longer than one
    character (`İ` lower-cases to `i` plus a combining dot) keeps its first."""
    if c < "\x80":
        return c.upper()
    lower = c.lower()
    lower = lower[0] if lower else c
    upper = lower.upper()
    return upper if len(upper) == 1 else lower


def fold(name):
    return "".join(fold_char(c) for c in name)


def go_struct(pairs, fields):
    """The fields a Go struct with `fields` gets from an object's members."""
    if not isinstance(pairs, list):
        return {}
    exact = set(fields)
    folded = {fold(f): f for f in fields}
    out = {}
    for key, value in pairs:
        field = key if key in exact else folded.get(fold(key))
        if field is None:
            continue
        if value is None and field != "id":
            continue
        out[field] = value
    return out


def plain(value):
    """A decoded value with objects as dicts (last duplicate wins, as Go's
    map decoding does), for answers."""
    if isinstance(value, list) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return {k: plain(v) for k, v in value}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class Upstream:
    def __init__(self, log, methods_any_case=False):
        self.log = log
        self.methods_any_case = methods_any_case
        self.lock = threading.Lock()

    def record(self, entry):
        with self.lock, open(self.log, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")

    def handle(self, body):
        """(status, answer or None) for one POSTed body."""
        try:
            # Objects as lists of (name, value) pairs: duplicates kept, in order.
            pairs = json.loads(body, object_pairs_hook=lambda p: p)
        except ValueError:
            return 400, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
        message = go_struct(pairs, MESSAGE)
        has_id = "id" in message and message["id"] is not None
        method = message.get("method")
        if not isinstance(method, str):
            return 202, None
        if self.methods_any_case:
            method = method.lower()
        params = go_struct(message.get("params"), PARAMS.get(method, ()))
        result = None
        if method == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}, "resources": {}, "prompts": {}},
                "serverInfo": {"name": "golike-upstream", "version": "0"},
            }
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            name = params.get("name")
            self.record({"method": method, "name": name})
            result = {"content": [{"type": "text", "text": f"ran {name}"}], "isError": False}
        elif method == "prompts/get":
            name = params.get("name")
            self.record({"method": method, "name": name})
            result = {"messages": [{"role": "user", "content": {"type": "text", "text": f"prompt {name}"}}]}
        elif method == "resources/read":
            uri = params.get("uri")
            self.record({"method": method, "uri": uri})
            result = {"contents": [{"uri": uri, "text": f"contents of {uri}"}]}
        elif method == "ping":
            result = {}
        if not has_id:
            return 202, None
        id_ = plain(message["id"])
        if result is None:
            return 200, {"jsonrpc": "2.0", "id": id_, "error": {"code": -32601, "message": "method not found"}}
        return 200, {"jsonrpc": "2.0", "id": id_, "result": result}


def handler(upstream):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, answer):
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            if answer is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path != "/mcp":
                return self.reply(404, None)
            self.reply(*upstream.handle(body))

        def do_GET(self):
            # No server stream (the transport's 405).
            self.reply(405, None)

        def do_DELETE(self):
            self.reply(405, None)

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--executed-log", required=True)
    parser.add_argument("--methods-any-case", action="store_true")
    args = parser.parse_args()
    upstream = Upstream(args.executed_log, args.methods_any_case)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(upstream))
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
