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

/// SHA-256 behind a secret first block: digests of input an outsider
/// chooses that the outsider cannot predict, so cannot aim at each other
/// (the replay cache's short keys, `httpsig::nonce`). The secret's block
/// is hashed once, at construction.
#[derive(Clone)]
pub struct SecretSha256 {
    after_secret: Sha256,
}

impl SecretSha256 {
    /// Hashing behind `secret` (one SHA-256 block).
    pub fn new(secret: &[u8; 64]) -> Self {
        let mut after_secret = Sha256::new();
        after_secret.update(secret);
        Self { after_secret }
    }

    /// SHA-256(secret ‖ `head`) and SHA-256(secret ‖ `head` ‖ `tail`…),
    /// counted as two hashes: the second goes on from the first's state,
    /// so `head` is read once.
    pub fn head_and_whole(&self, head: &[u8], tail: &[&[u8]]) -> ([u8; 32], [u8; 32]) {
        count(Operation::Hash, "sha-256");
        count(Operation::Hash, "sha-256");
        let mut whole = self.after_secret.clone();
        whole.update(head);
        let head_digest = whole.clone().finalize().into();
        for part in tail {
            whole.update(part);
        }
        (head_digest, whole.finalize().into())
    }
}

impl std::fmt::Debug for SecretSha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSha256(..)")
    }
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

    #[test]
    fn a_secret_prefix_hashes_as_the_concatenation_and_counts_two_hashes() {
        let secret = [7u8; 64];
        let keyed = SecretSha256::new(&secret);
        let ((head, whole), n) = moved("hash:sha-256", || {
            keyed.head_and_whole(b"scope", &[&[0], b"value"])
        });
        assert_eq!(n, 2);
        assert_eq!(head, sha256_parts(&[&secret, b"scope"]));
        assert_eq!(whole, sha256_parts(&[&secret, b"scope", &[0], b"value"]));
        let other = SecretSha256::new(&[8u8; 64]).head_and_whole(b"scope", &[]);
        assert_ne!(other.0, head, "another secret, other digests");
        assert_eq!(format!("{keyed:?}"), "SecretSha256(..)");
    }
}
