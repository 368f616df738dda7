#!/usr/bin/env python3
"""An official MCP SDK client (Python `mcp` 2.x) driving the gnapd gateway with a
GNAP access token bound to a fresh key.

    mcp_client.py --as-uri http://127.0.0.1:PORT/gnap --gateway http://127.0.0.1:PORT/mcp/github \
        --access '[{"type": "mcp", "identifier": "github", "tools": ["search_issues"]}]' \
        --tool search_issues --tool-args '{"query": "bug"}' --denied-tool delete_repo \
        [--mode handshake|auto] [--key ed25519|p256] [--expect-tools JSON] [--token-file F] [--wrong-key]

The token comes from the AS itself: a fresh key (agent.py's `Client`, no
pre-registration), a grant request signed by `http-message-signatures` through
peer.py. The MCP session is the SDK's own `ClientSession` over its Streamable
HTTP client; every HTTP request the SDK sends (POST, the GET stream, the
closing DELETE) goes through `GnapSigner`, an `httpx2.Auth` that adds
`Authorization: GNAP <token>` and signs per RFC 9635 §7.3.1 with the same
library: covered "@method" "@target-uri" "authorization", "content-digest"
when there is a body, and each of mcp-protocol-version, mcp-session-id,
mcp-method, mcp-name when present; created, nonce, tag="gnap", keyid = the
JWK kid, no alg. Each signature is checked against that profile before the
request leaves (a wrong request must never reach the gateway unnoticed).

`--mode handshake` (default) runs the 2025-11-25 `initialize` handshake;
`--mode auto` lets the SDK probe `server/discover` first (2026-07-28, with the
`Mcp-Method`/`Mcp-Name` headers) and fall back to the handshake.

Steps, one JSON line each on stdout ({"step": ..., "ok": ...}):
  grant        the token from the AS (access as asked, bound, not bearer)
  connect      initialize (or discover): the protocol version and server name
  list_tools   the tool names as the SDK saw them
  call_tool    a granted tool: its text result, not an error
  denied_tool  an ungranted tool: a JSON-RPC error (the gateway's 403, -32003)
  done         every step matched; "signed" counts the requests signed

Exit codes: 0 every step matched; 1 a step did not (its line has "ok": false and
"error", and the reason goes to stderr too); 2 usage error.
"""

from __future__ import annotations

import argparse
import datetime
import json
import secrets
import sys
from pathlib import Path

import anyio
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import agent  # noqa: E402  (fresh key + signed grant request)
import peer  # noqa: E402  (the RFC 9421 library, GNAP profile helpers)

EXIT_OK = 0
EXIT_FAIL = 1
# The headers a gateway policy reads: covered whenever they are present.
MCP_HEADERS = ["mcp-protocol-version", "mcp-session-id", "mcp-method", "mcp-name"]
# gnapd's JSON-RPC code for a call the token does not allow (HTTP 403).
DENIED_CODE = -32003


class StepFailed(Exception):
    """A step's outcome did not match what is expected."""


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise StepFailed(message)


class GnapSigner(httpx2.Auth):
    """Signs every request per RFC 9635 §7.3.1 with `http-message-signatures`."""

    requires_request_body = True

    def __init__(self, key: peer.JwkKey, token: str):
        self.key = key
        self.token = token
        # (method, covered components, mcp headers present) for each request signed.
        self.signed: list[dict] = []
        self.failure: str | None = None

    def auth_flow(self, request: httpx2.Request):
        try:
            self._sign(request)
        except Exception as e:  # noqa: BLE001 - reported by the step that sent it
            self.failure = f"signing {request.method} {request.url}: {type(e).__name__}: {e}"
            raise
        yield request

    def _sign(self, request: httpx2.Request) -> None:
        for name in ("Authorization", "Signature", "Signature-Input", "Content-Digest"):
            if name in request.headers:
                del request.headers[name]
        request.headers["Authorization"] = f"GNAP {self.token}"
        body = request.content or b""
        lines = peer.FieldLines(request.headers.multi_items())
        method = request.method
        url = str(request.url)
        covered = ["@method", "@target-uri", "authorization"]
        if body:
            lines["Content-Digest"] = peer.content_digest(body)
            covered.append("content-digest")
        present = [h for h in MCP_HEADERS if h in lines]
        covered.extend(present)
        msg = peer.Request(method, url, lines)
        signer = peer.HTTPMessageSigner(
            signature_algorithm=self.key.algorithm,
            key_resolver=peer.MappingKeyResolver(public_keys={}, private_keys={self.key.kid: self.key.private_key}),
        )
        prepared = signer.prepare(
            msg,
            key_id=self.key.kid,
            created=datetime.datetime.now(datetime.UTC),
            nonce=secrets.token_urlsafe(24),
            label=peer.DEFAULT_LABEL,
            tag=peer.GNAP_TAG,
            include_alg=False,
            covered_component_ids=covered,
            body=body or None,
            use_existing_digest=bool(body),
        )
        raw = self.key.algorithm(private_key=self.key.private_key).sign(prepared.signature_base)
        signer.apply(msg, prepared, raw)
        base = prepared.signature_base.decode("ascii")
        summary = agent.check_profile(msg, base, method=method, url=url, want=covered, kid=self.key.kid)
        for name in ("Content-Digest", "Signature-Input", "Signature"):
            values = lines.get_all(name)
            if values:
                request.headers[name] = values[-1]
        self.signed.append({"method": method, "covered": summary["covered"], "mcp_headers": present})


def obtain_token(as_uri: str, access: list, kind: str) -> tuple[agent.Client, str, dict]:
    """A grant request from a fresh key; the bound access token it returns."""
    client = agent.Client(kind)
    request = {
        "access_token": {"access": access},
        "client": {"key": {"proof": "httpsig", "jwk": client.public_jwk}, "display": {"name": "mcp sdk client"}},
    }
    try:
        answer, signed = client.signed("POST", as_uri, body_obj=request)
    except agent.StepFailed as e:
        raise StepFailed(str(e)) from e
    expect(answer.status == 200, f"grant request: {answer.brief()}")
    try:
        body = answer.json("grant response")
    except agent.StepFailed as e:
        raise StepFailed(str(e)) from e
    token = body.get("access_token") if isinstance(body, dict) else None
    expect(isinstance(token, dict) and agent.nonempty_str(token.get("value")), f"no access token in {body!r}")
    expect("bearer" not in token.get("flags", []), "the AS issued a bearer token; a bound one was asked for")
    expect(token.get("access") == access, f"access is {token.get('access')!r}, want {access!r}")
    return client, token["value"], {"signed": signed, "access": token["access"], "expires_in": token.get("expires_in")}


class Run:
    def __init__(self, args):
        self.args = args
        self.step = "start"
        self.steps = 0

    def report(self, step: str, **detail) -> None:
        self.steps += 1
        print(json.dumps({"step": step, "ok": True, **detail}), flush=True)

    async def run(self) -> None:
        args = self.args
        self.step = "grant"
        client, token, detail = obtain_token(args.as_uri, args.access, args.key)
        if args.token_file:
            # For a test that checks where the token went (never to the upstream).
            Path(args.token_file).write_text(token, encoding="utf-8")
        self.report("grant", **detail)

        key = client.key
        if args.wrong_key:
            # A negative control: sign the MCP traffic with another fresh key,
            # not the one the token is bound to, under the bound key's kid (so
            # only the signature itself can tell). The gateway must refuse it.
            other = agent.Client(args.key).key
            key = peer.JwkKey(other.algorithm, other.public_key, other.private_key, client.kid)
        signer = GnapSigner(key, token)
        async with httpx2.AsyncClient(auth=signer, timeout=httpx2.Timeout(30.0, read=60.0)) as http:
            async with streamable_http_client(args.gateway, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await self.session_steps(session, signer)
        # Leaving the transport sent the session's DELETE, signed too.
        expect(signer.failure is None, signer.failure or "")
        methods = sorted({s["method"] for s in signer.signed})
        covered_mcp = sorted({h for s in signer.signed for h in s["mcp_headers"]})
        self.step = "done"
        print(
            json.dumps(
                {
                    "step": "done",
                    "ok": True,
                    "steps": self.steps,
                    "signed": len(signer.signed),
                    "signed_methods": methods,
                    "covered_mcp_headers": covered_mcp,
                }
            ),
            flush=True,
        )

    async def session_steps(self, session: ClientSession, signer: GnapSigner) -> None:
        args = self.args
        self.step = "connect"
        if args.mode == "auto":
            # The SDK's connect-time policy, as `mcp.Client(mode="auto")` runs
            # it: probe server/discover (2026-07-28), else the handshake.
            from mcp.client._probe import negotiate_auto

            await negotiate_auto(session)
        else:
            await session.initialize()
        version = session.protocol_version
        server = session.server_info.name if session.server_info is not None else None
        expect(signer.failure is None, signer.failure or "")
        self.report("connect", mode=args.mode, protocol_version=version, server=server)

        self.step = "list_tools"
        listed = await session.list_tools()
        names = [t.name for t in listed.tools]
        if args.expect_tools is not None:
            expect(names == args.expect_tools, f"tools/list shows {names}, want {args.expect_tools}")
        self.report("list_tools", tools=names)

        self.step = "call_tool"
        result = await session.call_tool(args.tool, args.tool_args)
        texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
        expect(not result.is_error, f"tools/call {args.tool} is an error: {texts}")
        expect(texts, f"tools/call {args.tool} returned no text: {result!r}")
        self.report("call_tool", tool=args.tool, text=texts)

        if args.denied_tool:
            self.step = "denied_tool"
            try:
                result = await session.call_tool(args.denied_tool, args.denied_args)
            except MCPError as e:
                code, message = e.error.code, e.error.message
            else:
                texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
                raise StepFailed(f"tools/call {args.denied_tool} was answered: error={result.is_error} {texts}")
            expect(code == DENIED_CODE, f"tools/call {args.denied_tool}: error {code} {message!r}, want {DENIED_CODE}")
            expect(args.denied_tool in message, f"the refusal does not name the tool: {message!r}")
            self.report("denied_tool", tool=args.denied_tool, code=code, message=message)


def json_arg(kind):
    def parse(text: str):
        try:
            value = json.loads(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not JSON: {e}") from e
        if not isinstance(value, kind):
            raise argparse.ArgumentTypeError(f"want a JSON {kind.__name__}")
        return value

    return parse


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="mcp_client.py", description="official MCP SDK client with GNAP signing")
    p.add_argument("--as-uri", required=True, help="the AS grant endpoint")
    p.add_argument("--gateway", required=True, help="the gateway endpoint, {public}/mcp/{upstream}")
    p.add_argument("--access", type=json_arg(list), required=True, help="the access rights to ask for (JSON array)")
    p.add_argument("--key", choices=sorted(agent.JWK_ALG), default="ed25519")
    p.add_argument("--mode", choices=["handshake", "auto"], default="handshake")
    p.add_argument("--tool", required=True, help="a granted tool to call")
    p.add_argument("--tool-args", type=json_arg(dict), default={})
    p.add_argument("--denied-tool", help="an ungranted tool: its call must be refused")
    p.add_argument("--denied-args", type=json_arg(dict), default={})
    p.add_argument("--wrong-key", action="store_true", help="sign MCP requests with a key the token is not bound to")
    p.add_argument("--token-file", help="write the access token value here (for tests)")
    p.add_argument("--expect-tools", type=json_arg(list), help="the exact tools/list names expected (JSON array)")
    args = p.parse_args(argv)
    for url in (args.as_uri, args.gateway):
        if not agent.absolute_http_uri(url):
            p.error(f"{url!r} is not an absolute http(s) URL")
    run = Run(args)
    try:
        anyio.run(run.run)
    except StepFailed as e:
        error = str(e)
    except Exception as e:  # noqa: BLE001 - a failed step, never a bare traceback
        error = f"{type(e).__name__}: {e}"
        # anyio task groups wrap failures: name the first real one.
        while isinstance(e, BaseExceptionGroup) and e.exceptions:
            e = e.exceptions[0]
            error = f"{type(e).__name__}: {e}"
    else:
        return EXIT_OK
    print(json.dumps({"step": run.step, "ok": False, "error": error}), flush=True)
    print(f"mcp_client.py: step {run.step!r} failed: {error}", file=sys.stderr)
    return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
