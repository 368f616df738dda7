"""A real upstream MCP server for the gateway tests, on the official Python SDK
(`mcp` 2.x: `MCPServer`, formerly FastMCP), over Streamable HTTP.

    python mcp_upstream.py --headers-log FILE [--port N] [--json-response]

Binds 127.0.0.1 (port 0 = any free port), prints `listening on PORT` on
stdout once it accepts connections, and appends one JSON line per HTTP
request it receives to FILE: {"method", "path", "headers": [[name, value]...]}
(names lowercase, in arrival order), so a test can check what reached it.
A request whose query has `fail=1` is answered 500 (a broken upstream).
"""

import argparse
import json
import socket
import sys

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--headers-log", required=True)
    parser.add_argument("--json-response", action="store_true")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate")
    parser.add_argument("--tls-key", help="and this PEM private key")
    args = parser.parse_args()

    app = server.streamable_http_app(json_response=args.json_response)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(64)
    port = sock.getsockname()[1]
    tls = {}
    if args.tls_cert:
        tls = {"ssl_certfile": args.tls_cert, "ssl_keyfile": args.tls_key}
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
