//! Interop with an independent JWS implementation: PyJWT builds `jwsd` and
//! `jws` requests (tests/interop/jose_peer.py: its own key, JWK, digest and
//! JOSE header) and sends them to the `gnapd serve` binary over loopback.
//!
//! The peer runs from the interop virtualenv; a missing peer is a failure,
//! never a skip.

use std::process::Command;

use serde_json::Value;

use crate::support::paths::{python, root};
use crate::support::server::Server;

fn peer(grant_endpoint: &str, method: &str, tamper: bool) -> Value {
    let mut command = Command::new(python());
    command
        .arg(root().join("tests/interop/jose_peer.py"))
        .args(["--grant-endpoint", grant_endpoint, "--method", method]);
    if tamper {
        command.arg("--tamper");
    }
    let out = command.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "jose_peer.py failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn pyjwt_jwsd_and_jws_requests_are_granted_and_revoked_by_gnapd() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    for method in ["jwsd", "jws"] {
        let report = peer(&server.grant_endpoint, method, false);
        assert_eq!(report["grant"]["status"], 200, "{method}: {report}");
        assert!(
            report["grant"]["body"]["access_token"]["value"].is_string(),
            "{method}: {report}"
        );
        assert_eq!(report["revoke"]["status"], 204, "{method}: {report}");
    }
}

#[test]
fn a_pyjwt_request_tampered_after_proving_is_invalid_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    for method in ["jwsd", "jws"] {
        let report = peer(&server.grant_endpoint, method, true);
        assert_eq!(report["grant"]["status"], 401, "{method}: {report}");
        assert_eq!(
            report["grant"]["body"]["error"]["code"], "invalid_client",
            "{method}: {report}"
        );
    }
}
