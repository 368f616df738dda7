#!/usr/bin/env python3
"""Independent check of gnapd's GNAP request fixtures (tests/vectors/gnap-requests.json).

Verifies every fixture without gnapd's code: `httpsig` with the PyPI package
``http-message-signatures`` (through peer.py's verifier, RFC 9421) and our own
RFC 9530 digest; `jwsd` and `jws` with PyJWT and hashlib. Each fixture gets a
verdict tag: "valid", or the first reason it fails:

  bad_signature            the signature does not verify with the presented key
  not_presented_key        it verifies with the other (P-256) test key instead
  content_digest_mismatch  the signature holds but the content is not what it covers
  created_outside_window   `created` is more than 300 s before, or 60 s after, the AS's time
  component_missing:NAME   (httpsig) a component RFC 9635 section 7.3.1 requires is not covered
  missing_ath              (jwsd/jws) a token is presented but the header has no `ath`
  bad_header:NAME          (jwsd/jws) a header member is wrong (typ, htm, uri, kid, ath)

A positive fixture must be "valid"; a negative one must fail with a tag its
`defect` allows (DEFECT_TAGS). Prints a JSON report; exit 0 when every fixture
agrees, 1 when one does not, 2 on a usage error.

Usage: check_gnap_fixtures.py --fixtures FILE --vectors DIR
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer  # noqa: E402  (the RFC 9421 peer beside this file)

try:
    import jwt
    from jwt.algorithms import ECAlgorithm, OKPAlgorithm
except ImportError as _e:  # pragma: no cover - environment problem
    print(json.dumps({"error": f"missing dependency: {_e} (pip install -r requirements.txt)"}))
    sys.exit(1)

MAX_AGE = 300
MAX_SKEW = 60

# Which verdicts each kind of negative fixture may get. A tampered `jws` body
# is the signed payload itself, so there the signature fails.
DEFECT_TAGS = {
    "tampered_body": {"content_digest_mismatch", "bad_signature"},
    "other_key": {"not_presented_key"},
    "created_outside_window": {"created_outside_window"},
    "missing_ath": {"missing_ath"},
}

JWS_TYP = {"jwsd": "gnap-binding-jwsd", "jws": "gnap-binding-jws"}


class Failed(Exception):
    """A fixture fails to verify; the argument is its tag."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def check_created(created, as_time: int) -> None:
    if not isinstance(created, int) or as_time - created > MAX_AGE or created - as_time > MAX_SKEW:
        raise Failed("created_outside_window")


def presented_token(headers: list[list[str]]) -> str | None:
    values = [v for n, v in headers if n.lower() == "authorization"]
    if not values:
        return None
    scheme, _, token = values[0].partition(" ")
    return token if scheme == "GNAP" else None


def check_httpsig(fixture: dict, key: peer.JwkKey, other: peer.JwkKey) -> None:
    r = fixture["request"]
    body = r["body"].encode("utf-8")
    message = peer.Request(r["method"], r["target_uri"], peer.FieldLines(r["headers"]))

    def verified_with(k):
        # body=None: the signature alone here; the digest is checked below.
        return peer.verify_message(message, k, body=None, time_check=False, ignore_keyid=True)

    try:
        results = verified_with(key)
    except peer.PeerFailure:
        try:
            verified_with(other)
        except peer.PeerFailure:
            raise Failed("bad_signature") from None
        raise Failed("not_presented_key") from None
    if len(results) != 1:
        raise Failed("bad_signature")
    result = results[0]
    covered = result["covered"]
    if body and "content-digest" in covered:
        digests = [v for n, v in r["headers"] if n.lower() == "content-digest"]
        try:
            peer.check_content_digest(digests[0] if digests else "", body)
        except peer.PeerFailure:
            raise Failed("content_digest_mismatch") from None
    check_created(result["params"].get("created"), fixture["as_time"])
    required = ["@method", "@target-uri"]
    if body:
        required.append("content-digest")
    if presented_token(r["headers"]) is not None:
        required.append("authorization")
    for name in required:
        if name not in covered:
            raise Failed(f"component_missing:{name}")


def check_jws(fixture: dict, key, other) -> None:
    r = fixture["request"]
    proof = fixture["proof"]
    body = r["body"].encode("utf-8")
    detached = [v for n, v in r["headers"] if n.lower() == "detached-jws"]
    attached = proof == "jws" and body
    compact = body.decode("ascii") if attached else (detached[0] if detached else "")
    try:
        decoded = jwt.api_jws.decode_complete(compact, key=key, algorithms=["EdDSA"])
    except jwt.exceptions.PyJWTError:
        try:
            jwt.api_jws.decode_complete(compact, key=other, algorithms=["ES256"])
        except jwt.exceptions.PyJWTError:
            raise Failed("bad_signature") from None
        raise Failed("not_presented_key") from None
    header, payload = decoded["header"], decoded["payload"]
    if not attached:
        # The payload of a detached proof is the SHA-256 of the content
        # (RFC 9635 section 7.3.3), empty without content.
        expected = hashlib.sha256(body).digest() if body else b""
        if not hmac.compare_digest(payload, expected):
            raise Failed("content_digest_mismatch")
    if header.get("typ") != JWS_TYP[proof]:
        raise Failed("bad_header:typ")
    if header.get("htm") != r["method"]:
        raise Failed("bad_header:htm")
    if header.get("uri") != r["target_uri"]:
        raise Failed("bad_header:uri")
    if header.get("kid") != "test-key-ed25519":
        raise Failed("bad_header:kid")
    check_created(header.get("created"), fixture["as_time"])
    token = presented_token(r["headers"])
    if token is not None:
        if "ath" not in header:
            raise Failed("missing_ath")
        if header["ath"] != b64url(hashlib.sha256(token.encode("ascii")).digest()):
            raise Failed("bad_header:ath")


def verdict(fixture: dict, keys: dict) -> str:
    try:
        if fixture["proof"] == "httpsig":
            check_httpsig(fixture, keys["httpsig"], keys["httpsig_other"])
        else:
            check_jws(fixture, keys["jws"], keys["jws_other"])
    except Failed as e:
        return e.args[0]
    return "valid"


def agrees(fixture: dict, tag: str) -> bool:
    defect = fixture.get("defect")
    if defect is None:
        return tag == "valid"
    if defect == "component_missing":
        return tag == f"component_missing:{fixture['missing_component']}"
    return tag in DEFECT_TAGS.get(defect, set())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", required=True)
    parser.add_argument("--vectors", required=True)
    args = parser.parse_args()
    try:
        doc = json.loads(Path(args.fixtures).read_text(encoding="utf-8"))
        vectors = Path(args.vectors)
        ed = json.loads((vectors / "test-key-ed25519.pub.jwk.json").read_text(encoding="utf-8"))
        p256 = json.loads((vectors / "test-key-ecc-p256.pub.jwk.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(json.dumps({"error": f"cannot read the fixtures or keys: {e}"}))
        return 2
    # The key a fixture presents must be the RFC 9421 test key, not a look-alike.
    presented = doc["client_key"]["presented_jwk"]
    if {k: presented[k] for k in ("kty", "crv", "x")} != {k: ed[k] for k in ("kty", "crv", "x")}:
        print(json.dumps({"error": "the presented key is not the RFC 9421 Ed25519 test key"}))
        return 1
    keys = {
        "httpsig": peer.parse_jwk(ed, need_private=False),
        "httpsig_other": peer.parse_jwk(p256, need_private=False),
        "jws": OKPAlgorithm.from_jwk(json.dumps(ed)),
        "jws_other": ECAlgorithm.from_jwk(json.dumps(p256)),
    }
    report = []
    for fixture in doc["fixtures"]:
        tag = verdict(fixture, keys)
        report.append({"name": fixture["name"], "verdict": tag, "agrees": agrees(fixture, tag)})
    ok = all(entry["agrees"] for entry in report)
    print(json.dumps({"ok": ok, "fixtures": report}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
