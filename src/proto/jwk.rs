//! JSON Web Keys (RFC 7517) as client identities: parsing, the algorithm a key
//! implies, RFC 7638 thumbprints, and the sign/verify primitives behind them.
//!
//! A GNAP client instance *is* its key, so parsing is strict: a presented key
//! carrying private members is refused (it would mean the client leaked its
//! secret), RSA keys must have a 2048–4096-bit modulus and the exponent
//! 65537, and the algorithm comes from the key (its `alg` member, else its
//! type and curve), never from a message.
//!
//! Ed25519, the agents' default, runs on `ed25519-dalek` (`verify_strict`, the
//! hot path); ECDSA, RSA and HMAC run on josekit's JWS primitives, which are
//! the same operations RFC 9421 §3.3 names.
//!
//! Every signature made or checked and every key generated here is counted
//! ([`super::crypto_ops`]): `sign`/`verify` under the RFC 9421 name, or
//! under the JWS `alg` lower-cased through `sign_jws`/`verify_jws`.

use std::fmt;

use josekit::jwk::Jwk;
use josekit::jws::{ES256, ES384, HS256, JwsSigner, JwsVerifier, PS512, RS256};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;
use thiserror::Error;

use super::alg::Algorithm;
use super::b64;
use super::crypto_ops::{Operation, count};

mod members;
mod signing;
mod thumbprint;
mod verifying;

use members::*;
pub use signing::SigningKey;
pub use thumbprint::Thumbprint;
use thumbprint::*;
pub use verifying::{BadSignature, VerifyingKey};

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Largest RSA modulus accepted, in bits. Keys are free to mint and every
/// request makes the server check a signature under the key it presents;
/// the cost of an RSA check grows with the square of the modulus size
/// (measured here: 4096 bits ~0.09 ms, 16384 bits ~1.0 ms, an Ed25519 check
/// ~0.045 ms; see spec-notes/rfc9421.md), so a larger key would buy an
/// attacker CPU.
pub const MAX_RSA_BITS: usize = 4096;

/// The one RSA public exponent accepted, as the minimal big-endian bytes
/// of 65537. Every common generator uses it (OpenSSL, Web Crypto, Go, Java,
/// Python `cryptography`); small exponents such as 3 are what classic
/// PKCS #1 v1.5 forgeries against lenient parsers need, and large ones cost
/// the verifier (one multiplication per exponent bit).
const RSA_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// Largest JWK document accepted, in bytes (an RSA-8192 public key is ~1.5 KiB).
pub const MAX_JWK_LEN: usize = 8 * 1024;

/// Members that only a private (or symmetric) key has (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a JWK was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// Not a JSON object, or too large.
    #[error("the key is not a JSON object")]
    NotAnObject,
    /// A member the key type requires is absent or not a string.
    #[error("the key lacks the member `{0}`")]
    MissingMember(&'static str),
    /// A presented public key carries a private member.
    #[error("a presented key must not carry the private member `{0}`")]
    PrivateMember(&'static str),
    /// `kty` (with `crv`) is not one gnapd supports.
    #[error("unsupported key type or curve `{0}`")]
    UnsupportedKeyType(String),
    /// The JWK's `alg` member names an algorithm RFC 9421 has no entry for.
    #[error("unsupported key algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// The algorithm asked for does not fit the key's type or `alg` member.
    #[error("algorithm {wanted} does not fit this key")]
    AlgorithmMismatch {
        /// The algorithm asked for.
        wanted: Algorithm,
    },
    /// The RSA modulus is below [`MIN_RSA_BITS`].
    #[error("RSA key of {0} bits is below the 2048-bit minimum")]
    RsaTooSmall(usize),
    /// The RSA modulus is above [`MAX_RSA_BITS`].
    #[error("RSA key of {0} bits is above the 4096-bit maximum")]
    RsaTooLarge(usize),
    /// The RSA public exponent is not 65537.
    #[error("RSA public exponent must be 65537 (AQAB)")]
    RsaExponent,
    /// A big-endian integer member has leading zero octets (RFC 7518 §2,
    /// Base64urlUInt: "MUST utilize the minimum number of octets"). The same
    /// key would otherwise have several thumbprints, i.e. identities.
    #[error("the member `{0}` is not minimally encoded (leading zero octets)")]
    NotMinimal(&'static str),
    /// The key material does not decode to a valid key.
    #[error("the key material is invalid")]
    InvalidKey,
    /// A symmetric key offered where only an asymmetric one is acceptable.
    #[error("a symmetric key cannot identify a client")]
    Symmetric,
    /// Key generation or signing failed inside the crypto library.
    #[error("the crypto library failed")]
    Crypto,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7638 §3.1: the example RSA key's thumbprint.
    #[test]
    fn rfc7638_example_thumbprint() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let key = VerifyingKey::from_presented_jwk(&jwk).unwrap();
        assert_eq!(
            key.thumbprint().as_str(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(key.algorithm(), Algorithm::RsaV15Sha256);
    }

    #[test]
    fn a_presented_key_with_a_private_member_is_refused() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        assert_eq!(
            VerifyingKey::from_presented_jwk(key.private_jwk()).unwrap_err(),
            KeyError::PrivateMember("d")
        );
    }

    #[test]
    fn an_oct_key_cannot_be_a_client_identity() {
        let jwk = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert_eq!(
            VerifyingKey::from_presented_jwk(&jwk).unwrap_err(),
            KeyError::PrivateMember("k")
        );
    }

    #[test]
    fn the_jwk_alg_member_must_agree_with_the_key_type() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let mut public = key.verifying_key().public_jwk().unwrap().clone();
        public["alg"] = "ES256".into();
        assert_eq!(
            VerifyingKey::from_presented_jwk(&public).unwrap_err(),
            KeyError::AlgorithmMismatch {
                wanted: Algorithm::EcdsaP256Sha256
            }
        );
    }

    #[test]
    fn an_unknown_jwk_alg_is_refused() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let mut public = key.verifying_key().public_jwk().unwrap().clone();
        public["alg"] = "none".into();
        assert_eq!(
            VerifyingKey::from_presented_jwk(&public).unwrap_err(),
            KeyError::UnsupportedAlgorithm("none".into())
        );
    }

    #[test]
    fn an_rsa_key_below_2048_bits_is_refused() {
        // A 1024-bit modulus: 128 bytes with the top bit set.
        let mut n = vec![0xffu8; 128];
        n[127] = 0x01;
        let jwk = json!({"kty": "RSA", "n": b64::encode_url(&n), "e": "AQAB"});
        assert_eq!(
            VerifyingKey::from_presented_jwk(&jwk).unwrap_err(),
            KeyError::RsaTooSmall(1024)
        );
    }

    /// A public RSA JWK with a modulus of `bits` bits (odd, top bit set;
    /// the checks here run before the modulus is used) and exponent `e`.
    fn rsa_public(bits: usize, e: &[u8]) -> Value {
        let mut n = vec![0xffu8; bits.div_ceil(8)];
        n[0] = 0xff >> (n.len() * 8 - bits);
        json!({"kty": "RSA", "n": b64::encode_url(&n), "e": b64::encode_url(e)})
    }

    #[test]
    fn rsa_moduli_from_2048_to_4096_bits_are_read_and_larger_ones_refused() {
        for bits in [2048, 3072, 4096] {
            let key = VerifyingKey::from_presented_jwk(&rsa_public(bits, &RSA_EXPONENT));
            assert!(key.is_ok(), "{bits}: {key:?}");
        }
        for bits in [4097, 8192, 16384] {
            assert_eq!(
                VerifyingKey::from_presented_jwk(&rsa_public(bits, &RSA_EXPONENT)).unwrap_err(),
                KeyError::RsaTooLarge(bits)
            );
        }
        assert_eq!(
            VerifyingKey::from_presented_jwk(&rsa_public(2047, &RSA_EXPONENT)).unwrap_err(),
            KeyError::RsaTooSmall(2047)
        );
    }

    #[test]
    fn an_rsa_exponent_other_than_65537_is_refused() {
        for e in [
            &[3u8][..],
            &[1],
            &[0x01, 0x00, 0x03],
            &[0xff; 4],
            &[0x01; 40],
        ] {
            assert_eq!(
                VerifyingKey::from_presented_jwk(&rsa_public(2048, e)).unwrap_err(),
                KeyError::RsaExponent,
                "{e:?}"
            );
        }
    }

    #[test]
    fn rsa_members_with_leading_zero_octets_are_refused() {
        // The same key with a zero octet in front would hash to another
        // thumbprint: a second identity for one key.
        let good = rsa_public(2048, &RSA_EXPONENT);
        let mut n = b64::decode_url(good["n"].as_str().unwrap()).unwrap();
        n.insert(0, 0);
        let mut padded_n = good.clone();
        padded_n["n"] = b64::encode_url(&n).into();
        assert_eq!(
            VerifyingKey::from_presented_jwk(&padded_n).unwrap_err(),
            KeyError::NotMinimal("n")
        );
        let mut padded_e = good;
        padded_e["e"] = b64::encode_url(&[0, 1, 0, 1]).into();
        assert_eq!(
            VerifyingKey::from_presented_jwk(&padded_e).unwrap_err(),
            KeyError::NotMinimal("e")
        );
    }

    #[test]
    fn every_generated_key_signs_and_verifies() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg)
                .map_err(|e| format!("{alg}: {e}"))
                .unwrap();
            let sig = key.sign(b"message").unwrap();
            key.verifying_key().verify(b"message", &sig).unwrap();
            assert_eq!(
                key.verifying_key().verify(b"messagE", &sig),
                Err(BadSignature),
                "{alg}"
            );
        }
    }

    #[test]
    fn an_ec_key_whose_d_does_not_match_x_and_y_is_refused() {
        let a = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let b = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let mut jwk = a.private_jwk().clone();
        jwk["d"] = b.private_jwk()["d"].clone();
        assert_eq!(
            SigningKey::from_private_jwk(&jwk, None).unwrap_err(),
            KeyError::InvalidKey
        );
    }

    #[test]
    fn an_ed25519_key_whose_x_does_not_match_d_is_refused() {
        let a = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let b = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let mut jwk = a.private_jwk().clone();
        jwk["x"] = b.private_jwk()["x"].clone();
        assert_eq!(
            SigningKey::from_private_jwk(&jwk, None).unwrap_err(),
            KeyError::InvalidKey
        );
    }
}
