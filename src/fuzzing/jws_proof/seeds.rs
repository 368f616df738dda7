//! The seed corpus of `fuzz/corpus/jws_proof/`: requests proved by the
//! fixed keys at [`NOW`], valid ones and ones broken in one way each, with
//! the verdict each must get. Ed25519 signatures are deterministic, so the
//! committed files are exactly what this module makes; with
//! `GNAPD_WRITE_SEEDS` set the test writes them instead of comparing.

use serde_json::{Map, Value};

use super::*;
use crate::proto::jws_proof::detached::content_payload;
use crate::proto::jws_proof::sign::{proof_header, sign_compact};

const BODY: &[u8] =
    br#"{"access_token":{"access":["mcp:github"]},"client":"7C7C4AZ9KHRS6X63AJAO"}"#;

/// How a seed's request is checked: by which verifier, and the outcome
/// with [`test_key`] (the old key of a rotation, the other fixed key its
/// new one).
struct Seed {
    name: &'static str,
    data: Vec<u8>,
    method: JwsMethod,
    rotation: bool,
    verdict: Result<(), JwsRejection>,
}

/// A hook input: flags, the flip byte, the field, LF, the body.
fn input(flags: u8, field: &str, body: &[u8]) -> Vec<u8> {
    let mut data = vec![flags, 7];
    data.extend_from_slice(field.as_bytes());
    data.push(b'\n');
    data.extend_from_slice(body);
    data
}

fn target(token: bool) -> ProofTarget<'static> {
    ProofTarget {
        method: METHOD,
        uri: URI,
        created: NOW,
        access_token: token.then_some(ACCESS_TOKEN),
    }
}

/// A `jwsd` proof by the fixed key over `body` whose header `edit` changed.
fn edited_jwsd(body: &[u8], edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut header = proof_header(test_key(), Typ::Jwsd, &target(false));
    edit(&mut header);
    sign_compact(test_key(), &header, &content_payload(body)).expect("Ed25519 signs")
}

fn seeds() -> Vec<Seed> {
    let [key, other] = keys();
    let jwsd = |key, token, body: &[u8], attach| {
        sign_detached(key, Typ::Jwsd, &target(token), body, attach).expect("jwsd signs")
    };
    let jws = |token, body: &[u8]| sign_attached(key, &target(token), body).expect("jws signs");
    let rotation = |method, old, new| {
        sign_rotation(method, old, new, &target(false), BODY).expect("rotation signs")
    };
    let detached = |name, data, verdict| Seed {
        name,
        data,
        method: JwsMethod::Detached,
        rotation: false,
        verdict,
    };
    let attached = |name, data, verdict| Seed {
        name,
        data,
        method: JwsMethod::Attached,
        rotation: false,
        verdict,
    };
    let tampered = b"{\"access_token\":{\"access\":[\"mcp:gitlab\"]}}";
    let on_body = JOSE | NO_FIELD;
    vec![
        detached(
            "jwsd",
            input(0, &jwsd(key, false, BODY, true), BODY),
            Ok(()),
        ),
        detached(
            "jwsd-empty-payload",
            input(ATTACH_DIGEST, &jwsd(key, false, BODY, false), BODY),
            Ok(()),
        ),
        detached(
            "jwsd-token",
            input(TOKEN, &jwsd(key, true, BODY, true), BODY),
            Ok(()),
        ),
        detached(
            "jwsd-no-content",
            input(0, &jwsd(key, false, b"", true), b""),
            Ok(()),
        ),
        attached(
            "jws",
            input(on_body, "", jws(false, BODY).as_bytes()),
            Ok(()),
        ),
        attached(
            "jws-token",
            input(on_body | TOKEN, "", jws(true, BODY).as_bytes()),
            Ok(()),
        ),
        attached(
            "jws-no-content",
            input(
                JOSE,
                &sign_detached(key, Typ::Jws, &target(false), b"", true).expect("jws signs"),
                b"",
            ),
            Ok(()),
        ),
        Seed {
            name: "rotation-jwsd",
            data: input(0, &rotation(JwsMethod::Detached, key, other), BODY),
            method: JwsMethod::Detached,
            rotation: true,
            verdict: Ok(()),
        },
        Seed {
            name: "rotation-jws",
            data: input(
                on_body,
                "",
                rotation(JwsMethod::Attached, key, other).as_bytes(),
            ),
            method: JwsMethod::Attached,
            rotation: true,
            verdict: Ok(()),
        },
        Seed {
            name: "rotation-jws-keys-swapped",
            data: input(
                on_body,
                "",
                rotation(JwsMethod::Attached, other, key).as_bytes(),
            ),
            method: JwsMethod::Attached,
            rotation: true,
            verdict: Err(JwsRejection::BadSignature),
        },
        detached(
            "jwsd-tampered-body",
            input(0, &jwsd(key, false, BODY, true), tampered),
            Err(JwsRejection::Digest),
        ),
        detached(
            "jwsd-empty-payload-tampered-body",
            input(0, &jwsd(key, false, BODY, false), tampered),
            Err(JwsRejection::BadSignature),
        ),
        detached(
            "jwsd-by-the-other-key",
            input(0, &jwsd(other, false, BODY, true), BODY),
            Err(JwsRejection::BadSignature),
        ),
        detached(
            "jwsd-alg-none",
            input(
                0,
                &edited_jwsd(BODY, |h| _ = h.insert("alg".into(), "none".into())),
                BODY,
            ),
            Err(JwsRejection::AlgNone),
        ),
        detached(
            "jwsd-typed-jws",
            input(
                0,
                &sign_detached(key, Typ::Jws, &target(false), BODY, true).expect("jws signs"),
                BODY,
            ),
            Err(JwsRejection::Typ(Typ::Jwsd.name())),
        ),
        detached(
            "jwsd-stale",
            input(
                0,
                &edited_jwsd(BODY, |h| _ = h.insert("created".into(), (NOW - 301).into())),
                BODY,
            ),
            Err(JwsRejection::TooOld(301)),
        ),
        detached(
            "jwsd-future",
            input(
                0,
                &edited_jwsd(BODY, |h| _ = h.insert("created".into(), (NOW + 61).into())),
                BODY,
            ),
            Err(JwsRejection::CreatedInFuture(61)),
        ),
        detached(
            "jwsd-other-uri",
            input(
                0,
                &edited_jwsd(BODY, |h| {
                    _ = h.insert("uri".into(), "https://as.example/gnap".into())
                }),
                BODY,
            ),
            Err(JwsRejection::Uri),
        ),
        detached(
            "jwsd-ath-without-token",
            input(0, &jwsd(key, true, BODY, true), BODY),
            Err(JwsRejection::UnexpectedAth),
        ),
        detached(
            "jwsd-token-without-ath",
            input(TOKEN, &jwsd(key, false, BODY, true), BODY),
            Err(JwsRejection::Missing("ath")),
        ),
        detached(
            "jwsd-unknown-critical",
            input(
                0,
                &edited_jwsd(BODY, |h| {
                    h.insert("exp".into(), (NOW + 60).into());
                    h.insert("crit".into(), serde_json::json!(["exp"]));
                }),
                BODY,
            ),
            Err(JwsRejection::UnknownCritical),
        ),
        detached(
            "jwsd-extra-segment",
            input(0, &format!("{}.AA", jwsd(key, false, BODY, true)), BODY),
            Err(JwsRejection::ExtraSegments),
        ),
        detached(
            "jwsd-not-a-jws",
            input(0, "not.a.jws", BODY),
            Err(JwsRejection::Malformed),
        ),
        attached(
            "jws-with-detached-jws-too",
            input(
                JOSE,
                &jwsd(key, false, BODY, true),
                jws(false, BODY).as_bytes(),
            ),
            Err(JwsRejection::BothForms),
        ),
        attached(
            "jws-not-jose",
            input(NO_FIELD, "", jws(false, BODY).as_bytes()),
            Err(JwsRejection::NotJose),
        ),
    ]
}

/// Every seed gets its verdict, keeps every property of the hook, and is
/// the committed file (written there when `GNAPD_WRITE_SEEDS` is set).
#[test]
fn jws_proof_seeds_get_their_verdicts_and_are_committed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/jws_proof");
    let write = std::env::var_os("GNAPD_WRITE_SEEDS").is_some();
    let [key, other] = keys();
    let profile = GnapProfile::default();
    for seed in seeds() {
        let request = Input::read(&seed.data).request();
        let verdict = if seed.rotation {
            verify_rotation(
                seed.method,
                &request,
                key.verifying_key(),
                other.verifying_key(),
                &profile,
                NOW,
                &fresh_store(),
            )
            .map(|_| ())
        } else {
            verify(
                seed.method,
                &request,
                key.verifying_key(),
                &profile,
                NOW,
                &fresh_store(),
            )
            .map(|_| ())
        };
        assert_eq!(verdict, seed.verdict, "{}", seed.name);
        jws_proof(&seed.data);
        let path = dir.join(format!("seed-{}", seed.name));
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &seed.data).unwrap();
        } else {
            let committed = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (GNAPD_WRITE_SEEDS=1 writes it)", seed.name));
            assert_eq!(
                committed, seed.data,
                "{} differs from the committed seed",
                seed.name
            );
        }
    }
}
