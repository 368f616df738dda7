//! `mtls` key proofing (RFC 9635 §7.3.2) with an independent TLS client:
//! tests/interop/mtls_agent.py, on Python's `ssl` (OpenSSL), presents its
//! own self-signed certificates to `gnapd serve --tls-client-certs` (rustls)
//! and uses the token at the AS and at the gateway. The Rust side only
//! starts the processes and judges the answers.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::mcp_upstream::Upstream;
use crate::support::paths::{python, root};
use crate::support::pki::{TestPki, test_pki};
use crate::support::server::Server;

/// A self-signed client certificate and its key (P-256), made by the
/// `openssl` command line: no CA vouches for it, as §7.3.2 expects.
fn client_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", &format!("/CN={name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

fn mtls_server(dir: &Path, pki: &TestPki, extra: &[&str]) -> Server {
    let config = dir.join("gnapd.toml");
    std::fs::write(&config, "poll_wait = 0\n").unwrap();
    let mut args = vec![
        "--dev",
        "--config",
        config.to_str().unwrap(),
        "--tls-cert",
        pki.cert.to_str().unwrap(),
        "--tls-key",
        pki.key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Server::start(&dir.join("data"), &args)
}

fn agent(server: &Server, pki: &TestPki, dir: &Path, mcp: Option<&str>) -> Value {
    let (cert, key) = client_cert(dir, "agent");
    let (other_cert, other_key) = client_cert(dir, "intruder");
    let mut command = Command::new(python());
    command
        .arg(root().join("tests/interop/mtls_agent.py"))
        .args(["--grant-endpoint", &server.grant_endpoint])
        .arg("--ca")
        .arg(&pki.ca)
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg("--other-cert")
        .arg(&other_cert)
        .arg("--other-key")
        .arg(&other_key);
    if let Some(mcp) = mcp {
        command.args(["--mcp", mcp]);
    }
    let out = command.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "mtls_agent.py failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn code(step: &Value) -> &str {
    step["body"]["error"]["code"].as_str().unwrap_or_default()
}

#[test]
fn an_openssl_client_is_granted_by_its_certificate_and_only_that_certificate_uses_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(dir.path());
    let upstream = Upstream::start(dir.path(), true);
    let upstream_arg = format!("github={}", upstream.url());
    let server = mtls_server(
        dir.path(),
        &pki,
        &["--tls-client-certs", "--upstream", &upstream_arg],
    );
    let mcp = format!("{}/mcp/github", server.base());
    let report = agent(&server, &pki, dir.path(), Some(&mcp));
    let proofs = &report["discovery"]["body"]["key_proofs_supported"];
    assert!(
        proofs.as_array().unwrap().contains(&"mtls".into()),
        "{report}"
    );
    // The certificate proved in the handshake is the key: granted, bound.
    assert_eq!(report["grant"]["status"], 200, "{report}");
    assert!(report["grant"]["body"]["access_token"]["value"].is_string());
    assert_eq!(report["thumbprint"]["status"], 200, "cert#S256: {report}");
    // Another certificate, or none, cannot present it.
    for step in ["foreign", "bare"] {
        assert_eq!(report[step]["status"], 401, "{step}: {report}");
        assert_eq!(code(&report[step]), "invalid_client", "{step}: {report}");
    }
    assert_eq!(report["poll"]["status"], 200, "{report}");
    // At the gateway the connection is the proof: no signature needed,
    // and another certificate gets the GNAP challenge.
    assert_eq!(report["mcp"]["status"], 200, "{report}");
    assert_eq!(report["mcp_foreign"]["status"], 401, "{report}");
    assert!(
        report["mcp_foreign"]["www_authenticate"]
            .as_str()
            .is_some_and(|c| c.contains("GNAP as_uri=")),
        "{report}"
    );
    // §7.3.2.1: no dynamic rotation for mtls.
    assert_eq!(
        code(&report["rotate"]),
        "key_rotation_not_supported",
        "{report}"
    );
    assert_eq!(report["revoke_foreign"]["status"], 401, "{report}");
    assert_eq!(report["revoke"]["status"], 204, "{report}");
}

#[test]
fn without_tls_client_certs_mtls_is_neither_listed_nor_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(dir.path());
    let server = mtls_server(dir.path(), &pki, &[]);
    let report = agent(&server, &pki, dir.path(), None);
    let proofs = &report["discovery"]["body"]["key_proofs_supported"];
    assert!(
        !proofs.as_array().unwrap().contains(&"mtls".into()),
        "{report}"
    );
    // The listener asked for no certificate, so the connection proves none.
    assert_eq!(report["grant"]["status"], 401, "{report}");
    assert_eq!(code(&report["grant"]), "invalid_client", "{report}");
}
