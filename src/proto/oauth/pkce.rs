//! PKCE (RFC 7636) as OAuth 2.1 requires it: `S256` only.
//!
//! §4.1: a `code_verifier` is 43 to 128 characters of
//! `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`. §4.2: the `S256`
//! challenge is `BASE64URL(SHA256(ASCII(code_verifier)))`, which is always
//! 43 characters. `plain` is refused: OAuth 2.1 §4.1.1 lets an AS that
//! supports S256 refuse it, and a plain challenge protects nothing once
//! the authorization request leaks.

use subtle::ConstantTimeEq as _;

/// The only `code_challenge_method` accepted.
pub const S256: &str = "S256";

/// True for the unreserved characters RFC 7636 §4.1 allows.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// True for a well-formed `code_verifier` (RFC 7636 §4.1).
pub fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(unreserved)
}

/// True for a well-formed `S256` `code_challenge`: what `S256` of any
/// verifier looks like (43 base64url characters, RFC 7636 §4.2).
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `S256` challenge of `verifier`.
pub fn s256(verifier: &str) -> String {
    crate::proto::b64::encode_url(&crate::proto::hash::sha256(verifier.as_bytes()))
}

/// RFC 7636 §4.6: the verifier presented at the token endpoint against the
/// challenge kept from the authorization request, in constant time. A
/// malformed verifier never matches.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    if !is_verifier(verifier) {
        return false;
    }
    s256(verifier).as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_appendix_b_example_verifies() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256(verifier), challenge);
        assert!(is_s256_challenge(challenge));
        assert!(verify(verifier, challenge));
        assert!(!verify(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            challenge
        ));
    }

    #[test]
    fn verifier_syntax_is_43_to_128_unreserved_characters() {
        assert!(is_verifier(&"a".repeat(43)));
        assert!(is_verifier(&"~._-".repeat(32)));
        assert!(!is_verifier(&"a".repeat(42)));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}+", "a".repeat(43))));
        assert!(!is_verifier(&format!("{}é", "a".repeat(43))));
        // A too-short verifier whose hash is the challenge still fails.
        assert!(!verify("short", &s256("short")));
    }

    #[test]
    fn challenge_syntax_is_43_base64url_characters() {
        assert!(!is_s256_challenge(&"a".repeat(42)));
        assert!(!is_s256_challenge(&format!("{}=", "a".repeat(42))));
        assert!(!is_s256_challenge(&"a".repeat(44)));
    }
}
