//! What a key and a request may cost the verifier, against `gnapd serve` on
//! loopback: RSA client keys are 2048–4096 bits with exponent 65537 (refused
//! when the key is read, at the AS and at the gateway), and a request carries
//! at most two signatures (refused before any cryptography).
//!
//! The RSA keys here are made with the `openssl` command line and sign with
//! josekit directly: gnapd's own signer refuses them, which is the point.

use std::path::Path;

use gnapd::proto::digest::{DigestAlgorithm, content_digest};
use gnapd::proto::httpsig::{
    ComponentId, Derived, HttpRequest, Message, Metadata, SignatureParams, signature_base,
};
use gnapd::store::{KeyBinding, Store as _};
use josekit::jwk::Jwk;
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{JwsSigner as _, PS512};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::gateway_http::{Session, VERSION, now, token};
use crate::support::agent::Agent;
use crate::support::http_client::send;
use crate::support::mcp_upstream::Upstream;
use crate::support::server::{Server, start_logged};
use crate::support::store_fixture::{FOREVER, Fixture};

/// An RSA key pair made by `openssl genpkey` with `bits` and exponent `e`.
fn openssl_rsa(dir: &Path, bits: u32, e: u32) -> Jwk {
    let out = dir.join(format!("rsa-{bits}-{e}.pem"));
    let status = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt"])
        .arg(format!("rsa_keygen_bits:{bits}"))
        .arg("-pkeyopt")
        .arg(format!("rsa_keygen_pubexp:{e}"))
        .arg("-out")
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl genpkey {bits} {e}");
    let pem = std::fs::read(&out).unwrap();
    RsaKeyPair::from_pem(pem).unwrap().to_jwk_key_pair()
}

/// The public half, as a client presents it.
fn public(jwk: &Jwk) -> Value {
    json!({"kty": "RSA", "n": jwk.parameter("n").unwrap(), "e": jwk.parameter("e").unwrap()})
}

/// The RFC 7638 thumbprint of an RSA public JWK, computed here because
/// gnapd refuses to read the key.
fn thumbprint(public: &Value) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        public["e"].as_str().unwrap(),
        public["n"].as_str().unwrap()
    );
    gnapd::proto::b64::encode_url(&Sha256::digest(canonical.as_bytes()))
}

/// Signs `req` under the GNAP profile (RSA-PSS, a nonce) with `jwk`.
fn sign_rsa(req: &mut HttpRequest, jwk: &Jwk) {
    let mut covered = vec![
        ComponentId::derived(Derived::Method),
        ComponentId::derived(Derived::TargetUri),
    ];
    if !req.body.is_empty() {
        let digest = content_digest(&req.body, &[DigestAlgorithm::Sha256]);
        req.fields.set("Content-Digest", digest.into_bytes());
        covered.push(ComponentId::field("content-digest"));
    }
    if req.fields.contains("authorization") {
        covered.push(ComponentId::field("authorization"));
    }
    let params = SignatureParams::new(
        covered,
        Metadata {
            created: Some(now()),
            nonce: Some(uuid::Uuid::new_v4().to_string()),
            tag: Some("gnap".into()),
            ..Metadata::default()
        },
    )
    .unwrap();
    let base = signature_base(Message::Request(req), &params).unwrap();
    let signature = PS512.signer_from_jwk(jwk).unwrap().sign(&base).unwrap();
    req.fields
        .append("Signature-Input", format!("sig1={}", params.serialized()));
    req.fields.append(
        "Signature",
        format!("sig1=:{}:", gnapd::proto::b64::encode_std(&signature)),
    );
}

/// Keys gnapd must refuse, with the words the refusal must say.
fn refused_keys(dir: &Path) -> Vec<(Jwk, &'static str)> {
    vec![
        (
            openssl_rsa(dir, 4104, 65537),
            "4104 bits is above the 4096-bit maximum",
        ),
        (openssl_rsa(dir, 2048, 3), "exponent must be 65537"),
    ]
}

#[test]
fn rsa_client_keys_beyond_4096_bits_or_without_exponent_65537_are_refused_at_the_as() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--dev"]);
    for (jwk, why) in refused_keys(dir.path()) {
        let body = json!({
            "access_token": {"access": ["mcp:github"]},
            "client": {"key": {"proof": "httpsig", "jwk": public(&jwk)}},
        });
        let mut req = HttpRequest::new("POST", &server.grant_endpoint)
            .with_field("Content-Type", "application/json")
            .with_body(serde_json::to_vec(&body).unwrap());
        sign_rsa(&mut req, &jwk);
        let answer = send(server.addr, &req);
        let error = &answer.json()["error"];
        assert_eq!(
            (answer.status, error["code"].as_str()),
            (401, Some("invalid_client")),
            "{why}: {}",
            answer.text()
        );
        assert!(
            error["description"].as_str().unwrap().contains(why),
            "{why}: {error}"
        );
    }
}

#[test]
fn a_token_bound_to_an_rsa_key_beyond_the_limits_is_refused_at_the_gateway() {
    // The tokens were issued before the limits (written into the store
    // directly); the gateway reads the key again on every call.
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // Private, as gnapd keeps its data dir.
    let mut perms = std::fs::metadata(&data).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
    std::fs::set_permissions(&data, perms).unwrap();
    let keys = refused_keys(dir.path());
    let mut tokens = Vec::new();
    {
        let store = gnapd::store::sled::SledStore::open(&data.join("store")).unwrap();
        for (i, (jwk, _)) in keys.iter().enumerate() {
            let mut fixture = Fixture::new();
            let jwk = public(jwk);
            fixture.key = KeyBinding {
                thumbprint: thumbprint(&jwk),
                jwk,
                method: gnapd::proto::gnap::ProofKind::HttpSig,
            };
            let (grant, mut issued) = fixture.grant(1, FOREVER);
            let value = format!("rsa-limit-token-{i}");
            issued[0].0 = gnapd::store::TokenHash::of(&value);
            let mut grant = grant;
            grant.tokens = vec![issued[0].0];
            store.create_grant(&grant, &issued).unwrap();
            tokens.push(value);
        }
    }
    let github = format!("github={}", upstream.url());
    let server = start_logged(
        &data,
        &dir.path().join("gnapd.log"),
        &["--dev", "--upstream", &github],
    );
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let agent = Agent::new();
    let session = Session::new(&server, &agent, None, "github");
    for ((jwk, why), token) in keys.iter().zip(&tokens) {
        let mut req = session.request("POST", Some(&init), &[]);
        req.fields.append("Authorization", format!("GNAP {token}"));
        sign_rsa(&mut req, jwk);
        let answer = send(server.addr, &req);
        assert_eq!(answer.status, 401, "{why}: {}", answer.text());
        assert!(
            answer
                .header_lines("www-authenticate")
                .any(|c| c.starts_with("GNAP ")),
            "{why}"
        );
    }
    assert!(
        upstream.requests().is_empty(),
        "a call signed by a refused key reached the upstream"
    );
}

/// `req`'s one signature copied under two more labels: three signatures.
fn three_signatures(req: &mut HttpRequest) {
    for name in ["Signature-Input", "Signature"] {
        let line = String::from_utf8(req.fields.lines(name).next().unwrap().to_vec()).unwrap();
        let member = line.strip_prefix("sig1=").unwrap();
        req.fields
            .set(name, format!("sig1={member}, sig2={member}, sig3={member}"));
    }
}

#[test]
fn a_request_with_more_than_two_signatures_is_refused_at_the_as_and_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let github = format!("github={}", upstream.url());
    let server = start_logged(
        &dir.path().join("data"),
        &dir.path().join("gnapd.log"),
        &["--dev", "--upstream", &github],
    );
    let agent = Agent::new();
    let mut grant = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&agent.grant_body(json!(["mcp:github"]))),
        now(),
    );
    three_signatures(&mut grant);
    let answer = send(server.addr, &grant);
    let error = &answer.json()["error"];
    assert_eq!(
        (answer.status, error["code"].as_str()),
        (401, Some("invalid_client")),
        "{}",
        answer.text()
    );
    assert!(
        error["description"]
            .as_str()
            .unwrap()
            .contains("more than 2 signatures"),
        "{error}"
    );

    let token = token(&server, &agent, json!(["mcp:github"]));
    let session = Session::new(&server, &agent, Some(token), "github");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let mut call = session.request("POST", Some(&init), &[]);
    three_signatures(&mut call);
    let answer = send(server.addr, &call);
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(upstream.requests().is_empty());
}
