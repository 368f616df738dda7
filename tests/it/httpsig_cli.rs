//! `gnapd httpsig base|verify|sign`, run as a real process.

use crate::support::paths::{root, vector};
use crate::support::run::gnapd;

/// The B.2.6 request with its signature fields, as HTTP/1.1 text.
fn b26_raw() -> Vec<u8> {
    let v = vector("rfc9421-b-2-6.json");
    let raw = v["message_raw"].as_str().unwrap();
    let (head, body) = raw.split_once("\n\n").unwrap();
    format!(
        "{head}\nSignature-Input: {}\nSignature: {}\n\n{body}",
        v["signature_input_header"].as_str().unwrap(),
        v["signature_header"].as_str().unwrap()
    )
    .into_bytes()
}

fn jwk(name: &str) -> String {
    root()
        .join("tests/vectors")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn cli_base_prints_the_rfc9421_b_2_6_signature_base() {
    let out = gnapd(&["httpsig", "base"], &b26_raw());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = vector("rfc9421-b-2-6.json")["signature_base"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("# sig-b26\n{expected}\n")
    );
}

#[test]
fn cli_verify_exits_zero_only_when_a_signature_verifies() {
    let key = jwk("test-key-ed25519.pub.jwk.json");
    let ok = gnapd(
        &["httpsig", "verify", "--jwk", &key, "--profile", "rfc9421"],
        &b26_raw(),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let tampered = String::from_utf8(b26_raw())
        .unwrap()
        .replace("POST /foo", "PUT /foo");
    let bad = gnapd(
        &["httpsig", "verify", "--jwk", &key, "--profile", "rfc9421"],
        tampered.as_bytes(),
    );
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn cli_verify_lists_every_gnap_rule_the_rfc_example_breaks() {
    // B.2.6 is a valid RFC 9421 signature but not a GNAP one: no tag, no
    // @target-uri, and far outside the created window.
    let key = jwk("test-key-ed25519.pub.jwk.json");
    let out = gnapd(&["httpsig", "verify", "--jwk", &key], &b26_raw());
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8(out.stdout).unwrap();
    for reason in [
        "FAIL tag",
        "FAIL too_old",
        "does not cover @target-uri",
        "does not cover content-digest",
    ] {
        assert!(report.contains(reason), "{reason} missing from:\n{report}");
    }
    assert!(!report.contains("bad_signature"), "{report}");
}

#[test]
fn cli_sign_then_verify_round_trips_under_the_gnap_profile() {
    let request = b"POST /gnap HTTP/1.1\r\nHost: as.example.com\r\nContent-Type: application/json\r\n\r\n{\"access_token\":{}}";
    let signed = gnapd(
        &[
            "httpsig",
            "sign",
            "--jwk",
            &jwk("test-key-ed25519.jwk.json"),
            "--now",
            "1790000000",
        ],
        request,
    );
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let text = String::from_utf8(signed.stdout.clone()).unwrap();
    assert!(text.contains("Content-Digest: sha-256=:"), "{text}");
    assert!(text.contains("tag=\"gnap\""), "{text}");
    let key = jwk("test-key-ed25519.pub.jwk.json");
    let ok = gnapd(
        &["httpsig", "verify", "--jwk", &key, "--now", "1790000010"],
        &signed.stdout,
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let late = gnapd(
        &["httpsig", "verify", "--jwk", &key, "--now", "1790000400"],
        &signed.stdout,
    );
    assert_eq!(late.status.code(), Some(1));
}

#[test]
fn cli_reports_unreadable_input_with_status_two() {
    let out = gnapd(&["httpsig", "base"], b"not http");
    assert_eq!(out.status.code(), Some(2));
}
