#!/usr/bin/env python3
"""The Python MCP SDK's OAuth client (`mcp.client.auth.OAuthClientProvider`,
`mcp` 2.x), unmodified, against gnapd's gateway: an `httpx2.AsyncClient`
whose auth is the provider, under `streamable_http_client` and a
`ClientSession`, exactly as an application wires it.

    py_client.py --url http://HOST/mcp/UPSTREAM --tool NAME --tool-args JSON
                 --token-file FILE [--cimd-cert PEM --cimd-key PEM | --client-id ID]
                 [--redirect http://127.0.0.1:PORT/callback] [--wait-before-call SECONDS]

Everything is discovered from the gateway's 401 (protected resource
metadata, authorization server metadata), the client registers dynamically
(or, with --cimd-cert/--cimd-key, hosts its own Client ID Metadata Document
over https on loopback and gives its URL as `client_metadata_url`; or uses
the pre-registered --client-id),
and the "browser" is the redirect handler: one GET of the authorization URL
without following redirects (gnapd --dev approves at once), whose Location
the callback handler hands back as the code, state and iss the SDK checks.

One JSON line per step on stdout ({"step": ..., "ok": ...}); exit 0 when all
passed, 1 otherwise. Every access token the client held goes to --token-file
(one a line). --wait-before-call lets the access token expire before the
tools/call: the SDK refreshes it first (step "refresh").
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import anyio
import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


class MemoryStorage:
    """The SDK's `TokenStorage` protocol, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """What a person's browser does with the authorization URL, headless:
    gnapd --dev answers it with a redirect to the client's callback."""

    def __init__(self) -> None:
        self.location: str | None = None
        self.sent: dict[str, str] = {}
        self.status: int | None = None

    async def open(self, url: str) -> None:
        self.sent = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30.0) as http:
            response = await http.get(url)
        self.status = response.status_code
        self.location = response.headers.get("location")
        if self.location is None:
            raise RuntimeError(f"authorization answered {response.status_code}: {response.text}")

    async def callback(self) -> AuthorizationCodeResult:
        assert self.location is not None
        query = {k: v[0] for k, v in parse_qs(urlparse(self.location).query).items()}
        if "error" in query:
            raise RuntimeError(f"authorization error {query['error']}: {query.get('error_description')}")
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


def host_metadata_document(cert: str, key: str, redirect: str) -> tuple[str, list[str]]:
    """Serves the client's metadata document (its `client_id` is its own
    URL) over https on loopback from a daemon thread; returns the URL and the
    list of paths fetched."""
    fetched: list[str] = []
    state = {"url": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            fetched.append(self.path)
            if self.path != "/oauth/client.json":
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps(
                {
                    "client_id": state["url"],
                    "client_name": "gnapd interop (Python SDK)",
                    "redirect_uris": [redirect],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "none",
                }
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state["url"] = f"https://127.0.0.1:{server.server_address[1]}/oauth/client.json"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state["url"], fetched


async def run(args) -> int:
    storage = MemoryStorage()
    cimd_url, cimd_fetched = None, []
    if args.cimd_cert:
        cimd_url, cimd_fetched = host_metadata_document(args.cimd_cert, args.cimd_key, args.redirect)
    if args.client_id:
        storage.client = OAuthClientInformationFull(
            client_id=args.client_id, redirect_uris=[args.redirect], token_endpoint_auth_method="none"
        )
    browser = Browser()
    challenges: list[dict] = []

    async def record(response: httpx2.Response) -> None:
        if response.status_code in (401, 403):
            challenges.append(
                {
                    "url": str(response.request.url),
                    "status": response.status_code,
                    "www_authenticate": response.headers.get_list("www-authenticate"),
                }
            )

    provider = OAuthClientProvider(
        server_url=args.url,
        client_metadata=OAuthClientMetadata(
            client_name="gnapd interop (Python SDK)",
            redirect_uris=[args.redirect],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.open,
        callback_handler=browser.callback,
        client_metadata_url=cimd_url,
    )
    step = "connect"
    try:
        async with httpx2.AsyncClient(
            auth=provider, timeout=httpx2.Timeout(30.0, read=60.0), event_hooks={"response": [record]}
        ) as http:
            async with streamable_http_client(args.url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tokens = storage.tokens
                    assert tokens is not None
                    if args.token_file:
                        with open(args.token_file, "w", encoding="utf-8") as f:
                            f.write(tokens.access_token)
                    emit(
                        step="authorize",
                        ok=True,
                        challenge=challenges[0] if challenges else None,
                        client_id=storage.client.client_id if storage.client else None,
                        cimd={"url": cimd_url, "fetches": cimd_fetched} if cimd_url else None,
                        authorization_status=browser.status,
                        sent=browser.sent,
                        token_type=tokens.token_type,
                        scope=tokens.scope,
                        refresh=tokens.refresh_token is not None,
                    )
                    emit(
                        step="connect",
                        ok=True,
                        protocol_version=session.protocol_version,
                        server=session.server_info.name if session.server_info is not None else None,
                    )
                    step = "list_tools"
                    tools = await session.list_tools()
                    emit(step="list_tools", ok=True, tools=[t.name for t in tools.tools])
                    if args.wait_before_call > 0:
                        await anyio.sleep(args.wait_before_call)
                    step = "call"
                    result = await session.call_tool(args.tool, json.loads(args.tool_args))
                    text = " ".join(getattr(c, "text", "") for c in result.content)
                    emit(step="call", ok=not result.is_error, text=text)
                    now = storage.tokens
                    assert now is not None
                    held = [tokens.access_token]
                    if now.access_token != tokens.access_token:
                        held.append(now.access_token)
                    if args.token_file:
                        with open(args.token_file, "w", encoding="utf-8") as f:
                            f.write("\n".join(held))
                    refreshed = True
                    if args.wait_before_call > 0:
                        refreshed = now.access_token != tokens.access_token
                        emit(
                            step="refresh",
                            ok=refreshed,
                            access_rotated=refreshed,
                            refresh_rotated=now.refresh_token != tokens.refresh_token,
                        )
                    return 1 if result.is_error or not refreshed else 0
    except BaseException as error:  # noqa: BLE001  (exception groups from anyio too)
        emit(step=step, ok=False, error="".join(traceback.format_exception(error)), seen=challenges)
        return 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--tool", required=True)
    parser.add_argument("--tool-args", default="{}")
    parser.add_argument("--token-file")
    parser.add_argument("--cimd-cert")
    parser.add_argument("--cimd-key")
    parser.add_argument("--client-id")
    parser.add_argument("--wait-before-call", type=float, default=0)
    parser.add_argument("--redirect", default="http://127.0.0.1:33419/callback")
    return anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
