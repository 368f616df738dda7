//! Replaying a signed request without a nonce, its signature re-encoded so
//! that its bytes differ (ECDSA `(r, n-s)`, an RSA-PSS signature without its
//! leading zero octet), against `gnapd serve` on loopback: at the AS and at
//! the gateway, for every client algorithm.

use gnapd::proto::httpsig::{Algorithm, HttpRequest, SignOptions, sign_gnap};
use gnapd::proto::jwk::SigningKey;
use serde_json::{Value, json};

use crate::gateway_http::{Session, VERSION, now, token};
use crate::support::agent::Agent;
use crate::support::http_client::send;
use crate::support::mcp_upstream::Upstream;
use crate::support::reencode::{reencode, wants_leading_zero};
use crate::support::server::{Server, start_logged};

/// The client algorithms (HMAC is never a client key).
const CLIENT_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::EcdsaP256Sha256,
    Algorithm::EcdsaP384Sha384,
    Algorithm::RsaPssSha512,
    Algorithm::RsaV15Sha256,
    Algorithm::Ed25519,
];

/// A fresh client key for `alg` whose JWK names it (`alg`): an RSA key
/// without one is read as RSA-PSS.
fn client_key(alg: Algorithm) -> SigningKey {
    let mut jwk = SigningKey::generate(alg).unwrap().private_jwk().clone();
    jwk["alg"] = alg.jws_name().into();
    SigningKey::from_private_jwk(&jwk, None).unwrap()
}

/// Builds request after request with `build(attempt)` and signs it without
/// a nonce until its signature can be re-encoded (an RSA signature must
/// start with a zero octet, one in 256 does). Returns the request and the
/// re-encoded copy.
fn signed_and_reencoded(
    key: &SigningKey,
    build: impl Fn(usize) -> HttpRequest,
) -> (HttpRequest, HttpRequest) {
    let alg = key.algorithm();
    let options = SignOptions {
        nonce: false,
        ..SignOptions::default()
    };
    for attempt in 0..8192 {
        let mut req = build(attempt);
        sign_gnap(&mut req, key, now(), &options).unwrap();
        let signature = gnapd::proto::httpsig::input::signatures(&req.fields).unwrap()[0]
            .1
            .clone();
        if wants_leading_zero(alg) && signature[0] != 0 {
            continue;
        }
        let other = reencode(alg, &signature).unwrap();
        let mut replay = req.clone();
        replay.fields.set(
            "Signature",
            format!("sig1=:{}:", gnapd::proto::b64::encode_std(&other)),
        );
        return (req, replay);
    }
    panic!("{alg}: no signature with a leading zero octet in 8192 tries");
}

#[test]
fn a_grant_request_replayed_with_its_signature_re_encoded_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    for alg in CLIENT_ALGORITHMS {
        let agent = Agent::with(client_key(alg));
        let (first, replay) = signed_and_reencoded(&agent.key, |attempt| {
            let mut body = agent.grant_body(json!(["mcp:github"]));
            body["client"]["display"]["name"] = format!("agent {attempt}").into();
            HttpRequest::new("POST", &server.grant_endpoint)
                .with_field("Content-Type", "application/json")
                .with_body(serde_json::to_vec(&body).unwrap())
        });
        let answer = send(server.addr, &first);
        assert_eq!(answer.status, 200, "{alg}: {}", answer.text());
        let answer = send(server.addr, &replay);
        assert_eq!(
            (answer.status, answer.json()["error"]["code"].clone()),
            (401, json!("invalid_client")),
            "{alg}: the re-encoded replay got a grant: {}",
            answer.text()
        );
    }
}

#[test]
fn a_gateway_call_replayed_with_its_signature_re_encoded_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let github = format!("github={}", upstream.url());
    let server = start_logged(
        &dir.path().join("data"),
        &dir.path().join("gnapd.log"),
        &["--dev", "--upstream", &github],
    );
    for alg in CLIENT_ALGORITHMS {
        let agent = Agent::with(client_key(alg));
        let token = token(&server, &agent, json!(["mcp:github"]));
        let session = Session::new(&server, &agent, None, "github");
        let (first, replay) = signed_and_reencoded(&agent.key, |attempt| {
            let init: Value = json!({"jsonrpc": "2.0", "id": attempt, "method": "initialize", "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
            let mut req = session.request("POST", Some(&init), &[]);
            req.fields.append("Authorization", format!("GNAP {token}"));
            req
        });
        let before = upstream.requests().len();
        let answer = send(server.addr, &first);
        assert_eq!(answer.status, 200, "{alg}: {}", answer.text());
        let answer = send(server.addr, &replay);
        assert_eq!(answer.status, 401, "{alg}: {}", answer.text());
        assert!(
            answer
                .header_lines("www-authenticate")
                .any(|c| c.starts_with("GNAP ")),
            "{alg}"
        );
        assert_eq!(
            upstream.requests().len(),
            before + 1,
            "{alg}: the re-encoded replay reached the upstream"
        );
    }
}
