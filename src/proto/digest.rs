//! RFC 9530 `Content-Digest`: computing and checking the digest of message
//! content.
//!
//! The field is an RFC 8941 Dictionary whose keys are algorithm tokens from the
//! IANA Hash Algorithms for HTTP Digest Fields registry and whose values are
//! Byte Sequences. Only the two "standard" algorithms are acted on; the
//! registry's insecure ones (`md5`, `sha`, `unixsum`, ...) and unknown keys are
//! ignored, as §5 and §6 allow, but a field that offers nothing we can check
//! is rejected rather than silently trusted.

use thiserror::Error;

use super::{b64, structured};

/// Upper bound on a `Content-Digest` field we agree to parse. A legitimate
/// field with both algorithms is under 150 bytes.
pub const MAX_FIELD_LEN: usize = 4096;

/// A digest algorithm gnapd computes and verifies (RFC 9530 §7.2, status
/// "standard").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// `sha-256`
    Sha256,
    /// `sha-512`
    Sha512,
}

impl DigestAlgorithm {
    /// The registry key, as it appears in the field.
    pub const fn key(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha512 => "sha-512",
        }
    }

    /// Looks an algorithm up by its registry key (keys are lowercase tokens).
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "sha-256" => Some(Self::Sha256),
            "sha-512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Hashes `content` with this algorithm.
    pub fn hash(self, content: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => super::hash::sha256(content).to_vec(),
            Self::Sha512 => super::hash::sha512(content).to_vec(),
        }
    }
}

/// Why a `Content-Digest` field was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DigestError {
    /// Content is present but no `Content-Digest` field is.
    #[error("content is present but Content-Digest is missing")]
    Missing,
    /// The field is not a valid RFC 8941 Dictionary of Byte Sequences.
    #[error("Content-Digest is not a dictionary of byte sequences")]
    Malformed,
    /// The field is longer than [`MAX_FIELD_LEN`].
    #[error("Content-Digest is too long")]
    TooLong,
    /// No member uses an algorithm gnapd can check (sha-256 or sha-512).
    #[error("Content-Digest offers no supported algorithm (sha-256, sha-512)")]
    NoSupportedAlgorithm,
    /// A supported member does not match the content.
    #[error("Content-Digest {0} does not match the content")]
    Mismatch(&'static str),
}

/// Serializes a `Content-Digest` field value for `content` with the given
/// algorithms, in that order: `sha-256=:...:, sha-512=:...:`.
pub fn content_digest(content: &[u8], algorithms: &[DigestAlgorithm]) -> String {
    let mut out = String::with_capacity(algorithms.len() * 100);
    for (i, alg) in algorithms.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(alg.key());
        out.push_str("=:");
        out.push_str(&b64::encode_std(&alg.hash(content)));
        out.push(':');
    }
    out
}

/// Checks a received `Content-Digest` field value against `content`.
///
/// Every member with a supported algorithm must match (an attacker must not
/// be able to add a correct `sha-256` beside a wrong `sha-512` and have the
/// wrong one ignored); at least one supported member must be present. Returns
/// the algorithms that were checked.
pub fn verify_content_digest(
    field_value: &[u8],
    content: &[u8],
) -> Result<Vec<DigestAlgorithm>, DigestError> {
    if field_value.len() > MAX_FIELD_LEN {
        return Err(DigestError::TooLong);
    }
    let dict = structured::dictionary(field_value).map_err(|_| DigestError::Malformed)?;
    let mut checked = Vec::with_capacity(2);
    for (key, member) in &dict.members {
        let structured::Member::Item(item) = member else {
            return Err(DigestError::Malformed);
        };
        let Some(expected) = item.bare.as_byte_sequence() else {
            return Err(DigestError::Malformed);
        };
        let Some(alg) = DigestAlgorithm::from_key(key.as_str()) else {
            continue;
        };
        // Digests are public values; a plain comparison leaks nothing secret.
        let matches = alg.hash(content) == expected;
        if !matches {
            return Err(DigestError::Mismatch(alg.key()));
        }
        checked.push(alg);
    }
    if checked.is_empty() {
        return Err(DigestError::NoSupportedAlgorithm);
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_hello_world_matches_rfc9530_appendix() {
        assert_eq!(
            content_digest(br#"{"hello": "world"}"#, &[DigestAlgorithm::Sha256]),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
    }

    #[test]
    fn an_extra_wrong_member_beside_a_right_one_is_a_mismatch() {
        let good = content_digest(b"abc", &[DigestAlgorithm::Sha256]);
        let bad = content_digest(b"xyz", &[DigestAlgorithm::Sha512]);
        let field = format!("{good}, {bad}");
        assert_eq!(
            verify_content_digest(field.as_bytes(), b"abc"),
            Err(DigestError::Mismatch("sha-512"))
        );
    }

    #[test]
    fn insecure_algorithms_alone_are_not_enough() {
        assert_eq!(
            verify_content_digest(b"md5=:kAFQmDzST7DWlj99KOF/cg==:", b"abc"),
            Err(DigestError::NoSupportedAlgorithm)
        );
    }

    #[test]
    fn a_token_value_is_malformed() {
        assert_eq!(
            verify_content_digest(b"sha-256=abc", b"abc"),
            Err(DigestError::Malformed)
        );
    }
}
