//! Every rule of the JWS proofs, one refusal each, and a round trip per
//! algorithm.

use serde_json::Value;

use super::sign::{proof_header, sign_compact};
use super::*;
use crate::proto::alg::Algorithm;
use crate::proto::httpsig::MemoryNonceStore;
use crate::proto::jwk::SigningKey;

const URI: &str = "https://as.example/gnap";
const NOW: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"access_token":{"access":["read"]}}"#;

fn key(alg: Algorithm) -> SigningKey {
    SigningKey::generate(alg).unwrap().with_kid("k1").unwrap()
}

fn target(created: i64) -> ProofTarget<'static> {
    ProofTarget {
        method: "POST",
        uri: URI,
        created,
        access_token: None,
    }
}

fn detached_request(proof: &str, body: &[u8]) -> HttpRequest {
    HttpRequest::new("POST", URI)
        .with_field("content-type", "application/json")
        .with_field("detached-jws", proof)
        .with_body(body.to_vec())
}

fn attached_request(jws: &str) -> HttpRequest {
    HttpRequest::new("POST", URI)
        .with_field("content-type", "application/jose")
        .with_body(jws.as_bytes().to_vec())
}

fn check(
    method: JwsMethod,
    request: &HttpRequest,
    key: &SigningKey,
) -> Result<VerifiedJws, JwsRejection> {
    verify(
        method,
        request,
        key.verifying_key(),
        &GnapProfile::default(),
        NOW,
        &MemoryNonceStore::default(),
    )
}

/// A detached proof whose header `edit` changed before signing.
fn detached_with(
    key: &SigningKey,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> HttpRequest {
    let mut header = proof_header(key, Typ::Jwsd, &target(NOW));
    edit(&mut header);
    let proof = sign_compact(key, &header, &detached::content_payload(BODY)).unwrap();
    detached_request(&proof, BODY)
}

fn refused(
    key: &SigningKey,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> JwsRejection {
    check(JwsMethod::Detached, &detached_with(key, edit), key).unwrap_err()
}

#[test]
fn a_detached_and_an_attached_proof_round_trip_with_every_algorithm() {
    for alg in [
        Algorithm::Ed25519,
        Algorithm::EcdsaP256Sha256,
        Algorithm::EcdsaP384Sha384,
        Algorithm::RsaV15Sha256,
        Algorithm::RsaPssSha512,
    ] {
        let k = key(alg);
        for attach in [true, false] {
            let proof = sign_detached(&k, Typ::Jwsd, &target(NOW), BODY, attach).unwrap();
            let ok = check(JwsMethod::Detached, &detached_request(&proof, BODY), &k)
                .unwrap_or_else(|e| panic!("{alg} {attach}: {e}"));
            assert_eq!(&ok.thumbprint, k.verifying_key().thumbprint());
            assert_eq!(ok.content, None);
        }
        let jws = sign_attached(&k, &target(NOW), BODY).unwrap();
        let ok = check(JwsMethod::Attached, &attached_request(&jws), &k).unwrap();
        assert_eq!(ok.content.as_deref(), Some(BODY), "{alg}");
    }
}

#[test]
fn a_detached_proof_over_no_content_signs_an_empty_payload() {
    let k = key(Algorithm::Ed25519);
    let t = ProofTarget {
        method: "DELETE",
        ..target(NOW)
    };
    let proof = sign_detached(&k, Typ::Jwsd, &t, b"", true).unwrap();
    assert!(proof.contains(".."), "{proof}");
    let request = HttpRequest::new("DELETE", URI).with_field("detached-jws", proof.as_str());
    check(JwsMethod::Detached, &request, &k).unwrap();
    // jws without content uses the detached form with its own typ.
    let proof = sign_detached(&k, Typ::Jws, &t, b"", true).unwrap();
    let request = HttpRequest::new("DELETE", URI).with_field("detached-jws", proof.as_str());
    check(JwsMethod::Attached, &request, &k).unwrap();
    assert_eq!(
        check(JwsMethod::Detached, &request, &k).unwrap_err(),
        JwsRejection::Typ("gnap-binding-jwsd")
    );
}

#[test]
fn a_jwsd_request_with_a_tampered_body_is_refused() {
    let k = key(Algorithm::Ed25519);
    for attach in [true, false] {
        let proof = sign_detached(&k, Typ::Jwsd, &target(NOW), BODY, attach).unwrap();
        let err = check(
            JwsMethod::Detached,
            &detached_request(&proof, b"{\"x\":1}"),
            &k,
        )
        .unwrap_err();
        let expected = if attach {
            JwsRejection::Digest
        } else {
            JwsRejection::BadSignature
        };
        assert_eq!(err, expected);
    }
}

#[test]
fn a_jws_body_with_a_tampered_payload_is_a_bad_signature() {
    let k = key(Algorithm::EcdsaP256Sha256);
    let jws = sign_attached(&k, &target(NOW), BODY).unwrap();
    let parts: Vec<&str> = jws.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        crate::proto::b64::encode_url(b"{\"x\":1}"),
        parts[2]
    );
    assert_eq!(
        check(JwsMethod::Attached, &attached_request(&forged), &k).unwrap_err(),
        JwsRejection::BadSignature
    );
}

#[test]
fn typ_is_case_insensitive_takes_the_application_prefix_and_refuses_the_plus_form() {
    let k = key(Algorithm::Ed25519);
    for ok in [
        "GNAP-binding-JWSD",
        "application/gnap-binding-jwsd",
        "Application/Gnap-Binding-Jwsd",
    ] {
        check(
            JwsMethod::Detached,
            &detached_with(&k, |h| {
                h.insert("typ".into(), ok.into());
            }),
            &k,
        )
        .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in ["gnap-binding+jwsd", "gnap-binding-jws", "jwt"] {
        assert_eq!(
            refused(&k, |h| {
                h.insert("typ".into(), bad.into());
            }),
            JwsRejection::Typ("gnap-binding-jwsd"),
            "{bad}"
        );
    }
    assert_eq!(
        refused(&k, |h| {
            h.remove("typ");
        }),
        JwsRejection::Missing("typ")
    );
}

#[test]
fn alg_none_or_another_alg_than_the_keys_is_refused() {
    let k = key(Algorithm::Ed25519);
    assert_eq!(
        refused(&k, |h| {
            h.insert("alg".into(), "none".into());
        }),
        JwsRejection::AlgNone
    );
    assert_eq!(
        refused(&k, |h| {
            h.insert("alg".into(), "ES256".into());
        }),
        JwsRejection::AlgMismatch
    );
    assert_eq!(
        refused(&k, |h| {
            h.remove("alg");
        }),
        JwsRejection::Missing("alg")
    );
}

#[test]
fn the_alg_must_equal_the_jwk_alg_member_when_the_key_has_one() {
    let mut jwk = key(Algorithm::EcdsaP256Sha256).private_jwk().clone();
    jwk["alg"] = "ES256".into();
    let k = SigningKey::from_private_jwk(&jwk, None).unwrap();
    check(JwsMethod::Detached, &detached_with(&k, |_| {}), &k).unwrap();
    assert_eq!(
        refused(&k, |h| {
            h.insert("alg".into(), "es256".into());
        }),
        JwsRejection::AlgMismatch
    );
}

#[test]
fn a_kid_other_than_the_keys_is_refused() {
    let k = key(Algorithm::Ed25519);
    assert_eq!(
        refused(&k, |h| {
            h.insert("kid".into(), "k2".into());
        }),
        JwsRejection::KidMismatch
    );
    assert_eq!(
        refused(&k, |h| {
            h.remove("kid");
        }),
        JwsRejection::KidMismatch
    );
}

#[test]
fn htm_and_uri_must_name_the_request() {
    let k = key(Algorithm::Ed25519);
    assert_eq!(
        refused(&k, |h| {
            h.insert("htm".into(), "post".into());
        }),
        JwsRejection::Htm
    );
    assert_eq!(
        refused(&k, |h| {
            h.insert("uri".into(), "https://as.example/gnap/continue/x".into());
        }),
        JwsRejection::Uri
    );
    assert_eq!(
        refused(&k, |h| {
            h.insert("uri".into(), "https://as.example/gnap#f".into());
        }),
        JwsRejection::UriFragment
    );
    assert_eq!(
        refused(&k, |h| {
            h.insert("uri".into(), "/gnap".into());
        }),
        JwsRejection::Uri
    );
}

#[test]
fn created_must_be_an_integer_inside_the_window() {
    let k = key(Algorithm::Ed25519);
    assert_eq!(
        refused(&k, |h| {
            h.insert("created".into(), (NOW - 301).into());
        }),
        JwsRejection::TooOld(301)
    );
    assert_eq!(
        refused(&k, |h| {
            h.insert("created".into(), (NOW + 61).into());
        }),
        JwsRejection::CreatedInFuture(61)
    );
    assert_eq!(
        refused(&k, |h| {
            h.insert("created".into(), "1700000000".into());
        }),
        JwsRejection::Member("created")
    );
    assert_eq!(
        refused(&k, |h| {
            h.insert("created".into(), 1.5.into());
        }),
        JwsRejection::Member("created")
    );
    assert_eq!(
        refused(&k, |h| {
            h.remove("created");
        }),
        JwsRejection::Missing("created")
    );
}

#[test]
fn ath_is_required_with_a_token_must_hash_it_and_is_refused_without_one() {
    let k = key(Algorithm::Ed25519);
    let with_token = |proof: &str| {
        HttpRequest::new("POST", URI)
            .with_field("authorization", "GNAP tok123")
            .with_field("detached-jws", proof)
            .with_body(BODY.to_vec())
    };
    let good = ProofTarget {
        access_token: Some("tok123"),
        ..target(NOW)
    };
    let proof = sign_detached(&k, Typ::Jwsd, &good, BODY, true).unwrap();
    check(JwsMethod::Detached, &with_token(&proof), &k).unwrap();
    // Missing ath with a token.
    let proof = sign_detached(&k, Typ::Jwsd, &target(NOW), BODY, true).unwrap();
    assert_eq!(
        check(JwsMethod::Detached, &with_token(&proof), &k).unwrap_err(),
        JwsRejection::Missing("ath")
    );
    // ath of another token.
    let other = ProofTarget {
        access_token: Some("other"),
        ..target(NOW)
    };
    let proof = sign_detached(&k, Typ::Jwsd, &other, BODY, true).unwrap();
    assert_eq!(
        check(JwsMethod::Detached, &with_token(&proof), &k).unwrap_err(),
        JwsRejection::Ath
    );
    // ath without a token.
    let proof = sign_detached(&k, Typ::Jwsd, &good, BODY, true).unwrap();
    assert_eq!(
        check(JwsMethod::Detached, &detached_request(&proof, BODY), &k).unwrap_err(),
        JwsRejection::UnexpectedAth
    );
    // An Authorization field that is not a GNAP token cannot be covered.
    let request = detached_request(&proof, BODY).with_field("authorization", "Bearer x");
    assert_eq!(
        check(JwsMethod::Detached, &request, &k).unwrap_err(),
        JwsRejection::Authorization
    );
}

#[test]
fn a_duplicated_missing_or_oversize_detached_jws_field_is_refused() {
    let k = key(Algorithm::Ed25519);
    let proof = sign_detached(&k, Typ::Jwsd, &target(NOW), BODY, true).unwrap();
    let twice = detached_request(&proof, BODY).with_field("Detached-JWS", proof.as_str());
    assert_eq!(
        check(JwsMethod::Detached, &twice, &k).unwrap_err(),
        JwsRejection::DuplicateField
    );
    let none = HttpRequest::new("POST", URI).with_body(BODY.to_vec());
    assert_eq!(
        check(JwsMethod::Detached, &none, &k).unwrap_err(),
        JwsRejection::MissingField
    );
    let huge = "a".repeat(header::MAX_DETACHED_LEN + 1);
    assert_eq!(
        check(JwsMethod::Detached, &detached_request(&huge, BODY), &k).unwrap_err(),
        JwsRejection::TooLarge
    );
}

#[test]
fn an_oversize_header_or_extra_segments_are_refused_before_any_cryptography() {
    let k = key(Algorithm::Ed25519);
    assert_eq!(
        refused(&k, |h| {
            h.insert("pad".into(), "x".repeat(header::MAX_HEADER_LEN).into());
        }),
        JwsRejection::HeaderTooLarge
    );
    let proof = sign_detached(&k, Typ::Jwsd, &target(NOW), BODY, true).unwrap();
    let five = format!("{proof}.x.y");
    assert_eq!(
        check(JwsMethod::Detached, &detached_request(&five, BODY), &k).unwrap_err(),
        JwsRejection::ExtraSegments
    );
    assert_eq!(
        check(JwsMethod::Detached, &detached_request("abc", BODY), &k).unwrap_err(),
        JwsRejection::Malformed
    );
}

#[test]
fn crit_may_name_only_members_gnapd_processes() {
    let k = key(Algorithm::Ed25519);
    check(
        JwsMethod::Detached,
        &detached_with(&k, |h| {
            h.insert("crit".into(), serde_json::json!(["htm", "uri"]));
        }),
        &k,
    )
    .unwrap();
    assert_eq!(
        refused(&k, |h| {
            h.insert("crit".into(), serde_json::json!(["exp"]));
        }),
        JwsRejection::UnknownCritical
    );
    assert_eq!(
        refused(&k, |h| {
            h.insert("crit".into(), serde_json::json!(["ath"]));
        }),
        JwsRejection::UnknownCritical,
        "a critical member must be present"
    );
    assert_eq!(
        refused(&k, |h| {
            h.insert("crit".into(), serde_json::json!([]));
        }),
        JwsRejection::Member("crit")
    );
    assert_eq!(
        refused(&k, |h| {
            h.insert("b64".into(), false.into());
        }),
        JwsRejection::UnknownCritical
    );
}

#[test]
fn a_wrong_key_is_a_bad_signature() {
    let k = key(Algorithm::Ed25519);
    let other = key(Algorithm::Ed25519);
    let proof = sign_detached(&other, Typ::Jwsd, &target(NOW), BODY, true).unwrap();
    assert_eq!(
        check(JwsMethod::Detached, &detached_request(&proof, BODY), &k).unwrap_err(),
        JwsRejection::BadSignature
    );
}

#[test]
fn a_replayed_proof_is_refused_and_a_bad_signature_burns_nothing() {
    let k = key(Algorithm::Ed25519);
    let store = MemoryNonceStore::default();
    let run = |request: &HttpRequest| {
        verify(
            JwsMethod::Detached,
            request,
            k.verifying_key(),
            &GnapProfile::default(),
            NOW,
            &store,
        )
    };
    let proof = sign_detached(&k, Typ::Jwsd, &target(NOW), BODY, true).unwrap();
    let mut forged = proof.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert_eq!(
        run(&detached_request(&forged, BODY)).unwrap_err(),
        JwsRejection::BadSignature
    );
    assert!(store.is_empty(), "a forged proof wrote nothing");
    run(&detached_request(&proof, BODY)).unwrap();
    // The same request in the other compact form has the same signing input.
    let bare = sign_detached(&k, Typ::Jwsd, &target(NOW), BODY, false).unwrap();
    assert_eq!(
        run(&detached_request(&bare, BODY)).unwrap_err(),
        JwsRejection::Replayed
    );
    assert_eq!(
        run(&detached_request(&proof, BODY)).unwrap_err(),
        JwsRejection::Replayed
    );
}

#[test]
fn a_proof_created_before_the_replay_cache_began_is_refused() {
    let k = key(Algorithm::Ed25519);
    let store = MemoryNonceStore::default().since(NOW);
    let proof = sign_detached(&k, Typ::Jwsd, &target(NOW - 1), BODY, true).unwrap();
    let err = verify(
        JwsMethod::Detached,
        &detached_request(&proof, BODY),
        k.verifying_key(),
        &GnapProfile::default(),
        NOW,
        &store,
    )
    .unwrap_err();
    assert_eq!(err, JwsRejection::BeforeHorizon);
}

#[test]
fn a_jws_body_must_be_application_jose_and_alone() {
    let k = key(Algorithm::Ed25519);
    let jws = sign_attached(&k, &target(NOW), BODY).unwrap();
    let json = HttpRequest::new("POST", URI)
        .with_field("content-type", "application/json")
        .with_body(jws.as_bytes().to_vec());
    assert_eq!(
        check(JwsMethod::Attached, &json, &k).unwrap_err(),
        JwsRejection::NotJose
    );
    let both = attached_request(&jws).with_field("detached-jws", jws.as_str());
    assert_eq!(
        check(JwsMethod::Attached, &both, &k).unwrap_err(),
        JwsRejection::BothForms
    );
    // A detached typ inside an attached body is refused.
    let mut header = proof_header(&k, Typ::Jwsd, &target(NOW));
    header.insert("typ".into(), "gnap-binding-jwsd".into());
    let wrong = sign_compact(&k, &header, &crate::proto::b64::encode_url(BODY)).unwrap();
    assert_eq!(
        check(JwsMethod::Attached, &attached_request(&wrong), &k).unwrap_err(),
        JwsRejection::Typ("gnap-binding-jws")
    );
}

#[test]
fn the_unverified_content_of_a_jws_body_and_of_a_nested_rotation_is_the_json() {
    let old = key(Algorithm::Ed25519);
    let new = SigningKey::generate(Algorithm::Ed25519)
        .unwrap()
        .with_kid("k2")
        .unwrap();
    let jws = sign_attached(&old, &target(NOW), BODY).unwrap();
    assert_eq!(unverified_content(jws.as_bytes()).unwrap(), BODY);
    assert_eq!(
        unverified_rotation_content(jws.as_bytes()).unwrap(),
        (BODY.to_vec(), false)
    );
    let rotation = sign_rotation(JwsMethod::Attached, &old, &new, &target(NOW), BODY).unwrap();
    assert_eq!(
        unverified_rotation_content(rotation.as_bytes()).unwrap(),
        (BODY.to_vec(), true)
    );
    // Outside a token management URI a rotation is not unwrapped.
    assert_ne!(unverified_content(rotation.as_bytes()).unwrap(), BODY);
}

#[test]
fn a_rotation_nests_the_old_keys_proof_in_the_new_keys_for_both_methods() {
    let old = key(Algorithm::Ed25519);
    let new = SigningKey::generate(Algorithm::EcdsaP256Sha256)
        .unwrap()
        .with_kid("k2")
        .unwrap();
    let t = ProofTarget {
        access_token: Some("mgmt"),
        ..target(NOW)
    };
    let rotate = |method: JwsMethod, request: &HttpRequest, old: &SigningKey, new: &SigningKey| {
        verify_rotation(
            method,
            request,
            old.verifying_key(),
            new.verifying_key(),
            &GnapProfile::default(),
            NOW,
            &MemoryNonceStore::default(),
        )
    };
    let proof = sign_rotation(JwsMethod::Detached, &old, &new, &t, BODY).unwrap();
    let request = detached_request(&proof, BODY).with_field("authorization", "GNAP mgmt");
    let ok = rotate(JwsMethod::Detached, &request, &old, &new).unwrap();
    assert_eq!(
        (&ok.old, &ok.new),
        (
            old.verifying_key().thumbprint(),
            new.verifying_key().thumbprint()
        )
    );
    // The keys swapped: the outer proof is not by the key named new.
    assert!(rotate(JwsMethod::Detached, &request, &new, &old).is_err());
    // A tampered body breaks the old key's proof.
    let tampered = detached_request(&proof, b"{}").with_field("authorization", "GNAP mgmt");
    assert_eq!(
        rotate(JwsMethod::Detached, &tampered, &old, &new).unwrap_err(),
        JwsRejection::Digest
    );
    // An ordinary proof is not a rotation.
    let plain = sign_detached(&new, Typ::Jwsd, &t, BODY, true).unwrap();
    let request = detached_request(&plain, BODY).with_field("authorization", "GNAP mgmt");
    assert_eq!(
        rotate(JwsMethod::Detached, &request, &old, &new).unwrap_err(),
        JwsRejection::RotationPayload
    );

    let body = sign_rotation(JwsMethod::Attached, &old, &new, &t, BODY).unwrap();
    let request = attached_request(&body).with_field("authorization", "GNAP mgmt");
    let ok = rotate(JwsMethod::Attached, &request, &old, &new).unwrap();
    assert_eq!(ok.content.as_deref(), Some(BODY));
    // The inner proof must carry the rotation typ.
    let inner = sign_attached(&old, &t, BODY).unwrap();
    let outer = sign_compact(
        &new,
        &proof_header(&new, Typ::Jws, &t),
        &crate::proto::b64::encode_url(inner.as_bytes()),
    )
    .unwrap();
    let request = attached_request(&outer).with_field("authorization", "GNAP mgmt");
    assert_eq!(
        rotate(JwsMethod::Attached, &request, &old, &new).unwrap_err(),
        JwsRejection::Typ("gnap-binding-rotation-jws")
    );
}

/// The JOSE header of RFC 9635 §7.3.3's example, as its base64 spells it.
const RFC_EXAMPLE_HEADER: &str = "eyJhbGciOiJSUzI1NiIsImNyZWF0ZWQiOjE2MTg4ODQ0NzUsImh0bSI6IlBPU1QiLCJraWQiOiJnbmFwLXJzYSIsInR5cCI6ImduYXAtYmluZGluZytqd3NkIiwidXJpIjoiaHR0cHM6Ly9zZXJ2ZXIuZXhhbXBsZS5jb20vZ25hcCJ9";

#[test]
fn the_rfc_examples_header_reads_but_its_plus_typ_is_refused_as_the_text_says() {
    let compact = format!("{RFC_EXAMPLE_HEADER}.PGiVuOZUcN1tRtUS6tx2b4cBgw9mPgXG3IPB3wY7ctc.AAAA");
    let parsed = header::Compact::parse(&compact).unwrap();
    let h = &parsed.header;
    assert_eq!(
        (
            h.alg.as_str(),
            h.kid.as_deref(),
            h.htm.as_str(),
            h.uri.as_str(),
            h.created
        ),
        (
            "RS256",
            Some("gnap-rsa"),
            "POST",
            "https://server.example.com/gnap",
            1_618_884_475
        )
    );
    // The example's base64 says `gnap-binding+jwsd`; the text (and gnapd)
    // say `gnap-binding-jwsd`.
    assert_eq!(h.typ, "gnap-binding+jwsd");
    assert!(!Typ::Jwsd.matches(&h.typ));
    assert!(Typ::Jwsd.matches("gnap-binding-jwsd"));
}
