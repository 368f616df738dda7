//! Builds the GNAP request fixtures (`tests/vectors/gnap-requests.json`)
//! from the RFC 9421 test keys, so the file is code's output, never
//! hand-edited: Ed25519 is deterministic and the `httpsig` nonce is fixed,
//! so the same code gives the same bytes.
//!
//! The continuation and token management fixtures carry the token values an
//! AS minted for the grant fixture; an AS whose randomness counts up from
//! zero mints the same values every time, so those are fixed too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use gnapd::authz::Policy;
use gnapd::proto::httpsig::{HttpRequest, SignOptions, sign_gnap};
use gnapd::proto::jwk::SigningKey;
use gnapd::proto::jws_proof::{JwsMethod, ProofTarget, sign_attached, sign_detached};
use serde_json::{Value, json};

use crate::support::core::Core;
use crate::support::paths::vector;

/// The file in `tests/vectors/`.
pub(crate) const FILE: &str = "gnap-requests.json";
/// Every fixture's `created` (2026-09-21T14:13:20Z), except a stale one's
/// and a continuation's.
pub(crate) const CREATED: i64 = 1_790_000_000;
/// The grant endpoint every fixture is made for.
pub(crate) const GRANT: &str = "https://as.example.com/gnap";
/// The `nonce` of every `httpsig` fixture. A real client draws a new one
/// per request; one AS refuses it the second time.
pub(crate) const NONCE: &str = "Z25hcGQtZml4dHVyZS1ub25jZQ";
/// The `wait` gnapd's grant answer asks for before a continuation
/// (RFC 9635 §3.1 default): the continuation fixtures are made that late.
pub(crate) const WAIT: i64 = 5;
/// How far before the AS's time a stale fixture was made: past any
/// reasonable window (gnapd's is 300 s).
pub(crate) const STALE_BY: i64 = 3600;
/// What every grant fixture asks for.
const ACCESS: &str = "mcp:github";
/// What a tampered body asks for instead (same length: only the bytes
/// change).
const TAMPERED_ACCESS: &str = "mcp:gitlab";

/// The answer a fixture expects from an AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    Granted,
    /// `401` with this GNAP error code.
    Refused(&'static str),
}

/// One request and what an AS must answer.
pub(crate) struct Fixture {
    pub(crate) name: String,
    pub(crate) proof: &'static str,
    /// `grant`, `continue` or `manage`.
    pub(crate) step: &'static str,
    /// The fixture an AS must have answered first (its tokens are used).
    pub(crate) after: Option<String>,
    /// The AS's time when it receives the request.
    pub(crate) as_time: i64,
    pub(crate) expected: Expected,
    /// For a negative: what is wrong, as a tag a checker can branch on.
    pub(crate) defect: Option<&'static str>,
    /// For a `component_missing` defect: the component left out.
    pub(crate) missing: Option<&'static str>,
    pub(crate) why: &'static str,
    pub(crate) request: HttpRequest,
}

/// The RFC 9421 Appendix B.1.4 Ed25519 test key, with `alg` added (its
/// `kid` is already there) as RFC 9635 §7.1 asks of a key by value.
pub(crate) fn client_key() -> SigningKey {
    let mut jwk = vector("test-key-ed25519.jwk.json");
    jwk["alg"] = "EdDSA".into();
    SigningKey::from_private_jwk(&jwk, None).unwrap()
}

/// The RFC 9421 Appendix B.1.3 P-256 test key: "another key".
pub(crate) fn other_key() -> SigningKey {
    let mut jwk = vector("test-key-ecc-p256.jwk.json");
    jwk["alg"] = "ES256".into();
    SigningKey::from_private_jwk(&jwk, None).unwrap()
}

/// Same bytes from every instance: the AS's token values become fixed.
struct Counting(AtomicU8);

impl gnapd::random::Randomness for Counting {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), gnapd::random::NoRandomness> {
        for b in bytes {
            *b = self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The AS the fixtures are made for and judged by: `--dev` policy
/// (approves every grant at once), counting randomness, clock at `now`.
pub(crate) fn fixture_as(now: i64) -> Core {
    let core = Core::new(Policy {
        dev: true,
        ..Policy::default()
    });
    core.clock.set(now);
    Core {
        server: core
            .server
            .with_randomness(Arc::new(Counting(AtomicU8::new(0)))),
        ..core
    }
}

fn grant_body(proof: &str, access: &str) -> Vec<u8> {
    let jwk = client_key().verifying_key().public_jwk().unwrap().clone();
    let body = json!({
        "access_token": {"access": [access]},
        "client": {"key": {"proof": proof, "jwk": jwk}},
    });
    serde_json::to_vec(&body).unwrap()
}

/// How a fixture's request is proved.
#[derive(Clone, Copy)]
enum Proof {
    HttpSig,
    Jws(JwsMethod),
}

impl Proof {
    fn name(self) -> &'static str {
        match self {
            Self::HttpSig => "httpsig",
            Self::Jws(JwsMethod::Detached) => "jwsd",
            Self::Jws(JwsMethod::Attached) => "jws",
        }
    }

    /// `method uri` with `body`, presenting `token`, proved by `key` at
    /// `created`. `ath` says whether a JWS proof names the token.
    fn request(
        self,
        key: &SigningKey,
        uri: &str,
        token: Option<&str>,
        ath: bool,
        body: &[u8],
        created: i64,
    ) -> HttpRequest {
        let mut req = HttpRequest::new("POST", uri);
        if let Some(token) = token {
            req.fields.append("Authorization", format!("GNAP {token}"));
        }
        match self {
            Self::HttpSig => {
                if !body.is_empty() {
                    req.fields.append("Content-Type", "application/json");
                    req.body = body.to_vec();
                }
                sign_gnap(&mut req, key, created, &signing_options()).unwrap();
            }
            Self::Jws(method) => {
                let target = ProofTarget {
                    method: "POST",
                    uri,
                    created,
                    access_token: token.filter(|_| ath),
                };
                if matches!(method, JwsMethod::Attached) && !body.is_empty() {
                    req.fields.append("Content-Type", "application/jose");
                    req.body = sign_attached(key, &target, body).unwrap().into_bytes();
                } else {
                    let proof = sign_detached(key, method.typ(), &target, body, true).unwrap();
                    req.fields.append("Detached-JWS", proof);
                    if !body.is_empty() {
                        req.fields.append("Content-Type", "application/json");
                        req.body = body.to_vec();
                    }
                }
            }
        }
        req
    }
}

fn signing_options() -> SignOptions {
    SignOptions {
        fixed_nonce: Some(NONCE.into()),
        ..SignOptions::default()
    }
}

/// What the AS gave the grant fixture: where and with which tokens to
/// continue and to manage.
struct Issued {
    continue_uri: String,
    continue_token: String,
    manage_uri: String,
    manage_token: String,
}

fn issued(grant: &HttpRequest) -> Issued {
    let (reply, body) = fixture_as(CREATED).send(grant);
    assert_eq!(reply.status, 200, "the grant fixture is refused: {body}");
    let text = |pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {pointer} in {body}"))
            .to_owned()
    };
    Issued {
        continue_uri: text("/continue/uri"),
        continue_token: text("/continue/access_token/value"),
        manage_uri: text("/access_token/manage/uri"),
        manage_token: text("/access_token/manage/access_token/value"),
    }
}

/// The fixtures of one proofing method.
fn fixtures_for(proof: Proof) -> Vec<Fixture> {
    let key = client_key();
    let name = proof.name();
    let body = grant_body(name, ACCESS);
    let grant = proof.request(&key, GRANT, None, true, &body, CREATED);
    let issued = issued(&grant);
    let fixture = |suffix: &str, step, request, expected, defect, why| Fixture {
        name: format!("{name}-{suffix}"),
        proof: name,
        step,
        after: (step != "grant").then(|| format!("{name}-grant")),
        as_time: CREATED,
        expected,
        defect,
        missing: None,
        why,
        request,
    };
    let invalid = Expected::Refused("invalid_client");

    let mut tampered = grant.clone();
    match proof {
        Proof::Jws(JwsMethod::Attached) => {
            // The body is the JWS: swap its payload segment for other content.
            let text = String::from_utf8(tampered.body).unwrap();
            let parts: Vec<&str> = text.split('.').collect();
            let payload = gnapd::proto::b64::encode_url(&grant_body(name, TAMPERED_ACCESS));
            tampered.body = format!("{}.{payload}.{}", parts[0], parts[2]).into_bytes();
        }
        _ => tampered.body = grant_body(name, TAMPERED_ACCESS),
    }
    let stale = proof.request(&key, GRANT, None, true, &body, CREATED - STALE_BY);
    let by_other = proof.request(&other_key(), GRANT, None, true, &body, CREATED);

    let mut out = vec![
        fixture(
            "grant",
            "grant",
            grant,
            Expected::Granted,
            None,
            "a grant request presenting the key by value, proved with it",
        ),
        fixture(
            "grant-tampered-body",
            "grant",
            tampered,
            invalid,
            Some("tampered_body"),
            "the content was changed after the proof was made (mcp:github became mcp:gitlab)",
        ),
        fixture(
            "grant-other-key",
            "grant",
            by_other,
            invalid,
            Some("other_key"),
            "proved by the RFC 9421 P-256 test key, not the Ed25519 key the body presents",
        ),
        fixture(
            "grant-stale",
            "grant",
            stale,
            invalid,
            Some("created_outside_window"),
            "created an hour before the AS receives it",
        ),
    ];
    if matches!(proof, Proof::HttpSig) {
        out.push(digest_not_covered(&key, &body));
    }
    let continued = proof.request(
        &key,
        &issued.continue_uri,
        Some(&issued.continue_token),
        true,
        &[],
        CREATED + WAIT,
    );
    out.push(Fixture {
        as_time: CREATED + WAIT,
        ..fixture(
            "continue",
            "continue",
            continued,
            Expected::Granted,
            None,
            "a continuation (RFC 9635 §5) with the continuation token, after the grant's wait",
        )
    });
    let manage = proof.request(
        &key,
        &issued.manage_uri,
        Some(&issued.manage_token),
        true,
        &[],
        CREATED,
    );
    out.push(fixture(
        "manage",
        "manage",
        manage,
        Expected::Granted,
        None,
        "a token rotation (RFC 9635 §6.1) with the management token",
    ));
    match proof {
        Proof::HttpSig => {
            let mut uncovered =
                Proof::HttpSig.request(&key, &issued.manage_uri, None, true, &[], CREATED);
            uncovered
                .fields
                .append("Authorization", format!("GNAP {}", issued.manage_token));
            out.push(Fixture {
                missing: Some("authorization"),
                ..fixture(
                    "manage-authorization-not-covered",
                    "manage",
                    uncovered,
                    invalid,
                    Some("component_missing"),
                    "the Authorization field was added after signing, so the signature does not cover it (RFC 9635 §7.3.1)",
                )
            });
        }
        Proof::Jws(_) => {
            let no_ath = proof.request(
                &key,
                &issued.manage_uri,
                Some(&issued.manage_token),
                false,
                &[],
                CREATED,
            );
            out.push(fixture(
                "manage-missing-ath",
                "manage",
                no_ath,
                invalid,
                Some("missing_ath"),
                "the request presents a token but the JOSE header has no ath (RFC 9635 §7.3.3)",
            ));
        }
    }
    out
}

/// A grant request whose signature leaves out `content-digest`: signed
/// before the content was added.
fn digest_not_covered(key: &SigningKey, body: &[u8]) -> Fixture {
    let mut req = HttpRequest::new("POST", GRANT).with_field("Content-Type", "application/json");
    sign_gnap(&mut req, key, CREATED, &signing_options()).unwrap();
    req.fields.set(
        "Content-Digest",
        gnapd::proto::digest::content_digest(
            body,
            &[gnapd::proto::digest::DigestAlgorithm::Sha256],
        )
        .into_bytes(),
    );
    req.body = body.to_vec();
    Fixture {
        name: "httpsig-grant-digest-not-covered".into(),
        proof: "httpsig",
        step: "grant",
        after: None,
        as_time: CREATED,
        expected: Expected::Refused("invalid_client"),
        defect: Some("component_missing"),
        missing: Some("content-digest"),
        why: "the request has content but the signature does not cover content-digest (RFC 9635 §7.3.1)",
        request: req,
    }
}

/// Every fixture, `httpsig` then `jwsd` then `jws`.
pub(crate) fn fixtures() -> Vec<Fixture> {
    [
        Proof::HttpSig,
        Proof::Jws(JwsMethod::Detached),
        Proof::Jws(JwsMethod::Attached),
    ]
    .into_iter()
    .flat_map(fixtures_for)
    .collect()
}

/// A fixture's request, as the file spells it.
pub(crate) fn request_from_json(fixture: &Value) -> HttpRequest {
    let r = &fixture["request"];
    let mut req = HttpRequest::new(
        r["method"].as_str().unwrap(),
        r["target_uri"].as_str().unwrap(),
    );
    for line in r["headers"].as_array().unwrap() {
        req.fields.append(
            line[0].as_str().unwrap(),
            line[1].as_str().unwrap().as_bytes().to_vec(),
        );
    }
    req.body = r["body"].as_str().unwrap().as_bytes().to_vec();
    req
}

fn request_json(req: &HttpRequest) -> Value {
    let headers: Vec<Value> = req
        .fields
        .iter()
        .map(|(name, value)| json!([name, String::from_utf8(value.to_vec()).unwrap()]))
        .collect();
    json!({
        "method": req.method,
        "target_uri": req.target_uri,
        "headers": headers,
        "body": String::from_utf8(req.body.clone()).unwrap(),
    })
}

fn fixture_json(f: &Fixture) -> Value {
    let expected = match f.expected {
        Expected::Granted => json!({"status": 200}),
        Expected::Refused(code) => json!({"status": 401, "error": code}),
    };
    json!({
        "name": f.name,
        "proof": f.proof,
        "step": f.step,
        "after": f.after,
        "as_time": f.as_time,
        "expected": expected,
        "defect": f.defect,
        "missing_component": f.missing,
        "why": f.why,
        "request": request_json(&f.request),
    })
}

/// The whole file, as a JSON value.
pub(crate) fn document() -> Value {
    let key = client_key();
    json!({
        "about": "GNAP (RFC 9635) requests proved with httpsig, jwsd and jws, made by tests/it/gnap_fixtures/make.rs; see tests/vectors/README.md",
        "grant_endpoint": GRANT,
        "created": CREATED,
        "httpsig_nonce": NONCE,
        "max_age_used_by_gnapd": 300,
        "client_key": {
            "file": "test-key-ed25519.jwk.json",
            "presented_jwk": key.verifying_key().public_jwk().unwrap(),
        },
        "other_key": {
            "file": "test-key-ecc-p256.jwk.json",
            "public_jwk": other_key().verifying_key().public_jwk().unwrap(),
        },
        "fixtures": fixtures().iter().map(fixture_json).collect::<Vec<_>>(),
    })
}

/// `doc` as the file spells it.
pub(crate) fn render(doc: &Value) -> String {
    let mut text = serde_json::to_string_pretty(doc).unwrap();
    text.push('\n');
    text
}
