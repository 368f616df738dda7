//! The RFC 9421 §6.2 HTTP Signature Algorithms registry entries gnapd speaks.

use std::fmt;

/// A signature algorithm from the RFC 9421 registry.
///
/// Under the GNAP profile the algorithm is always derived from the key, never
/// read from the message (RFC 9635 §7.3.1 forbids the `alg` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `ed25519` (RFC 9421 §3.3.6): EdDSA over edwards25519, RFC 8032.
    Ed25519,
    /// `ecdsa-p256-sha256` (§3.3.4): raw `r || s`, 64 bytes.
    EcdsaP256Sha256,
    /// `ecdsa-p384-sha384` (§3.3.5): raw `r || s`, 96 bytes.
    EcdsaP384Sha384,
    /// `rsa-pss-sha512` (§3.3.1): MGF1-SHA-512, 64-byte salt.
    RsaPssSha512,
    /// `rsa-v1_5-sha256` (§3.3.2).
    RsaV15Sha256,
    /// `hmac-sha256` (§3.3.3): a shared secret, never a presented client key.
    HmacSha256,
}

impl Algorithm {
    /// Every algorithm, in registry order.
    pub const ALL: [Algorithm; 6] = [
        Self::RsaPssSha512,
        Self::RsaV15Sha256,
        Self::HmacSha256,
        Self::EcdsaP256Sha256,
        Self::EcdsaP384Sha384,
        Self::Ed25519,
    ];

    /// The registry name, as it would appear in an `alg` parameter.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Self::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            Self::RsaPssSha512 => "rsa-pss-sha512",
            Self::RsaV15Sha256 => "rsa-v1_5-sha256",
            Self::HmacSha256 => "hmac-sha256",
        }
    }

    /// Looks an algorithm up by its registry name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The JWS `alg` value (RFC 7518) for the same primitive, as a JWK's
    /// `alg` member would carry it.
    pub const fn jws_name(self) -> &'static str {
        match self {
            Self::Ed25519 => "EdDSA",
            Self::EcdsaP256Sha256 => "ES256",
            Self::EcdsaP384Sha384 => "ES384",
            Self::RsaPssSha512 => "PS512",
            Self::RsaV15Sha256 => "RS256",
            Self::HmacSha256 => "HS256",
        }
    }

    /// The JWS `alg` lower-cased: the name a JWS made or checked with this
    /// primitive is counted under ([`crate::proto::crypto_ops`]).
    pub const fn jws_label(self) -> &'static str {
        match self {
            Self::Ed25519 => "eddsa",
            Self::EcdsaP256Sha256 => "es256",
            Self::EcdsaP384Sha384 => "es384",
            Self::RsaPssSha512 => "ps512",
            Self::RsaV15Sha256 => "rs256",
            Self::HmacSha256 => "hs256",
        }
    }

    /// The name of the key pair this algorithm signs with, as key
    /// generation is counted (RSA keys here are 2048 bits).
    pub const fn key_label(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256Sha256 => "ecdsa-p256",
            Self::EcdsaP384Sha384 => "ecdsa-p384",
            Self::RsaPssSha512 | Self::RsaV15Sha256 => "rsa-2048",
            Self::HmacSha256 => "hmac-sha256",
        }
    }

    /// The asymmetric algorithm a JWS `alg` (RFC 7518 §3.1) names, for a
    /// signed JWT (ID tokens, assertions, DPoP proofs): `Ed25519`, the fully
    /// specified name of RFC 9864, reads as `EdDSA`; `HS256` and anything
    /// else is `None`, so no JWT verifier here takes a MAC or `none`.
    pub fn from_jws_signature_name(alg: &str) -> Option<Self> {
        match alg {
            "Ed25519" => Some(Self::Ed25519),
            _ => Self::ALL
                .into_iter()
                .find(|a| !a.is_symmetric() && a.jws_name() == alg),
        }
    }

    /// The JWS names of the asymmetric algorithms, as metadata lists them
    /// (`dpop_signing_alg_values_supported`,
    /// `token_endpoint_auth_signing_alg_values_supported`).
    pub const JWS_SIGNATURE_NAMES: &'static [&'static str] =
        &["ES256", "ES384", "EdDSA", "PS512", "RS256"];

    /// True for the one symmetric algorithm.
    pub const fn is_symmetric(self) -> bool {
        matches!(self, Self::HmacSha256)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod jws_names {
    use super::Algorithm;

    #[test]
    fn every_asymmetric_jws_name_reads_back_and_macs_never_do() {
        for alg in Algorithm::ALL.into_iter().filter(|a| !a.is_symmetric()) {
            assert_eq!(
                Algorithm::from_jws_signature_name(alg.jws_name()),
                Some(alg)
            );
            assert!(Algorithm::JWS_SIGNATURE_NAMES.contains(&alg.jws_name()));
        }
        assert_eq!(Algorithm::JWS_SIGNATURE_NAMES.len(), 5);
        assert_eq!(
            Algorithm::from_jws_signature_name("Ed25519"),
            Some(Algorithm::Ed25519)
        );
        for bad in ["HS256", "none", "", "es256", "RS512"] {
            assert_eq!(Algorithm::from_jws_signature_name(bad), None, "{bad}");
        }
    }
}
