#!/usr/bin/env python3
"""An independent mTLS client instance for gnapd (RFC 9635 §7.3.2).

Python's `ssl` (OpenSSL) makes the TLS connections and presents the client
certificate; `http.client` sends the requests. Nothing of gnapd's code is on
the client side. Against an AS whose TLS listener asks for client certificates
(`gnapd serve --tls-client-certs`) it:

  discovery   OPTIONS on the grant endpoint: `mtls` is listed
  grant       a key {"proof": "mtls", "cert": <its PEM>} over a connection that
              proves that certificate: a token, bound
  foreign     the same grant request over a connection proving ANOTHER
              certificate: refused
  bare        the same over a connection proving none: refused
  thumbprint  a key by "cert#S256" (RFC 8705 x5t#S256, computed here) is granted
  poll        the continuation with the right certificate: answered
  mcp         (with --mcp URL) an MCP initialize at the gateway with the token
              and no signature, over the right certificate, then over the
              foreign one
  rotate      a key rotation for the mtls token: refused
  revoke_foreign / revoke   DELETE the token at its manage URI with the foreign
              certificate (refused), then with the right one (204)

It prints one JSON object: each step's status and body. Exit 0 once every step
ran (the Rust test judges the answers), 2 on a usage error.

  mtls_agent.py --grant-endpoint URL --ca CA.pem --cert C.pem --key K.pem
                --other-cert C2.pem --other-key K2.pem [--mcp URL]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import ssl
import sys
import urllib.parse


def context(ca: str, cert: str | None, key: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def request(ctx: ssl.SSLContext, method: str, url: str, body=None, token=None, headers=None):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=20)
    sent = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    if token:
        sent["Authorization"] = f"GNAP {token}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, body=data, headers=sent)
        answer = conn.getresponse()
        raw = answer.read()
    except (ssl.SSLError, OSError) as e:
        return {"status": None, "error": str(e)}
    finally:
        conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return {"status": answer.status, "body": parsed,
            "www_authenticate": answer.getheader("WWW-Authenticate")}


def pem_body(path: str) -> str:
    lines = open(path).read().strip().splitlines()
    return "".join(l for l in lines if not l.startswith("-----"))


def x5t_s256(path: str) -> str:
    der = ssl.PEM_cert_to_DER_cert(open(path).read())
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--grant-endpoint", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--other-cert", required=True)
    p.add_argument("--other-key", required=True)
    p.add_argument("--mcp")
    a = p.parse_args()
    mine = context(a.ca, a.cert, a.key)
    foreign = context(a.ca, a.other_cert, a.other_key)
    bare = context(a.ca, None, None)
    grant_body = {
        "access_token": {"access": ["mcp:github"]},
        "client": {"key": {"proof": "mtls", "cert": pem_body(a.cert)}},
    }
    report = {"discovery": request(bare, "OPTIONS", a.grant_endpoint)}
    report["grant"] = request(mine, "POST", a.grant_endpoint, grant_body)
    report["foreign"] = request(foreign, "POST", a.grant_endpoint, grant_body)
    report["bare"] = request(bare, "POST", a.grant_endpoint, grant_body)
    by_thumbprint = {
        "access_token": {"access": ["mcp:github"]},
        "client": {"key": {"proof": "mtls", "cert#S256": x5t_s256(a.cert)}},
    }
    report["thumbprint"] = request(mine, "POST", a.grant_endpoint, by_thumbprint)
    granted = report["grant"].get("body") or {}
    token = (granted.get("access_token") or {})
    cont = granted.get("continue") or {}
    if cont:
        report["poll"] = request(mine, "POST", cont["uri"], token=cont["access_token"]["value"])
    if a.mcp and token.get("value"):
        initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "mtls_agent.py", "version": "1"}}}
        mcp_headers = {"Accept": "application/json, text/event-stream"}
        report["mcp"] = request(mine, "POST", a.mcp, initialize, token["value"], mcp_headers)
        report["mcp_foreign"] = request(foreign, "POST", a.mcp, initialize, token["value"], mcp_headers)
    manage = token.get("manage") or {}
    if manage:
        m_uri, m_token = manage["uri"], manage["access_token"]["value"]
        rotation = {"key": {"proof": "mtls", "cert": pem_body(a.other_cert)}}
        report["rotate"] = request(mine, "POST", m_uri, rotation, m_token)
        report["revoke_foreign"] = request(foreign, "DELETE", m_uri, token=m_token)
        report["revoke"] = request(mine, "DELETE", m_uri, token=m_token)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
