#!/usr/bin/env python3
"""A GNAP client instance (RFC 9635) written with an independent RFC 9421 library.

Every request is signed by the PyPI package ``http-message-signatures`` (through
peer.py's GNAP-profile signer: tag="gnap", no ``alg``, keyid = JWK ``kid``,
created + nonce, covering @method, @target-uri, content-digest when there is
content and authorization when a token is sent) and sent with urllib from the
standard library. Nothing here uses gnapd's code.

    agent.py --as-uri http://127.0.0.1:PORT/gnap [--key ed25519|p256]

Steps, each printed as one JSON line on stdout ({"step": ..., "ok": ...}):
  key             generate a fresh key pair (no pre-registration), JWK with alg + kid
  discovery       OPTIONS the grant endpoint (RFC 9635 §9)
  grant           signed POST of a grant request presenting the key by value (§2, §3)
  rotate          signed POST to the management URI with the management token (§6.1)
  revoke          signed DELETE to the management URI: 204 (§6.2)
  revoke-again    the same DELETE again: still 204 (revocation is idempotent)
  rotate-revoked  rotating the revoked token fails with an error object (§3.6)
  wait            honour the continuation's `wait` (§3.1)
  delete-grant    signed DELETE to the continuation URI: 204 (§5.4)
  done            every step matched

Exit codes: 0 every step matched; 1 a step did not match (its line has "ok": false
and "error", and the reason goes to stderr too); 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer  # noqa: E402  (the RFC 9421 signer: http-message-signatures + cryptography)

EXIT_OK = 0
EXIT_FAIL = 1
ACCESS = ["mcp:github"]
# §3.1: without a `wait`, a client waits 5 seconds before calling the continuation URI.
DEFAULT_WAIT = 5
HTTP_TIMEOUT = 15
# JWS algorithm names for the JWK `alg` member, which RFC 9635 §7.1 requires.
JWK_ALG = {"ed25519": "EdDSA", "p256": "ES256"}


class StepFailed(Exception):
    """A step's outcome did not match what RFC 9635 and the brief expect."""


# ------------------------------------------------------------------------ HTTP


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to check, not something to follow (and re-sign)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No proxy handler: the AS is on loopback, and an http_proxy variable in the
# environment must not reroute (and so re-target) the signed requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


class Answer:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def media_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def json(self, what: str):
        if self.media_type() != "application/json":
            raise StepFailed(f"{what}: Content-Type is {self.headers.get('Content-Type')!r}, want application/json")
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise StepFailed(f"{what}: the body is not JSON: {e}: {self.body[:200]!r}") from e

    def brief(self) -> str:
        return f"HTTP {self.status}: {self.body[:300].decode('utf-8', 'replace')}"


def http(method: str, url: str, headers: list[tuple[str, str]], body: bytes | None) -> Answer:
    req = urllib.request.Request(url, data=body, method=method)
    for name, value in headers:
        req.add_header(name, value)
    try:
        with _OPENER.open(req, timeout=HTTP_TIMEOUT) as resp:
            return Answer(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.headers, e.read())
    except (urllib.error.URLError, OSError) as e:
        raise StepFailed(f"{method} {url}: no HTTP answer: {e}") from e


# --------------------------------------------------------------------- signing

_SIG_INPUT = re.compile(r'^(?P<label>[a-z*][a-z0-9_.*-]*)=\((?P<components>[^)]*)\)(?P<params>.*)$')
_PARAM = re.compile(r';([a-z*][a-z0-9_.*-]*)=("(?:[^"\\]|\\.)*"|-?\d+)')


def check_profile(signed, base: str, *, method: str, url: str, want: list[str], kid: str) -> dict:
    """Checks the Signature-Input the library produced against the GNAP profile.

    A self-check before sending: the AS is tested, not our use of the library,
    so a wrong request must never reach it unnoticed.
    """
    inputs = signed.headers.get_all("Signature-Input")
    if len(inputs) != 1 or len(signed.headers.get_all("Signature")) != 1:
        raise StepFailed(f"want exactly one Signature-Input and Signature, got {inputs}")
    m = _SIG_INPUT.match(inputs[0])
    if not m:
        raise StepFailed(f"unparseable Signature-Input {inputs[0]!r}")
    covered = re.findall(r'"([^"]*)"', m.group("components"))
    params = {k: v.strip('"') for k, v in _PARAM.findall(m.group("params"))}
    problems = []
    if covered != want:
        problems.append(f"covered {covered}, want {want}")
    if "alg" in params:
        problems.append("an alg parameter is present")
    if params.get("tag") != "gnap":
        problems.append(f"tag is {params.get('tag')!r}")
    if params.get("keyid") != kid:
        problems.append(f"keyid {params.get('keyid')!r} is not the JWK kid {kid!r}")
    if "created" not in params or "nonce" not in params:
        problems.append("created or nonce missing")
    # The signed target URI is exactly the URL urllib is about to call.
    if f'"@target-uri": {url}' not in base.split("\n"):
        problems.append(f"the signature base does not cover @target-uri {url}")
    if f'"@method": {method}' not in base.split("\n"):
        problems.append(f"the signature base does not cover @method {method}")
    if problems:
        raise StepFailed("the request is not signed per RFC 9635 §7.3.1: " + "; ".join(problems))
    return {
        "method": method,
        "target_uri": url,
        "label": m.group("label"),
        "covered": covered,
        "params": sorted(params),
        "tag": params["tag"],
        "keyid": params["keyid"],
    }


class Client:
    """The client instance: a fresh key and nothing else."""

    def __init__(self, kind: str):
        if kind == "ed25519":
            sk = peer.ed25519.Ed25519PrivateKey.generate()
        else:
            sk = peer.ec.generate_private_key(peer.ec.SECP256R1())
        self.kid = f"py-agent-{secrets.token_urlsafe(9)}"
        private = peer.jwk_from_private_key(sk, self.kid)
        private["alg"] = JWK_ALG[kind]
        self.key = peer.parse_jwk(private, need_private=True)
        self.public_jwk = peer.public_jwk(private)

    def signed(
        self, method: str, url: str, *, token: str | None = None, body_obj=None
    ) -> tuple[Answer, dict]:
        headers: list[tuple[str, str]] = []
        body = None
        if body_obj is not None:
            body = json.dumps(body_obj).encode("utf-8")
            headers.append(("Content-Type", "application/json"))
        if token is not None:
            headers.append(("Authorization", f"GNAP {token}"))
        try:
            signed, base = peer.sign_request(self.key, method=method, url=url, headers=headers, body=body)
        except peer.PeerFailure as e:
            raise StepFailed(f"the library could not sign {method} {url}: {e}") from e
        want = ["@method", "@target-uri"]
        if body:
            want.append("content-digest")
        if token is not None:
            want.append("authorization")
        summary = check_profile(signed, base, method=method, url=url, want=want, kid=self.kid)
        return http(method, url, signed.headers.items(), body), summary


# ----------------------------------------------------------------------- checks


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise StepFailed(message)


def nonempty_str(value) -> bool:
    return isinstance(value, str) and value != ""


def absolute_http_uri(value) -> bool:
    if not nonempty_str(value):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def check_access_token(token, what: str) -> None:
    """§3.2.1: a single access token object, bound to our key (not bearer)."""
    expect(isinstance(token, dict), f"{what}: access_token is not a single object: {token!r}")
    expect(nonempty_str(token.get("value")), f"{what}: access_token.value missing")
    expect(token.get("access") == ACCESS, f"{what}: access is {token.get('access')!r}, want {ACCESS}")
    manage = token.get("manage")
    expect(isinstance(manage, dict), f"{what}: access_token.manage missing")
    expect(absolute_http_uri(manage.get("uri")), f"{what}: manage.uri is not an absolute URI: {manage.get('uri')!r}")
    mat = manage.get("access_token")
    expect(isinstance(mat, dict) and nonempty_str(mat.get("value")), f"{what}: manage.access_token.value missing")
    expires_in = token.get("expires_in")
    expect(
        isinstance(expires_in, int) and not isinstance(expires_in, bool) and expires_in > 0,
        f"{what}: expires_in is {expires_in!r}, want a positive integer",
    )
    flags = token.get("flags", [])
    expect(isinstance(flags, list) and "bearer" not in flags, f"{what}: flags {flags!r} (we asked for a bound token)")


def error_code(answer: Answer, what: str) -> str:
    """§3.6: an error response carries `error`, an object with `code` (or the code as a string)."""
    body = answer.json(what)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
    else:
        code = error
    expect(nonempty_str(code), f"{what}: no error code in {body!r}")
    return code


# ------------------------------------------------------------------------ agent


class Agent:
    def __init__(self, as_uri: str, kind: str):
        self.as_uri = as_uri
        self.kind = kind
        self.steps = 0
        self.step = "start"

    def report(self, step: str, **detail) -> None:
        self.steps += 1
        print(json.dumps({"step": step, "ok": True, **detail}), flush=True)

    def run(self) -> None:
        # key
        self.step = "key"
        client = Client(self.kind)
        expect("d" not in client.public_jwk, "the public JWK carries the private member d")
        self.report("key", kty=client.public_jwk["kty"], crv=client.public_jwk["crv"],
                    alg=client.public_jwk["alg"], kid=client.kid)

        # discovery (§9): unsigned OPTIONS to the grant endpoint.
        self.step = "discovery"
        answer = http("OPTIONS", self.as_uri, [], None)
        expect(answer.status == 200, f"OPTIONS: {answer.brief()}")
        doc = answer.json("discovery")
        expect(isinstance(doc, dict), f"discovery document is not an object: {doc!r}")
        expect(doc.get("grant_request_endpoint") == self.as_uri,
               f"grant_request_endpoint {doc.get('grant_request_endpoint')!r} is not the URL called ({self.as_uri})")
        proofs = doc.get("key_proofs_supported", ["httpsig"])
        expect(isinstance(proofs, list) and "httpsig" in proofs, f"key_proofs_supported {proofs!r} lacks httpsig")
        self.report("discovery", status=answer.status, grant_request_endpoint=doc["grant_request_endpoint"],
                    key_proofs_supported=proofs, key_rotation_supported=doc.get("key_rotation_supported", False))

        # grant (§2): the key presented by value, nothing registered beforehand.
        self.step = "grant"
        request = {
            "access_token": {"access": ACCESS},
            "client": {"key": {"proof": "httpsig", "jwk": client.public_jwk}, "display": {"name": "python agent"}},
        }
        answer, signed = client.signed("POST", self.as_uri, body_obj=request)
        expect(answer.status == 200, f"grant request: {answer.brief()}")
        granted_at = time.monotonic()
        body = answer.json("grant response")
        expect(isinstance(body, dict) and "error" not in body, f"grant response is an error: {body!r}")
        token = body.get("access_token")
        check_access_token(token, "grant response")
        cont = body.get("continue")
        expect(isinstance(cont, dict), f"grant response has no continue object: {body!r}")
        expect(absolute_http_uri(cont.get("uri")), f"continue.uri is not an absolute URI: {cont.get('uri')!r}")
        cat = cont.get("access_token")
        expect(isinstance(cat, dict) and nonempty_str(cat.get("value")), "continue.access_token.value missing")
        wait = cont.get("wait", DEFAULT_WAIT)
        expect(isinstance(wait, int) and not isinstance(wait, bool) and wait >= 0, f"continue.wait is {wait!r}")
        instance_id = body.get("instance_id")
        expect(instance_id is None or nonempty_str(instance_id), f"instance_id is {instance_id!r}")
        values = {token["value"], token["manage"]["access_token"]["value"], cat["value"]}
        expect(len(values) == 3, "access, management and continuation tokens are not all different")
        expect(answer.headers.get("Cache-Control") == "no-store",
               f"Cache-Control is {answer.headers.get('Cache-Control')!r}; a response with tokens must not be stored")
        self.report("grant", status=answer.status, signed=signed, access=token["access"],
                    expires_in=token["expires_in"], manage_uri=token["manage"]["uri"],
                    continue_uri=cont["uri"], wait=wait, instance_id=instance_id is not None)

        # rotate (§6.1): signed with the bound key, management token, no body.
        self.step = "rotate"
        manage_uri = token["manage"]["uri"]
        manage_token = token["manage"]["access_token"]["value"]
        answer, signed = client.signed("POST", manage_uri, token=manage_token)
        expect(answer.status == 200, f"rotation: {answer.brief()}")
        rotated = answer.json("rotation response")
        expect(isinstance(rotated, dict), f"rotation response is not an object: {rotated!r}")
        new = rotated.get("access_token")
        check_access_token(new, "rotation response")
        expect(new["value"] != token["value"], "rotation returned the same access token value")
        self.report("rotate", status=answer.status, signed=signed, new_value=True, access=new["access"],
                    new_manage_token=new["manage"]["access_token"]["value"] != manage_token,
                    manage_uri_unchanged=new["manage"]["uri"] == manage_uri)

        # revoke (§6.2), with the management token and URI the rotation returned.
        self.step = "revoke"
        manage_uri = new["manage"]["uri"]
        manage_token = new["manage"]["access_token"]["value"]
        answer, signed = client.signed("DELETE", manage_uri, token=manage_token)
        expect(answer.status == 204, f"revocation: {answer.brief()}")
        expect(answer.body == b"", f"204 with content {answer.body[:100]!r}")
        self.report("revoke", status=answer.status, signed=signed)

        self.step = "revoke-again"
        answer, signed = client.signed("DELETE", manage_uri, token=manage_token)
        expect(answer.status == 204, f"second revocation: {answer.brief()}")
        self.report("revoke-again", status=answer.status, signed=signed)

        self.step = "rotate-revoked"
        answer, signed = client.signed("POST", manage_uri, token=manage_token)
        expect(400 <= answer.status < 500, f"rotating a revoked token: want a 4xx error, got {answer.brief()}")
        code = error_code(answer, "rotating a revoked token")
        self.report("rotate-revoked", status=answer.status, signed=signed, error_code=code)

        # wait (§3.1), counted from when the grant response arrived.
        self.step = "wait"
        remaining = max(0.0, wait - (time.monotonic() - granted_at))
        time.sleep(remaining)
        self.report("wait", wait=wait, slept=round(remaining, 2))

        # delete-grant (§5.4).
        self.step = "delete-grant"
        answer, signed = client.signed("DELETE", cont["uri"], token=cat["value"])
        expect(answer.status == 204, f"grant deletion: {answer.brief()}")
        expect(answer.body == b"", f"204 with content {answer.body[:100]!r}")
        self.report("delete-grant", status=answer.status, signed=signed)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="agent.py", description="GNAP client instance whose requests http-message-signatures signs"
    )
    p.add_argument("--as-uri", required=True, help="the AS grant endpoint, e.g. http://127.0.0.1:8080/gnap")
    p.add_argument("--key", choices=sorted(JWK_ALG), default="ed25519", help="key type to generate (default ed25519)")
    args = p.parse_args(argv)
    if not absolute_http_uri(args.as_uri):
        p.error(f"--as-uri {args.as_uri!r} is not an absolute http(s) URL")
    agent = Agent(args.as_uri, args.key)
    try:
        agent.run()
    except StepFailed as e:
        error = str(e)
    except Exception as e:  # noqa: BLE001 - a failed step, never a bare traceback
        error = f"{type(e).__name__}: {e}"
    else:
        print(json.dumps({"step": "done", "ok": True, "steps": agent.steps}), flush=True)
        return EXIT_OK
    print(json.dumps({"step": agent.step, "ok": False, "error": error}), flush=True)
    print(f"agent.py: step {agent.step!r} failed: {error}", file=sys.stderr)
    return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
