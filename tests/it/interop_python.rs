//! Interop with an independent RFC 9421 implementation: the Python package
//! `http-message-signatures` (tests/interop/peer.py). It signs requests gnapd
//! verifies, and verifies requests gnapd signs.
//!
//! The peer runs from the virtualenv `scripts/test.sh` (and so `.ci/run`)
//! creates; a missing peer is a failure, never a skip.

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gnapd::clock::{Clock as _, SystemClock};
use gnapd::proto::httpsig::{
    Algorithm, GnapProfile, HttpRequest, MemoryNonceStore, SignOptions, sign_gnap,
};
use gnapd::proto::jwk::SigningKey;
use serde_json::{Value, json};

use crate::support::paths::{python, root};

fn peer(args: &[&str], stdin: Option<&[u8]>) -> (i32, String) {
    let mut child = Command::new(python())
        .arg(root().join("tests/interop/peer.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// Writes a private JWK to a temporary file the peer can read.
fn jwk_file(dir: &tempfile::TempDir, name: &str, jwk: &Value) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, jwk.to_string()).unwrap();
    path.display().to_string()
}

fn keys() -> Vec<(&'static str, SigningKey)> {
    let rfc = crate::support::paths::vector("test-key-ed25519.jwk.json");
    vec![
        (
            "rfc9421 ed25519 (kid)",
            SigningKey::from_private_jwk(&rfc, None).unwrap(),
        ),
        (
            "fresh ed25519",
            SigningKey::generate(Algorithm::Ed25519).unwrap(),
        ),
        (
            "fresh p-256",
            SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap(),
        ),
        (
            "fresh p-256 (kid)",
            SigningKey::generate(Algorithm::EcdsaP256Sha256)
                .unwrap()
                .with_kid("p256-agent")
                .unwrap(),
        ),
    ]
}

fn to_request(message: &Value) -> HttpRequest {
    let mut req = HttpRequest::new(
        message["method"].as_str().unwrap(),
        message["url"].as_str().unwrap(),
    );
    for h in message["headers"].as_array().unwrap() {
        req.fields
            .append(h[0].as_str().unwrap(), h[1].as_str().unwrap());
    }
    req.body = STANDARD
        .decode(message["body_b64"].as_str().unwrap())
        .unwrap();
    req
}

fn to_json(req: &HttpRequest) -> Vec<u8> {
    let headers: Vec<Value> = req
        .fields
        .iter()
        .map(|(n, v)| json!([n, String::from_utf8(v.to_vec()).unwrap()]))
        .collect();
    json!({
        "method": req.method,
        "url": req.target_uri,
        "headers": headers,
        "body_b64": STANDARD.encode(&req.body),
    })
    .to_string()
    .into_bytes()
}

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"q":"gnap"}}}"#;

#[test]
fn python_signed_requests_verify_in_gnapd() {
    let dir = tempfile::tempdir().unwrap();
    let body_path = dir.path().join("body.json");
    std::fs::write(&body_path, BODY).unwrap();
    let body_path = body_path.display().to_string();
    let now = 1_790_000_000;
    for (name, key) in keys() {
        let jwk = jwk_file(&dir, "key.jwk", key.private_jwk());
        for with_body in [false, true] {
            let mut args = vec![
                "sign",
                "--jwk",
                &jwk,
                "--method",
                "POST",
                "--url",
                "https://gw.example.com/mcp/github?session=1",
                "--header",
                "Authorization: GNAP 80UPRY5NM33OMUKMKSKU",
                "--header",
                "Content-Type: application/json",
                "--created",
                "1790000000",
            ];
            if with_body {
                args.extend(["--body-file", &body_path]);
            }
            let (code, out) = peer(&args, None);
            assert_eq!(code, 0, "{name}: {out}");
            let req = to_request(&serde_json::from_str(&out).unwrap());
            let verified = GnapProfile::default()
                .verify(&req, key.verifying_key(), now, &MemoryNonceStore::default())
                .unwrap_or_else(|e| panic!("{name}, body {with_body}: {e}"));
            assert_eq!(&verified.thumbprint, key.verifying_key().thumbprint());
            assert_eq!(
                verified
                    .covered
                    .iter()
                    .any(|c| c.as_str() == "\"content-digest\""),
                with_body
            );

            // The same message with a changed body must fail in gnapd too.
            if with_body {
                let mut tampered = req.clone();
                tampered.body[10] ^= 1;
                assert!(
                    GnapProfile::default()
                        .verify(
                            &tampered,
                            key.verifying_key(),
                            now,
                            &MemoryNonceStore::default()
                        )
                        .is_err()
                );
            }
        }
    }
}

#[test]
fn gnapd_signed_requests_verify_in_python() {
    let dir = tempfile::tempdir().unwrap();
    for (name, key) in keys() {
        let public = jwk_file(&dir, "pub.jwk", key.verifying_key().public_jwk().unwrap());
        for with_body in [false, true] {
            let mut req = HttpRequest::new("POST", "https://gw.example.com/mcp/github")
                .with_field("Authorization", "GNAP 80UPRY5NM33OMUKMKSKU")
                .with_field("MCP-Protocol-Version", "2025-06-18");
            if with_body {
                req.body = BODY.as_bytes().to_vec();
                req.fields.append("Content-Type", "application/json");
            }
            sign_gnap(&mut req, &key, SystemClock.now(), &SignOptions::default()).unwrap();
            let (code, out) = peer(&["verify", "--jwk", &public], Some(&to_json(&req)));
            assert_eq!(code, 0, "{name}, body {with_body}: {out}");
            let report: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
            assert_eq!(report["ok"], true);

            // The peer is not a rubber stamp: a changed covered header fails.
            let mut tampered = req.clone();
            tampered.fields.set("Authorization", "GNAP another-token");
            let (code, out) = peer(&["verify", "--jwk", &public], Some(&to_json(&tampered)));
            assert_eq!(code, 1, "{name}: tampered request accepted: {out}");
        }
    }
}
