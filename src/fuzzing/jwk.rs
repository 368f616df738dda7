//! The `jwk` hook: JWK parsing, thumbprints, and signing with what parses.

use super::*;

/// JWK parsing, thumbprints and the key primitives.
///
/// Input: JWK text. Properties:
///
/// - a presented key that parses has a public JWK without private members,
///   which re-parses (as a value and as bytes) to the same algorithm, kid and
///   thumbprint, and is itself a fixed point;
/// - the thumbprint is 43 base64url characters (a SHA-256);
/// - parsing with the key's own algorithm as the wanted one agrees;
/// - a private JWK that parses signs, and its verifying key accepts that
///   signature and refuses it over another message (a private JWK whose
///   halves disagree must not load: `fuzz/regressions/jwk/`).
pub fn jwk(data: &[u8]) {
    if data.len() > MAX_JWK_LEN {
        assert!(VerifyingKey::from_presented_jwk_bytes(data).is_err());
        return;
    }
    if let Ok(key) = VerifyingKey::from_presented_jwk_bytes(data) {
        check_public_key(&key);
        // Arbitrary bytes as a signature: must not panic, whatever the key.
        let _ = key.verify(b"gnapd fuzz", data);
        let _ = key.verify(data, &data[..data.len().min(64)]);
    }

    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for alg in Algorithm::ALL {
        if let Ok(key) = VerifyingKey::from_public_jwk(&value, Some(alg)) {
            assert_eq!(key.algorithm(), alg, "wanted algorithm not used");
            let own = VerifyingKey::from_presented_jwk(&value);
            if let Ok(own) = own
                && own.algorithm() == alg
            {
                assert_eq!(own.thumbprint(), key.thumbprint());
            }
        }
    }
    if let Ok(key) = VerifyingKey::from_shared_secret_jwk(&value) {
        assert_eq!(key.algorithm(), Algorithm::HmacSha256);
        assert!(
            key.public_jwk().is_none(),
            "a shared secret has a public JWK"
        );
    }
    if let Ok(signer) = SigningKey::from_private_jwk(&value, None) {
        let message = b"gnapd fuzz message";
        if let Ok(sig) = signer.sign(message) {
            let verifier = signer.verifying_key();
            assert!(
                verifier.verify(message, &sig).is_ok(),
                "a {} private key's own signature does not verify",
                signer.algorithm()
            );
            assert!(
                verifier.verify(b"gnapd fuzz messagE", &sig).is_err(),
                "a signature verifies another message"
            );
            if let Some(public) = verifier.public_jwk() {
                check_public_key(verifier);
                let again = VerifyingKey::from_presented_jwk(public)
                    .expect("a private key's public half is a presentable key");
                assert_eq!(again.thumbprint(), verifier.thumbprint());
            }
        }
    }
}

fn check_public_key(key: &VerifyingKey) {
    let tp = key.thumbprint().as_str();
    assert_eq!(tp.len(), 43, "thumbprint {tp:?} is not a SHA-256");
    assert!(
        tp.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "thumbprint {tp:?} is not base64url"
    );
    let public = key.public_jwk().expect("a presented key has a public JWK");
    let map = public.as_object().expect("the public JWK is an object");
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(!map.contains_key(private), "public JWK carries {private}");
    }
    let again = VerifyingKey::from_presented_jwk(public)
        .unwrap_or_else(|e| panic!("public JWK does not re-parse: {e}"));
    assert_eq!(again.thumbprint(), key.thumbprint(), "thumbprint changed");
    assert_eq!(again.algorithm(), key.algorithm(), "algorithm changed");
    assert_eq!(again.kid(), key.kid(), "kid changed");
    assert_eq!(
        again.public_jwk(),
        Some(public),
        "public JWK not a fixed point"
    );
    let bytes = serde_json::to_vec(public).expect("a Value serializes");
    let from_bytes = VerifyingKey::from_presented_jwk_bytes(&bytes)
        .unwrap_or_else(|e| panic!("public JWK text does not re-parse: {e}"));
    assert_eq!(from_bytes.thumbprint(), key.thumbprint());
    if let Ok(pinned) = VerifyingKey::from_public_jwk(public, Some(key.algorithm())) {
        assert_eq!(pinned.thumbprint(), key.thumbprint());
    } else {
        panic!("the key does not parse with its own algorithm pinned");
    }
}
