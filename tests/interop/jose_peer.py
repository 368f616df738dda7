#!/usr/bin/env python3
"""Independent JWS key-proofing peer for gnapd (RFC 9635 sections 7.3.3, 7.3.4).

Builds `jwsd` and `jws` requests with PyJWT and `cryptography` alone: its own
Ed25519 key and JWK, its own SHA-256 of the content (hashlib), its own JOSE
header (kid, alg, typ, htm, uri, created, ath), and sends them to a gnapd with
the standard library's HTTP client. Nothing here comes from gnapd.

Usage:
  jose_peer.py --grant-endpoint URL --method jwsd|jws [--tamper]

It asks for a grant; without --tamper it then revokes the token it got through
the management URI (a bodiless DELETE with `ath`). It prints one JSON object:
{"grant": {"status": N, "body": {...}}, "revoke": {"status": N} | null}.
Exit 0 when it could talk to the server (the caller judges the answers);
1 on a transport or dependency failure; 2 on a usage error.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import time
import urllib.error
import urllib.request

try:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError as _e:  # pragma: no cover - environment problem
    print(json.dumps({"error": f"missing dependency: {_e} (pip install -r requirements.txt)"}))
    sys.exit(1)

KID = "python-peer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(key: ed25519.Ed25519PrivateKey) -> dict:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "alg": "EdDSA", "kid": KID}


def header(typ: str, method: str, uri: str, token: str | None) -> dict:
    fields = {"kid": KID, "typ": typ, "htm": method, "uri": uri, "created": int(time.time())}
    if token is not None:
        fields["ath"] = b64url(hashlib.sha256(token.encode("ascii")).digest())
    return fields


def prove(key, proof: str, method: str, uri: str, token: str | None, content: bytes):
    """The extra headers and the body of a request proved with `proof`."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"GNAP {token}"
    if proof == "jws" and content:
        # Attached: the body is the compact JWS, its payload the JSON content.
        body = jwt.api_jws.PyJWS().encode(
            content, key, algorithm="EdDSA", headers=header("gnap-binding-jws", method, uri, token)
        )
        headers["Content-Type"] = "application/jose"
        return headers, body.encode("ascii")
    # Detached: the payload is the content's SHA-256 digest (empty without
    # content), left out of the compact form (RFC 7515 Appendix F). PyJWT's
    # own detached mode signs an unencoded payload (RFC 7797, `b64: false`),
    # which is not GNAP's signing input, so the segment is cut here instead.
    typ = "gnap-binding-jwsd" if proof == "jwsd" else "gnap-binding-jws"
    payload = hashlib.sha256(content).digest() if content else b""
    compact = jwt.api_jws.PyJWS().encode(payload, key, algorithm="EdDSA", headers=header(typ, method, uri, token))
    head, _, signature = compact.split(".")
    headers["Detached-JWS"] = f"{head}..{signature}"
    if content:
        headers["Content-Type"] = "application/json"
    return headers, content


def send(method: str, uri: str, headers: dict, body: bytes):
    request = urllib.request.Request(uri, data=body or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grant-endpoint", required=True)
    parser.add_argument("--method", required=True, choices=["jwsd", "jws"])
    parser.add_argument("--tamper", action="store_true", help="change the content after proving it")
    args = parser.parse_args()

    key = ed25519.Ed25519PrivateKey.generate()
    grant = {
        "access_token": {"access": ["mcp:github"]},
        "client": {"key": {"proof": args.method, "jwk": public_jwk(key)}},
    }
    content = json.dumps(grant).encode("utf-8")
    headers, body = prove(key, args.method, "POST", args.grant_endpoint, None, content)
    if args.tamper:
        tampered = json.dumps({**grant, "access_token": {"access": ["mcp:admin"]}}).encode("utf-8")
        if args.method == "jws":
            head, _, signature = body.decode("ascii").split(".")
            body = f"{head}.{b64url(tampered)}.{signature}".encode("ascii")
        else:
            body = tampered
    status, answer = send("POST", args.grant_endpoint, headers, body)
    granted = json.loads(answer) if answer else None
    report = {"grant": {"status": status, "body": granted}, "revoke": None}
    if status == 200 and not args.tamper:
        manage = granted["access_token"]["manage"]
        token = manage["access_token"]["value"]
        headers, body = prove(key, args.method, "DELETE", manage["uri"], token, b"")
        revoked, _ = send("DELETE", manage["uri"], headers, body)
        report["revoke"] = {"status": revoked}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as error:
        print(json.dumps({"error": f"transport: {error}"}))
        sys.exit(1)
