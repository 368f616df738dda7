//! The hashes gnapd computes for itself (token hashes for storage,
//! thumbprints, PKCE S256, `ath`, replay-cache keys, Content-Digest), in
//! one place, so that each one is counted once in
//! [`crate::proto::crypto_ops`] whichever side (server or agent) computes
//! it. HMAC (`proto::hmac`) and the interaction hash methods
//! (`gnap::interact::HashMethod`) count their own.

use sha2::{Digest as _, Sha256, Sha512};

use super::crypto_ops::{Operation, count};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha256_parts(&[data])
}

/// SHA-256 of the concatenation of `parts` (one hash, counted once).
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    count(Operation::Hash, "sha-256");
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// SHA-512 of `data`.
pub fn sha512(data: &[u8]) -> [u8; 64] {
    count(Operation::Hash, "sha-512");
    Sha512::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::crypto_ops::moved;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn parts_hash_as_their_concatenation_and_count_once_each() {
        let (same, n) = moved("hash:sha-256", || {
            sha256_parts(&[b"a", b"bc"]) == sha256(b"abc")
        });
        assert!(same);
        assert_eq!(n, 2);
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let (digest, n) = moved("hash:sha-512", || sha512(b"abc"));
        assert_eq!(n, 1);
        assert_eq!(hex(&digest)[..16], *"ddaf35a193617aba");
    }
}
