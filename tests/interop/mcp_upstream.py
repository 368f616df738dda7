"""A real upstream MCP server for the gateway tests, on the official Python SDK
(`mcp` 2.x: `MCPServer`, formerly FastMCP), over Streamable HTTP.

    python mcp_upstream.py --headers-log FILE [--port N] [--json-response]

Binds 127.0.0.1 (port 0 = any free port), prints `listening on PORT` on
stdout once it accepts connections, and appends one JSON line per HTTP
request it receives to FILE: {"method", "path", "headers": [[name, value]...]}
(names lowercase, in arrival order), so a test can check what reached it.
A request whose query has `fail=1` is answered 500 (a broken upstream).

With `--oauth`, the server is also its own OAuth 2.0 authorization server
for one confidential client (`gnapd-gw` / `gw-secret`): POST /token takes
the refresh_token grant (RFC 6749 §6, client_secret_basic), rotates the
refresh token on every use (the old one is dead at once) and issues access
tokens that live `--token-lifetime` seconds; /mcp then demands a live
access token (else 401 with `WWW-Authenticate: Bearer`). The first refresh
token is `rt-0`; no access token is live at start. POST /revoke-access
kills every live access token (the test's way to make one die early).

With `--require-header NAME=VALUE`, /mcp answers 401 unless the request
carries header NAME with exactly VALUE (an upstream taking an API key).

With `--userinfo URL`, /mcp answers 401 unless GET URL with the request's
own `Authorization` header answers 200: the bearer token must be live at
that OAuth/OIDC server (its userinfo endpoint).

With `--event-store`, streams are resumable (the SDK's event store hook, kept
in memory here): every SSE event gets an id, and a GET with `Last-Event-ID`
replays what its stream carried after that event, answers included.
"""

import argparse
import base64
import json
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventMessage, EventStore

server = MCPServer("gnapd-test-upstream", log_level="WARNING")


@server.tool()
def search_issues(query: str) -> str:
    """Searches issues (a canned answer)."""
    return f"found 1 issue for {query}"


@server.tool()
def delete_repo(name: str) -> str:
    """Deletes a repository (it must never be reached by an ungranted call)."""
    return f"deleted {name}"


@server.tool()
async def countdown(steps: int, delay: float, ctx: Context) -> str:
    """Reports progress `steps` times, `delay` seconds apart, then answers:
    a streamed (SSE) response whose events must reach the client one by one."""
    for i in range(steps):
        await ctx.report_progress(i + 1, steps, f"step {i + 1}")
        await anyio.sleep(delay)
    return "liftoff"


class RecordHeaders:
    """ASGI middleware: logs every HTTP request's headers before the app runs."""

    def __init__(self, app, path):
        self.app = app
        self.path = path

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            entry = {
                "method": scope["method"],
                "path": scope["path"],
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            }
            with open(self.path, "a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")
            if b"fail=1" in scope.get("query_string", b""):
                # An upstream that breaks: the gateway must answer 502.
                await send({"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": b"upstream exploded"})
                return
        await self.app(scope, receive, send)


class OAuthGate:
    """ASGI middleware: the token endpoint, and the bearer check on /mcp."""

    CLIENT = ("gnapd-gw", "gw-secret")

    def __init__(self, app, lifetime, token_delay=0.0):
        self.app = app
        self.lifetime = lifetime
        # Seconds a refresh takes to answer after it rotated: a wide window
        # for a second client to present the refresh token just rotated.
        self.token_delay = token_delay
        self.refresh = "rt-0"
        self.access = {}  # token -> expiry (monotonic)
        self.issued = 0

    async def json(self, send, status, body, extra=()):
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def token(self, scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = dict(urllib.parse.parse_qsl(body.decode()))
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode()
        client = None
        if auth.lower().startswith("basic "):
            try:
                user, password = base64.b64decode(auth[6:]).decode().split(":", 1)
                client = (urllib.parse.unquote(user), urllib.parse.unquote(password))
            except ValueError:
                client = None
        if client != self.CLIENT:
            return await self.json(send, 401, {"error": "invalid_client"}, [(b"www-authenticate", b'Basic realm="token"')])
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh:
            return await self.json(send, 400, {"error": "invalid_grant"})
        self.issued += 1
        access = f"at-{self.issued}"
        self.refresh = f"rt-{self.issued}"
        self.access = {access: time.monotonic() + self.lifetime}
        if self.token_delay:
            await anyio.sleep(self.token_delay)
        return await self.json(send, 200, {"access_token": access, "token_type": "Bearer", "expires_in": self.lifetime, "refresh_token": self.refresh})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == "/token" and scope["method"] == "POST":
            return await self.token(scope, receive, send)
        if scope["path"] == "/revoke-access" and scope["method"] == "POST":
            # The test's hand on the AS: every access token dies now.
            self.access = {}
            return await self.json(send, 200, {})
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if self.access.get(token, 0) < time.monotonic():
            return await self.json(send, 401, {"error": "invalid_token"}, [(b"www-authenticate", b'Bearer error="invalid_token"')])
        return await self.app(scope, receive, send)


class RequireHeader:
    """ASGI middleware: 401 unless the request carries one header's value."""

    def __init__(self, app, name, value):
        self.app = app
        self.name = name.lower().encode()
        self.value = value.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and dict(scope["headers"]).get(self.name) != self.value:
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
            await send({"type": "http.response.body", "body": b'{"error":"invalid_token"}'})
            return
        await self.app(scope, receive, send)


class UserinfoGate:
    """ASGI middleware: 401 unless the request's bearer token is live at
    the authorization server's userinfo endpoint."""

    def __init__(self, app, url):
        self.app = app
        self.url = url

    def live(self, auth):
        request = urllib.request.Request(self.url, headers={"authorization": auth})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"").decode()
            if not auth.lower().startswith("bearer ") or not await anyio.to_thread.run_sync(self.live, auth):
                await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": b'{"error":"invalid_token"}'})
                return
        await self.app(scope, receive, send)


class MemoryEventStore(EventStore):
    """Every event of every stream, in order; ids `e-1`, `e-2`, ..."""

    def __init__(self):
        self.events = []  # (event id, stream id, message or None)

    async def store_event(self, stream_id, message):
        event_id = f"e-{len(self.events) + 1}"
        self.events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id, send_callback):
        at = next((i for i, e in enumerate(self.events) if e[0] == last_event_id), None)
        if at is None:
            return None
        stream_id = self.events[at][1]
        for event_id, stream, message in self.events[at + 1 :]:
            if stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--headers-log", required=True)
    parser.add_argument("--json-response", action="store_true")
    parser.add_argument("--oauth", action="store_true", help="demand OAuth access tokens; serve /token")
    parser.add_argument("--token-lifetime", type=int, default=3600)
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds /token waits before answering")
    parser.add_argument("--require-header", help="NAME=VALUE: /mcp demands this header")
    parser.add_argument("--userinfo", help="URL: /mcp demands a bearer token this userinfo endpoint accepts")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate")
    parser.add_argument("--tls-key", help="and this PEM private key")
    parser.add_argument("--event-store", action="store_true", help="resumable streams (Last-Event-ID)")
    args = parser.parse_args()

    event_store = MemoryEventStore() if args.event_store else None
    app = server.streamable_http_app(json_response=args.json_response, event_store=event_store)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(64)
    port = sock.getsockname()[1]
    tls = {}
    if args.tls_cert:
        tls = {"ssl_certfile": args.tls_cert, "ssl_keyfile": args.tls_key}
    if args.oauth:
        app = OAuthGate(app, args.token_lifetime, args.token_delay)
    if args.require_header:
        name, value = args.require_header.split("=", 1)
        app = RequireHeader(app, name, value)
    if args.userinfo:
        app = UserinfoGate(app, args.userinfo)
    config = uvicorn.Config(RecordHeaders(app, args.headers_log), log_level="warning", lifespan="on", **tls)
    userver = uvicorn.Server(config)

    async def started():
        # uvicorn has no hook; the socket already accepts, so print now.
        print(f"listening on {port}", flush=True)

    async def run():
        await started()
        await userver.serve(sockets=[sock])

    anyio.run(run)


if __name__ == "__main__":
    sys.exit(main())
