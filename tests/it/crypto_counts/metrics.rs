//! The server's counts on /metrics, over loopback against `gnapd serve`.

use std::collections::BTreeMap;

use gnapd::clock::{Clock as _, SystemClock};
use gnapd::compare::probe::crypto::from_exposition;
use gnapd::proto::httpsig::HttpRequest;
use serde_json::json;

use crate::support::agent::{Agent, access_token};
use crate::support::http_client::send;
use crate::support::server::Server;

fn counts(server: &Server) -> BTreeMap<String, u64> {
    let page = send(
        server.addr,
        &HttpRequest::new("GET", format!("{}/metrics", server.base())),
    );
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(text.contains("# TYPE gnapd_crypto_operations_total counter\n"));
    from_exposition(&text)
}

fn moved(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, key: &str) -> u64 {
    after.get(key).copied().unwrap_or(0) - before.get(key).copied().unwrap_or(0)
}

#[test]
fn a_grant_request_raises_verify_ed25519_by_one_on_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    let agent = Agent::new();
    let before = counts(&server);
    let request = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&agent.grant_body(json!(["mcp:github"]))),
        SystemClock.now(),
    );
    let answer = send(server.addr, &request);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(!access_token(&answer.json()).is_empty());
    let after = counts(&server);
    assert_eq!(moved(&before, &after, "verify:ed25519"), 1, "{after:?}");
    // The server signs nothing for an agent, and it hashed at least the
    // body's Content-Digest, the key's thumbprint and the tokens it stored.
    assert_eq!(moved(&before, &after, "sign:ed25519"), 0);
    assert!(moved(&before, &after, "hash:sha-256") >= 3, "{after:?}");
}

/// Every label value the server can count under: fixed names, never a
/// value read from a request.
const OPERATIONS: &[&str] = &["sign", "verify", "hash", "mac", "seal", "open", "keygen"];
const ALGORITHMS: &[&str] = &[
    "ed25519",
    "ecdsa-p256-sha256",
    "ecdsa-p384-sha384",
    "rsa-pss-sha512",
    "rsa-v1_5-sha256",
    "hmac-sha256",
    "eddsa",
    "es256",
    "es384",
    "ps512",
    "rs256",
    "hs256",
    "ecdsa-p256",
    "ecdsa-p384",
    "rsa-2048",
    "sha-256",
    "sha-384",
    "sha-512",
    "sha3-224",
    "sha3-256",
    "sha3-384",
    "sha3-512",
    "xchacha20poly1305",
];

#[test]
fn a_stranger_cannot_add_series_to_the_crypto_counts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    let now = SystemClock.now();
    // A key whose JWK names an algorithm nobody has, a P-384 key, a body
    // changed after signing, a DPoP proof with a made-up `alg`.
    let agent = Agent::new();
    let mut body = agent.grant_body(json!(["mcp:github"]));
    body["client"]["key"]["jwk"]["alg"] = json!("made-up-alg");
    let odd = agent.signed("POST", &server.grant_endpoint, None, Some(&body), now);
    assert!(send(server.addr, &odd).status >= 400);
    let p384 = Agent::with(
        gnapd::proto::jwk::SigningKey::generate(gnapd::proto::alg::Algorithm::EcdsaP384Sha384)
            .unwrap(),
    );
    let good = p384.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&p384.grant_body(json!(["mcp:github"]))),
        now,
    );
    assert_eq!(send(server.addr, &good).status, 200);
    let mut tampered = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&agent.grant_body(json!(["mcp:github"]))),
        now,
    );
    tampered.body = br#"{"access_token":{"access":["mcp:other"]}}"#.to_vec();
    assert_ne!(send(server.addr, &tampered).status, 200);
    let header = gnapd::proto::b64::encode_url(br#"{"typ":"dpop+jwt","alg":"ES999","jwk":{}}"#);
    let proof = format!("{header}.e30.c2ln");
    let token = HttpRequest::new("POST", format!("{}/oauth/token", server.base()))
        .with_field("Content-Type", "application/x-www-form-urlencoded")
        .with_field("DPoP", proof)
        .with_body(b"grant_type=client_credentials".to_vec());
    assert!(send(server.addr, &token).status >= 400);

    let counts = counts(&server);
    assert!(counts.get("verify:ecdsa-p384-sha384").copied().unwrap_or(0) >= 1);
    for key in counts.keys() {
        let (operation, algorithm) = key.split_once(':').unwrap();
        assert!(OPERATIONS.contains(&operation), "{key}");
        assert!(ALGORITHMS.contains(&algorithm), "{key}");
    }
}
