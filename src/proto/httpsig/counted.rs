//! What signing and checking requests adds to the crypto operation counts
//! (`gnapd compare` reports them; a miscount would misreport a protocol).

use super::*;
use crate::proto::crypto_ops::{moved, this_thread};
use crate::proto::jwk::SigningKey;

const NOW: i64 = 1_790_000_000;

fn request() -> HttpRequest {
    HttpRequest::new("POST", "https://as.example/gnap")
        .with_field("Content-Type", "application/json")
        .with_body(br#"{"access_token":{"access":["mcp:github"]}}"#.to_vec())
}

#[test]
fn signing_then_verifying_one_request_counts_one_signature_each_way() {
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let mut request = request();
    let (signed, signs) = moved("sign:ed25519", || {
        sign_gnap(&mut request, &key, NOW, &SignOptions::default())
    });
    signed.unwrap();
    assert_eq!(signs, 1);
    let before = this_thread();
    let replay = MemoryNonceStore::default();
    GnapProfile::default()
        .verify(&request, key.verifying_key(), NOW, &replay)
        .unwrap();
    let after = this_thread();
    let delta = |k: &str| after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
    assert_eq!(delta("verify:ed25519"), 1);
    assert_eq!(delta("sign:ed25519"), 0);
}

#[test]
fn every_algorithm_counts_under_its_rfc_9421_name() {
    for alg in Algorithm::ALL {
        let (key, keygens) = moved(&format!("keygen:{}", alg.key_label()), || {
            SigningKey::generate(alg).unwrap()
        });
        assert_eq!(keygens, 1, "{alg}");
        let sign_key = format!("sign:{}", alg.name());
        let verify_key = format!("verify:{}", alg.name());
        let (signature, signs) = moved(&sign_key, || key.sign(b"m").unwrap());
        assert_eq!(signs, 1, "{alg}");
        let (ok, verifies) = moved(&verify_key, || {
            key.verifying_key().verify(b"m", &signature).is_ok()
        });
        assert!(ok);
        assert_eq!(verifies, 1, "{alg}");
        // A failed check is work done too.
        let (bad, verifies) = moved(&verify_key, || {
            key.verifying_key().verify(b"n", &signature).is_err()
        });
        assert!(bad);
        assert_eq!(verifies, 1, "{alg}");
    }
}

#[test]
fn jws_signatures_count_under_the_jws_alg_and_not_the_rfc_9421_name() {
    let key = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let before = this_thread();
    let signature = key.sign_jws(b"header.payload").unwrap();
    key.verifying_key()
        .verify_jws(b"header.payload", &signature)
        .unwrap();
    let after = this_thread();
    let delta = |k: &str| after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
    assert_eq!(delta("sign:es256"), 1);
    assert_eq!(delta("verify:es256"), 1);
    assert_eq!(delta("sign:ecdsa-p256-sha256"), 0);
    assert_eq!(delta("verify:ecdsa-p256-sha256"), 0);
}
