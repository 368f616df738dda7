#!/usr/bin/env python3
"""A deliberately broken GNAP AS, for proving that `gnapd conformance` catches faults.

It is a fault-injecting HTTP proxy in front of a real gnapd in `--interop` mode
(started with `--public-url` set to this proxy's URL, so signatures over
`@target-uri` still verify). Every request is forwarded unchanged; the answers are
changed by the faults chosen with `--faults` (comma separated):

  error-extra-members   every GNAP `error` object gains a member RFC 9635 §3.6 does not define
  no-store-missing      `Cache-Control` is removed from every AS answer (§3, §5, §6)
  continuation-reuse    a continuation token presented again gets the answer its first use got,
                        as if the AS accepted a used token (§5: tokens are single use)
  wrong-finish-hash     the `hash` of a redirect finish (§4.2.1, §4.2.3) is altered

Standard library only. It binds 127.0.0.1 on a free port and prints
`broken-as listening on PORT`; then it reads one line on stdin, the address
(`127.0.0.1:PORT`) of the gnapd it fronts, and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import sys
import threading
import urllib.parse

FAULTS = {"error-extra-members", "no-store-missing", "continuation-reuse", "wrong-finish-hash"}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length"}


class State:
    def __init__(self, faults: set[str]):
        self.faults = faults
        self.upstream: tuple[str, int] | None = None
        self.ready = threading.Event()
        self.lock = threading.Lock()
        # continuation-reuse: the first answer per (path, Authorization).
        self.first_answers: dict[tuple[str, str], tuple[int, list[tuple[str, str]], bytes]] = {}


def alter_hash(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    changed = []
    for name, value in query:
        if name == "hash" and value:
            # Flip the first character within the base64url alphabet.
            value = ("B" if value[0] != "B" else "C") + value[1:]
        changed.append((name, value))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(changed)))


def make_handler(state: State):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args):  # quiet
            pass

        def forward(self):
            state.ready.wait()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            host, port = state.upstream
            conn = http.client.HTTPConnection(host, port, timeout=30)
            # Every field line as it came, repeated ones too (a key rotation's
            # two signatures may come on two lines).
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            answer = conn.getresponse()
            status, out_headers, out_body = answer.status, answer.getheaders(), answer.read()
            conn.close()
            status, out_headers, out_body = self.break_answer(status, out_headers, out_body)
            self.send_response(status)
            for name, value in out_headers:
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(out_body)))
            self.end_headers()
            self.wfile.write(out_body)

        def break_answer(self, status, headers, body):
            path = self.path.split("?")[0]
            is_json = any(n.lower() == "content-type" and "json" in v.lower() for n, v in headers)
            if "continuation-reuse" in state.faults and path.startswith("/gnap/continue/"):
                key = (path, self.headers.get("Authorization", ""))
                with state.lock:
                    if status == 200:
                        state.first_answers.setdefault(key, (status, headers, body))
                    elif key in state.first_answers:
                        status, headers, body = state.first_answers[key]
            if is_json and body:
                try:
                    document = json.loads(body)
                except ValueError:
                    document = None
                if isinstance(document, dict):
                    changed = False
                    if "error-extra-members" in state.faults and isinstance(document.get("error"), dict):
                        document["error"]["hint"] = "an extra member"
                        changed = True
                    if ("wrong-finish-hash" in state.faults and path == "/interop/decide"
                            and isinstance(document.get("redirect_to"), str)):
                        document["redirect_to"] = alter_hash(document["redirect_to"])
                        changed = True
                    if changed:
                        body = json.dumps(document).encode()
            if "no-store-missing" in state.faults and path.startswith("/gnap"):
                headers = [(n, v) for n, v in headers if n.lower() != "cache-control"]
            return status, headers, body

        do_GET = do_POST = do_PATCH = do_DELETE = do_OPTIONS = do_PUT = forward

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", default="", help="comma separated: " + ", ".join(sorted(FAULTS)))
    args = parser.parse_args()
    faults = {f for f in args.faults.split(",") if f}
    unknown = faults - FAULTS
    if unknown:
        print(f"unknown faults: {sorted(unknown)}", file=sys.stderr)
        return 2
    state = State(faults)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    print(f"broken-as listening on {server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    line = sys.stdin.readline().strip()
    host, _, port = line.rpartition(":")
    if not host or not port.isdigit():
        print(f"expected HOST:PORT on stdin, got {line!r}", file=sys.stderr)
        return 2
    state.upstream = (host, int(port))
    state.ready.set()
    sys.stdin.read()  # serve until the test closes stdin
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
