//! RFC 9635 §7.3.1 (GNAP profile of RFC 9421): one test, or one named row
//! of a table, per rule, each asserting the specific rejection reason.

use gnapd::proto::digest::DigestError;
use gnapd::proto::httpsig::component::{IdentifierError, ValueError};
use gnapd::proto::httpsig::input::InputError;
use gnapd::proto::httpsig::params::ParamsError;
use gnapd::proto::httpsig::sign::sign_request;
use gnapd::proto::httpsig::verify::{VerifyError, verify_signature};
use gnapd::proto::httpsig::{
    Algorithm, ComponentId, GnapProfile, HttpRequest, MemoryNonceStore, Message, Metadata,
    Rejection, SignOptions, SignatureParams, sign_gnap, sign_gnap_rotation,
};
use gnapd::proto::jwk::SigningKey;

const NOW: i64 = 1_790_000_000;

fn key() -> SigningKey {
    SigningKey::generate(Algorithm::Ed25519)
        .unwrap()
        .with_kid("agent-1")
        .unwrap()
}

fn request() -> HttpRequest {
    HttpRequest::new("POST", "https://as.example.com/gnap?x=1")
        .with_field("Content-Type", "application/json")
        .with_field("Authorization", "GNAP 80UPRY5NM33OMUKMKSKU")
        .with_field("Mcp-Method", "tools/call")
        .with_body(br#"{"access_token":{"access":["mcp:github"]}}"#.to_vec())
}

fn signed(key: &SigningKey) -> HttpRequest {
    let mut req = request();
    sign_gnap(&mut req, key, NOW, &SignOptions::default()).unwrap();
    req
}

fn verify_at(
    req: &HttpRequest,
    key: &SigningKey,
    now: i64,
) -> Result<gnapd::proto::httpsig::VerifiedRequest, Rejection> {
    GnapProfile::default().verify(req, key.verifying_key(), now, &MemoryNonceStore::default())
}

fn verify(
    req: &HttpRequest,
    key: &SigningKey,
) -> Result<gnapd::proto::httpsig::VerifiedRequest, Rejection> {
    verify_at(req, key, NOW)
}

/// Signs `request()` with hand-picked components and metadata (Content-Digest
/// set as the GNAP signer would).
fn signed_with(key: &SigningKey, covered: &[&str], meta: Metadata) -> HttpRequest {
    let mut req = request();
    let digest = gnapd::proto::digest::content_digest(
        &req.body,
        &[gnapd::proto::digest::DigestAlgorithm::Sha256],
    );
    req.fields.set("Content-Digest", digest.into_bytes());
    let covered = covered
        .iter()
        .map(|c| ComponentId::parse(c).unwrap())
        .collect();
    let params = SignatureParams::new(covered, meta).unwrap();
    sign_request(&mut req, "sig1", &params, key).unwrap();
    req
}

fn gnap_meta() -> Metadata {
    Metadata {
        created: Some(NOW),
        keyid: Some("agent-1".into()),
        nonce: Some("n-1".into()),
        tag: Some("gnap".into()),
        ..Metadata::default()
    }
}

const ALL: [&str; 5] = [
    "\"@method\"",
    "\"@target-uri\"",
    "\"content-digest\"",
    "\"authorization\"",
    "\"mcp-method\"",
];

fn all_but(skip: &str) -> Vec<&'static str> {
    ALL.into_iter().filter(|c| !c.contains(skip)).collect()
}

#[test]
fn a_request_signed_under_the_profile_verifies_and_names_the_key() {
    let key = key();
    let verified = verify(&signed(&key), &key).unwrap();
    assert_eq!(&verified.thumbprint, key.verifying_key().thumbprint());
    assert_eq!(verified.label, "sig1");
    assert_eq!(verified.created, NOW);
    assert!(verified.nonce.is_some());
    let covered: Vec<&str> = verified.covered.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        covered,
        vec![
            "\"@method\"",
            "\"@target-uri\"",
            "\"content-digest\"",
            "\"authorization\"",
            "\"mcp-method\""
        ]
    );
}

/// §7.3.1: the components a GNAP signature must cover; each row leaves one
/// out.
#[test]
fn a_signature_leaving_out_a_required_component_is_refused() {
    let key = key();
    for (case, left_out) in [
        ("the method", "@method"),
        ("the target URI", "@target-uri"),
        ("content-digest when there is content", "content-digest"),
        ("authorization when a token is presented", "authorization"),
    ] {
        let req = signed_with(&key, &all_but(left_out), gnap_meta());
        assert_eq!(
            verify(&req, &key),
            Err(Rejection::MissingComponent(left_out.into())),
            "{case}"
        );
    }
}

#[test]
fn a_request_without_content_or_token_needs_only_method_and_target_uri() {
    let key = key();
    let mut req = HttpRequest::new("GET", "https://as.example.com/gnap");
    sign_gnap(&mut req, &key, NOW, &SignOptions::default()).unwrap();
    let verified = verify(&req, &key).unwrap();
    let covered: Vec<&str> = verified.covered.iter().map(|c| c.as_str()).collect();
    assert_eq!(covered, vec!["\"@method\"", "\"@target-uri\""]);
}

/// A request changed after signing: each row changes one signed part.
#[test]
fn a_request_tampered_after_signing_is_refused() {
    type Tamper = fn(&mut HttpRequest);
    let cases: [(&str, Tamper, Rejection); 10] = [
        (
            "the method",
            |req| req.method = "PUT".into(),
            Rejection::BadSignature,
        ),
        (
            "the target URI's path",
            |req| req.target_uri = "https://as.example.com/other?x=1".into(),
            Rejection::BadSignature,
        ),
        (
            "the authority",
            |req| req.target_uri = "https://evil.example.com/gnap?x=1".into(),
            Rejection::BadSignature,
        ),
        (
            "the query",
            |req| req.target_uri = "https://as.example.com/gnap?x=2".into(),
            Rejection::BadSignature,
        ),
        (
            "the authorization header",
            |req| req.fields.set("Authorization", "GNAP stolen-token"),
            Rejection::BadSignature,
        ),
        (
            "the MCP routing header",
            |req| req.fields.set("Mcp-Method", "tools/list"),
            Rejection::BadSignature,
        ),
        (
            "the body: the digest fails",
            |req| req.body = br#"{"access_token":{"access":["mcp:admin"]}}"#.to_vec(),
            Rejection::Digest(DigestError::Mismatch("sha-256")),
        ),
        (
            "the body with a recomputed digest: the signature fails",
            |req| {
                req.body = br#"{"access_token":{"access":["mcp:admin"]}}"#.to_vec();
                let digest = gnapd::proto::digest::content_digest(
                    &req.body,
                    &[gnapd::proto::digest::DigestAlgorithm::Sha256],
                );
                req.fields.set("Content-Digest", digest.into_bytes());
            },
            Rejection::BadSignature,
        ),
        (
            "content without a content-digest field",
            |req| req.fields.remove("Content-Digest"),
            Rejection::Digest(DigestError::Missing),
        ),
        (
            "two content-digest lines",
            |req| req.fields.append("Content-Digest", "sha-512=:AAAA:"),
            Rejection::Digest(DigestError::Malformed),
        ),
    ];
    let key = key();
    for (case, tamper, expected) in cases {
        let mut req = signed(&key);
        tamper(&mut req);
        assert_eq!(verify(&req, &key), Err(expected), "{case}");
    }
}

#[test]
fn a_content_digest_with_only_unknown_algorithms_fails() {
    let key = key();
    let mut req = request();
    req.fields.set("Content-Digest", "md5=:AAAA:");
    let covered = ALL.iter().map(|c| ComponentId::parse(c).unwrap()).collect();
    let params = SignatureParams::new(covered, gnap_meta()).unwrap();
    sign_request(&mut req, "sig1", &params, &key).unwrap();
    assert_eq!(
        verify(&req, &key),
        Err(Rejection::Digest(DigestError::NoSupportedAlgorithm))
    );
}

#[test]
fn a_signature_by_another_key_fails() {
    let key = key();
    let other = SigningKey::generate(Algorithm::Ed25519)
        .unwrap()
        .with_kid("agent-1")
        .unwrap();
    assert_eq!(verify(&signed(&other), &key), Err(Rejection::BadSignature));
}

#[test]
fn a_signature_by_another_algorithm_fails() {
    let p256 = SigningKey::generate(Algorithm::EcdsaP256Sha256)
        .unwrap()
        .with_kid("agent-1")
        .unwrap();
    let ed = key();
    assert_eq!(verify(&signed(&ed), &p256), Err(Rejection::BadSignature));
}

/// §7.3.1's signature parameters: each row signs with one of them wrong.
#[test]
fn a_signature_with_parameters_the_profile_forbids_is_refused() {
    let cases = [
        (
            "an alg parameter",
            Metadata {
                alg: Some("ed25519".into()),
                ..gnap_meta()
            },
            Rejection::AlgParameter,
        ),
        (
            "no tag",
            Metadata {
                tag: None,
                ..gnap_meta()
            },
            Rejection::MissingTag,
        ),
        (
            "a tag other than gnap",
            Metadata {
                tag: Some("web-bot-auth".into()),
                ..gnap_meta()
            },
            Rejection::WrongTag("gnap"),
        ),
        (
            "no created",
            Metadata {
                created: None,
                ..gnap_meta()
            },
            Rejection::MissingCreated,
        ),
    ];
    let key = key();
    for (case, meta, expected) in cases {
        let req = signed_with(&key, &ALL, meta);
        assert_eq!(verify(&req, &key), Err(expected), "{case}");
    }
}

#[test]
fn an_alg_parameter_that_contradicts_the_key_fails_generic_verification() {
    let key = key();
    let meta = Metadata {
        alg: Some("rsa-pss-sha512".into()),
        ..gnap_meta()
    };
    let req = signed_with(&key, &ALL, meta);
    let inputs = gnapd::proto::httpsig::input::signature_inputs(&req.fields).unwrap();
    let sigs = gnapd::proto::httpsig::input::signatures(&req.fields).unwrap();
    assert_eq!(
        verify_signature(
            Message::Request(&req),
            &inputs[0].params,
            &sigs[0].1,
            key.verifying_key()
        ),
        Err(VerifyError::AlgorithmMismatch)
    );
}

#[test]
fn created_beyond_the_skew_allowance_is_refused() {
    let key = key();
    let req = signed(&key);
    assert!(verify_at(&req, &key, NOW - 60).is_ok());
    assert_eq!(
        verify_at(&req, &key, NOW - 61),
        Err(Rejection::CreatedInFuture(61))
    );
}

#[test]
fn a_signature_older_than_the_maximum_age_is_refused() {
    let key = key();
    let req = signed(&key);
    assert!(verify_at(&req, &key, NOW + 300).is_ok());
    assert_eq!(
        verify_at(&req, &key, NOW + 301),
        Err(Rejection::TooOld(301))
    );
}

#[test]
fn an_expired_signature_is_refused() {
    let key = key();
    let req = signed_with(
        &key,
        &ALL,
        Metadata {
            expires: Some(NOW + 10),
            ..gnap_meta()
        },
    );
    assert!(verify_at(&req, &key, NOW + 10).is_ok());
    assert_eq!(verify_at(&req, &key, NOW + 11), Err(Rejection::Expired));
}

#[test]
fn a_keyid_other_than_the_kid_is_refused() {
    let key = key();
    let req = signed_with(
        &key,
        &ALL,
        Metadata {
            keyid: Some("someone-else".into()),
            ..gnap_meta()
        },
    );
    assert_eq!(verify(&req, &key), Err(Rejection::KeyIdMismatch));
    let req = signed_with(
        &key,
        &ALL,
        Metadata {
            keyid: None,
            ..gnap_meta()
        },
    );
    assert_eq!(verify(&req, &key), Err(Rejection::KeyIdMismatch));
}

#[test]
fn a_replayed_nonce_is_refused() {
    let key = key();
    let req = signed(&key);
    let store = MemoryNonceStore::default();
    let profile = GnapProfile::default();
    profile
        .verify(&req, key.verifying_key(), NOW, &store)
        .unwrap();
    assert_eq!(
        profile.verify(&req, key.verifying_key(), NOW + 1, &store),
        Err(Rejection::ReplayedNonce)
    );
}

#[test]
fn a_signature_created_before_the_replay_memory_began_is_refused() {
    // After a restart the replay cache is empty: a request signed before it
    // could have been used already, so it is refused; one signed since is not.
    let key = key();
    let req = signed(&key);
    let profile = GnapProfile::default();
    let restarted = MemoryNonceStore::default().since(NOW + 1);
    assert_eq!(
        profile.verify(&req, key.verifying_key(), NOW + 2, &restarted),
        Err(Rejection::BeforeHorizon)
    );
    let same_second = MemoryNonceStore::default().since(NOW);
    assert!(
        profile
            .verify(&req, key.verifying_key(), NOW + 2, &same_second)
            .is_ok()
    );
}

#[test]
fn a_replayed_signature_without_nonce_is_refused() {
    let key = key();
    let mut req = request();
    sign_gnap(
        &mut req,
        &key,
        NOW,
        &SignOptions {
            nonce: false,
            ..SignOptions::default()
        },
    )
    .unwrap();
    let store = MemoryNonceStore::default();
    let profile = GnapProfile::default();
    profile
        .verify(&req, key.verifying_key(), NOW, &store)
        .unwrap();
    assert_eq!(
        profile.verify(&req, key.verifying_key(), NOW, &store),
        Err(Rejection::ReplayedSignature)
    );
}

#[test]
fn a_bad_signature_does_not_burn_the_nonce() {
    let key = key();
    let good = signed(&key);
    let mut forged = good.clone();
    forged.method = "PUT".into();
    let store = MemoryNonceStore::default();
    let profile = GnapProfile::default();
    assert_eq!(
        profile.verify(&forged, key.verifying_key(), NOW, &store),
        Err(Rejection::BadSignature)
    );
    profile
        .verify(&good, key.verifying_key(), NOW, &store)
        .unwrap();
}

#[test]
fn an_unterminated_string_in_signature_input_is_malformed() {
    let key = key();
    let mut req = signed(&key);
    req.fields.set(
        "Signature-Input",
        r#"sig1=("@method" "@target-uri);created=1"#,
    );
    assert_eq!(
        verify(&req, &key),
        Err(Rejection::Input(InputError::NotADictionary(
            "Signature-Input"
        )))
    );
}

#[test]
fn bad_base64_in_signature_is_malformed() {
    let key = key();
    let mut req = signed(&key);
    req.fields.set("Signature", "sig1=:%%%:");
    assert_eq!(
        verify(&req, &key),
        Err(Rejection::Input(InputError::NotADictionary("Signature")))
    );
}

#[test]
fn duplicate_labels_are_malformed() {
    let key = key();
    let mut req = signed(&key);
    let input =
        String::from_utf8(req.fields.lines("signature-input").next().unwrap().to_vec()).unwrap();
    req.fields.append("Signature-Input", input);
    assert_eq!(
        verify(&req, &key),
        Err(Rejection::Input(InputError::DuplicateLabel(
            "Signature-Input",
            "sig1".into()
        )))
    );
}

#[test]
fn huge_signature_fields_are_refused_without_parsing() {
    let key = key();
    let mut req = signed(&key);
    req.fields.set(
        "Signature-Input",
        format!("sig1=(\"{}\")", "a".repeat(20_000)),
    );
    assert_eq!(
        verify(&req, &key),
        Err(Rejection::Input(InputError::TooLong("signature-input")))
    );
    let mut req = signed(&key);
    let many: Vec<String> = (0..100)
        .map(|i| format!("s{i}=(\"@method\");created=1"))
        .collect();
    req.fields.set("Signature-Input", many.join(", "));
    assert_eq!(
        verify(&req, &key),
        Err(Rejection::Input(InputError::TooManySignatures))
    );
}

#[test]
fn an_unknown_derived_component_is_refused() {
    let key = key();
    let mut req = signed(&key);
    req.fields.set(
        "Signature-Input",
        r#"sig1=("@method" "@target-uri" "@nope");created=1790000000;tag="gnap""#,
    );
    assert_eq!(
        verify(&req, &key),
        Err(Rejection::Input(InputError::Params(
            "sig1".into(),
            ParamsError::Identifier(IdentifierError::UnknownDerived("@nope".into()))
        )))
    );
}

#[test]
fn a_covered_field_absent_from_the_request_is_refused() {
    let key = key();
    let mut req = signed(&key);
    req.fields.remove("Mcp-Method");
    assert_eq!(
        verify(&req, &key),
        Err(Rejection::Component(ValueError::MissingField(
            "mcp-method".into()
        )))
    );
}

#[test]
fn the_verifier_examines_each_gnap_signature_until_one_holds() {
    let key = key();
    let other = SigningKey::generate(Algorithm::Ed25519)
        .unwrap()
        .with_kid("agent-1")
        .unwrap();
    let mut req = request();
    sign_gnap(
        &mut req,
        &other,
        NOW,
        &SignOptions {
            label: "a".into(),
            ..SignOptions::default()
        },
    )
    .unwrap();
    sign_gnap(
        &mut req,
        &key,
        NOW,
        &SignOptions {
            label: "b".into(),
            ..SignOptions::default()
        },
    )
    .unwrap();
    assert_eq!(verify(&req, &key).unwrap().label, "b");
}

#[test]
fn key_rotation_needs_both_signatures_chained() {
    let old = key();
    let new = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let mut req = request();
    sign_gnap_rotation(&mut req, &old, &new, NOW).unwrap();
    let store = MemoryNonceStore::default();
    let rotation = GnapProfile::default()
        .verify_rotation(&req, old.verifying_key(), new.verifying_key(), NOW, &store)
        .unwrap();
    assert_eq!(&rotation.old.thumbprint, old.verifying_key().thumbprint());
    assert_eq!(&rotation.new.thumbprint, new.verifying_key().thumbprint());
    assert!(
        rotation
            .new
            .covered
            .contains(&ComponentId::parse(r#""signature";key="sig1""#).unwrap())
    );
    assert!(
        rotation
            .new
            .covered
            .contains(&ComponentId::parse(r#""signature-input";key="sig1""#).unwrap())
    );
}

#[test]
fn key_rotation_without_the_chain_is_refused() {
    let old = key();
    let new = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let mut req = request();
    sign_gnap(&mut req, &old, NOW, &SignOptions::default()).unwrap();
    // The new key signs with the rotate tag but does not cover the old signature.
    let unchained = SignOptions {
        label: "rotate".into(),
        tag: "gnap-rotate",
        ..SignOptions::default()
    };
    sign_gnap(&mut req, &new, NOW, &unchained).unwrap();
    assert_eq!(
        GnapProfile::default().verify_rotation(
            &req,
            old.verifying_key(),
            new.verifying_key(),
            NOW,
            &MemoryNonceStore::default()
        ),
        Err(Rejection::MissingComponent(
            "\"signature\";key=\"sig1\"".into()
        ))
    );
}

#[test]
fn key_rotation_signed_by_a_third_key_is_refused() {
    let old = key();
    let new = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let third = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let mut req = request();
    sign_gnap_rotation(&mut req, &old, &third, NOW).unwrap();
    assert_eq!(
        GnapProfile::default().verify_rotation(
            &req,
            old.verifying_key(),
            new.verifying_key(),
            NOW,
            &MemoryNonceStore::default()
        ),
        Err(Rejection::BadSignature)
    );
}

#[test]
fn a_rotation_signature_alone_is_not_an_ordinary_gnap_signature() {
    let old = key();
    let new = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let mut req = request();
    sign_gnap(
        &mut req,
        &new,
        NOW,
        &SignOptions {
            tag: "gnap-rotate",
            ..SignOptions::default()
        },
    )
    .unwrap();
    assert_eq!(verify(&req, &old), Err(Rejection::WrongTag("gnap")));
}

/// A request without a nonce, signed by `key` at `NOW`, whose signature
/// [`crate::support::reencode::reencode`] can re-encode: RSA signs request after
/// request (each with its own query) until a signature starts with a zero
/// octet, as one in 256 does.
fn nonceless_reencodable(key: &SigningKey) -> HttpRequest {
    let alg = key.algorithm();
    for attempt in 0..8192 {
        let mut req =
            HttpRequest::new("POST", format!("https://as.example.com/gnap?try={attempt}"))
                .with_field("Content-Type", "application/json")
                .with_body(br#"{"access_token":{"access":["mcp:github"]}}"#.to_vec());
        let options = SignOptions {
            nonce: false,
            ..SignOptions::default()
        };
        sign_gnap(&mut req, key, NOW, &options).unwrap();
        if !crate::support::reencode::wants_leading_zero(alg) || the_signature(&req)[0] == 0 {
            return req;
        }
    }
    panic!("{alg}: no signature with a leading zero octet in 8192 tries");
}

fn the_signature(req: &HttpRequest) -> Vec<u8> {
    gnapd::proto::httpsig::input::signatures(&req.fields).unwrap()[0]
        .1
        .clone()
}

fn with_signature(req: &HttpRequest, signature: &[u8]) -> HttpRequest {
    let mut out = req.clone();
    let label = &gnapd::proto::httpsig::input::signatures(&req.fields).unwrap()[0].0;
    out.fields.set(
        "Signature",
        format!("{label}=:{}:", gnapd::proto::b64::encode_std(signature)),
    );
    out
}

#[test]
fn a_replay_with_the_signature_re_encoded_is_refused_for_every_algorithm() {
    // RFC 9635 §7.3.1 makes the nonce a SHOULD; without one, the replay
    // memory must recognise the request however its signature is encoded.
    let profile = GnapProfile::default();
    for alg in Algorithm::ALL {
        let key = SigningKey::generate(alg).unwrap();
        let public = key.verifying_key();
        let req = nonceless_reencodable(&key);
        let seen = MemoryNonceStore::default();
        profile.verify(&req, public, NOW, &seen).unwrap();
        assert_eq!(
            profile.verify(&req, public, NOW, &seen),
            Err(Rejection::ReplayedSignature),
            "{alg}: the same bytes again"
        );
        let Some(other) = crate::support::reencode::reencode(alg, &the_signature(&req)) else {
            continue;
        };
        let replay = with_signature(&req, &other);
        // Alone, the re-encoding verifies where the algorithm is malleable:
        // the attack is real, and only the replay memory stops it.
        let alone = profile.verify(&replay, public, NOW, &MemoryNonceStore::default());
        match alg {
            Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => {
                assert!(alone.is_ok(), "{alg}: (r, n-s) verifies: {alone:?}");
            }
            // OpenSSL takes a PSS signature shorter than the modulus (it is
            // an integer); for v1.5 it wants the modulus length exactly.
            Algorithm::RsaPssSha512 => {
                assert!(alone.is_ok(), "{alg}: the short form verifies: {alone:?}");
            }
            Algorithm::RsaV15Sha256 | Algorithm::Ed25519 => {
                assert_eq!(alone, Err(Rejection::BadSignature), "{alg}");
            }
            Algorithm::HmacSha256 => unreachable!("no re-encoding"),
        }
        let refused = profile.verify(&replay, public, NOW + 1, &seen);
        assert!(
            matches!(
                refused,
                Err(Rejection::ReplayedSignature | Rejection::BadSignature)
            ),
            "{alg}: a re-encoded replay was accepted: {refused:?}"
        );
        if alone.is_ok() {
            assert_eq!(refused, Err(Rejection::ReplayedSignature), "{alg}");
        }
    }
}

#[test]
fn a_replay_under_another_label_is_refused() {
    let key = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let req = nonceless_reencodable(&key);
    let store = MemoryNonceStore::default();
    let profile = GnapProfile::default();
    profile
        .verify(&req, key.verifying_key(), NOW, &store)
        .unwrap();
    let mut relabelled = req.clone();
    for name in ["Signature-Input", "Signature"] {
        let line = String::from_utf8(req.fields.lines(name).next().unwrap().to_vec()).unwrap();
        relabelled
            .fields
            .set(name, line.replacen("sig1=", "other=", 1));
    }
    assert_eq!(
        profile.verify(&relabelled, key.verifying_key(), NOW, &store),
        Err(Rejection::ReplayedSignature)
    );
}

#[test]
fn a_replay_that_carries_a_second_unused_signature_by_the_same_key_is_refused() {
    // The first signature is remembered when it is accepted; a replay of the
    // whole request must not pass on the second, never-used one.
    let key = key();
    let mut req = request();
    let nonceless = SignOptions {
        label: "a".into(),
        nonce: false,
        ..SignOptions::default()
    };
    sign_gnap(&mut req, &key, NOW, &nonceless).unwrap();
    let nonced = SignOptions {
        label: "b".into(),
        ..SignOptions::default()
    };
    sign_gnap(&mut req, &key, NOW, &nonced).unwrap();
    let store = MemoryNonceStore::default();
    let profile = GnapProfile::default();
    assert_eq!(
        profile
            .verify(&req, key.verifying_key(), NOW, &store)
            .unwrap()
            .label,
        "a"
    );
    assert_eq!(
        profile.verify(&req, key.verifying_key(), NOW, &store),
        Err(Rejection::ReplayedSignature)
    );
}

#[test]
fn more_than_two_signatures_are_refused_before_any_cryptography() {
    // Three labels, none of them a real signature: the refusal names the
    // count, not a bad signature, because nothing was checked.
    let key = key();
    let mut req = signed(&key);
    let line =
        String::from_utf8(req.fields.lines("signature-input").next().unwrap().to_vec()).unwrap();
    let params = line.strip_prefix("sig1=").unwrap();
    req.fields.set(
        "Signature-Input",
        format!("a={params}, b={params}, c={params}"),
    );
    req.fields.set("Signature", "a=:AAAA:, b=:AAAA:, c=:AAAA:");
    assert_eq!(verify(&req, &key), Err(Rejection::TooManySignatures));
    let public = std::sync::Arc::new(
        gnapd::proto::jwk::VerifyingKey::from_presented_jwk(
            key.verifying_key().public_jwk().unwrap(),
        )
        .unwrap(),
    );
    assert!(GnapProfile::default().screen(&req, &public, NOW).is_none());
    assert_eq!(
        GnapProfile::default().diagnose(&req, key.verifying_key(), NOW),
        Err(Rejection::TooManySignatures)
    );
    // Two are allowed: a key rotation needs them.
    let old = self::key();
    let new = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let mut rotation = request();
    sign_gnap_rotation(&mut rotation, &old, &new, NOW).unwrap();
    assert!(
        GnapProfile::default()
            .verify_rotation(
                &rotation,
                old.verifying_key(),
                new.verifying_key(),
                NOW,
                &MemoryNonceStore::default()
            )
            .is_ok()
    );
}

/// What one check decided, comparable across the two paths.
fn decision(
    result: Result<gnapd::proto::httpsig::VerifiedRequest, Rejection>,
) -> Result<String, Rejection> {
    result.map(|v| format!("{} {}", v.thumbprint, v.label))
}

#[test]
fn the_batch_path_decides_every_request_as_a_single_check_does() {
    use gnapd::proto::httpsig::batch;
    use gnapd::proto::jwk::VerifyingKey;
    let profile = GnapProfile::default();
    let ed = key();
    let p256 = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let stranger = SigningKey::generate(Algorithm::Ed25519)
        .unwrap()
        .with_kid("agent-1")
        .unwrap();
    let nonceless = nonceless_reencodable(&p256);
    let reencoded = with_signature(
        &nonceless,
        &crate::support::reencode::reencode(Algorithm::EcdsaP256Sha256, &the_signature(&nonceless))
            .unwrap(),
    );
    let good = signed(&ed);
    let mut stranger_first = request();
    for (signer, label) in [(&stranger, "a"), (&ed, "b")] {
        let options = SignOptions {
            label: label.into(),
            ..SignOptions::default()
        };
        sign_gnap(&mut stranger_first, signer, NOW, &options).unwrap();
    }
    let mut tampered = signed(&ed);
    tampered.method = "PUT".into();
    let mut untagged = good.clone();
    untagged.fields.set(
        "Signature-Input",
        String::from_utf8(
            good.fields
                .lines("signature-input")
                .next()
                .unwrap()
                .to_vec(),
        )
        .unwrap()
        .replace(";tag=\"gnap\"", ""),
    );
    // In order: each path keeps its own replay memory across the sequence.
    let sequence: Vec<(&HttpRequest, &SigningKey)> = vec![
        (&good, &ed),
        (&good, &ed),
        (&nonceless, &p256),
        (&reencoded, &p256),
        (&stranger_first, &ed),
        (&stranger_first, &ed),
        (&tampered, &ed),
        (&untagged, &ed),
        (&good, &p256),
    ];
    let alone = MemoryNonceStore::default();
    let batched = MemoryNonceStore::default();
    for (i, (req, key)) in sequence.into_iter().enumerate() {
        let single = decision(profile.verify(req, key.verifying_key(), NOW, &alone));
        let public = std::sync::Arc::new(
            VerifyingKey::from_presented_jwk(key.verifying_key().public_jwk().unwrap()).unwrap(),
        );
        let checked = profile
            .screen(req, &public, NOW)
            .and_then(|pending| batch::check(vec![pending]).0.pop().flatten());
        let finished = decision(profile.finish(req, &public, checked, NOW, &batched));
        assert_eq!(finished, single, "request {i}");
    }
}
