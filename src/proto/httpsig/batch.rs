//! Checking several requests' signatures with one Ed25519 batch equation.
//!
//! Why: under load the gateway holds several calls that wait for their
//! signature check at the same moment, and ed25519-dalek checks n signatures
//! together for much less than n single checks (measured here, 1 KiB
//! messages: per signature ~0.7 of a `verify_strict` at 3, ~0.6 at 4, ~0.55
//! at 8). The gateway gathers the calls ready together
//! (`crate::gateway::batching`); this module is the pure part: which
//! signatures go into the equation, and what a failed equation means.
//!
//! What is accepted:
//! - A signature checked alone (fewer than [`MIN_BATCH`] Ed25519 signatures,
//!   another algorithm, a signature that is not 64 bytes) gets
//!   [`VerifyingKey::verify`], i.e. `verify_strict`, as everywhere else.
//! - A batch whose equation fails is checked again one by one with
//!   `verify_strict`, so a batch never refuses a signature a single check
//!   accepts, and a bad signature cannot make its neighbours fail.
//! - A batch whose equation holds proves (up to a 2^-128 chance) that every
//!   member satisfies the cofactored equation of RFC 8032 §5.1.7,
//!   `[8][S]B = [8]R + [8][k]A`. `verify_strict` checks the cofactorless
//!   one, which RFC 8032 allows as a stricter alternative. The two differ
//!   only for a signature whose `R` carries a small-torsion part: no RFC 8032
//!   signer produces one, and only the holder of the private key can make
//!   one. Such a signature may pass in a batch (the torsion parts must also
//!   cancel under the random coefficients, so it passes about one time in
//!   eight) and is refused alone. A forger gains nothing: keys of small
//!   order, under which anyone could satisfy the batch equation, are refused
//!   when a key is read (`crate::proto::jwk`), and a non-canonical `S` is
//!   refused by both checks.

use std::sync::Arc;

use super::input::SignatureInput;
use crate::proto::jwk::VerifyingKey;

/// Fewest Ed25519 signatures checked with one equation. Two cost about as
/// much together as apart; one costs a third more (measured here).
pub const MIN_BATCH: usize = 3;

/// Most signatures in one equation: past this the saving per signature
/// flattens, and a failed equation (followed by single checks) wastes less.
pub const MAX_BATCH: usize = 32;

/// A signature that meets every rule of the GNAP profile needing neither
/// cryptography nor the replay cache, with the base it signs
/// ([`super::GnapProfile::screen`]).
#[derive(Debug)]
pub struct Screened {
    pub(super) input: SignatureInput,
    pub(super) created: i64,
    pub(super) base: Vec<u8>,
    pub(super) signature: Vec<u8>,
}

/// A screened signature and the key that must have made it, waiting for the
/// cryptographic check.
#[derive(Debug)]
pub struct Pending {
    pub(super) screened: Screened,
    pub(super) key: Arc<VerifyingKey>,
}

/// A pending signature that verified under its key: what
/// [`super::GnapProfile::finish`] takes, and only [`check`] makes.
#[derive(Debug)]
pub struct Checked {
    pub(super) screened: Screened,
    pub(super) key: Arc<VerifyingKey>,
}

impl Checked {
    /// The thumbprint of the key it verified under.
    pub fn key_thumbprint(&self) -> &crate::proto::jwk::Thumbprint {
        self.key.thumbprint()
    }
}

impl Pending {
    /// The key and signature as the batch equation takes them, if this one
    /// can join a batch.
    fn ed25519(&self) -> Option<(ed25519_dalek::VerifyingKey, ed25519_dalek::Signature)> {
        let key = self.key.ed25519()?;
        let bytes: &[u8; 64] = self.screened.signature.as_slice().try_into().ok()?;
        Some((*key, ed25519_dalek::Signature::from_bytes(bytes)))
    }

    fn verifies_alone(&self) -> bool {
        self.key
            .verify(&self.screened.base, &self.screened.signature)
            .is_ok()
    }

    fn checked(self) -> Checked {
        Checked {
            screened: self.screened,
            key: self.key,
        }
    }
}

/// How a call of [`check`] went, for the gateway's metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Batch equations evaluated.
    pub equations: usize,
    /// Signatures that went into them.
    pub in_equations: usize,
    /// Equations that failed (their members were then checked alone).
    pub failed: usize,
}

/// Checks every pending signature; the answer at index i is for
/// `pending[i]`: `Some` if it verified.
pub fn check(pending: Vec<Pending>) -> (Vec<Option<Checked>>, Tally) {
    let mut tally = Tally::default();
    let mut passed = vec![false; pending.len()];
    let members: Vec<(usize, ed25519_dalek::VerifyingKey, ed25519_dalek::Signature)> = pending
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.ed25519().map(|(key, signature)| (i, key, signature)))
        .collect();
    if members.len() >= MIN_BATCH {
        // Chunks of nearly equal size, at most MAX_BATCH each.
        let chunks = members.len().div_ceil(MAX_BATCH);
        let size = members.len().div_ceil(chunks);
        for chunk in members.chunks(size) {
            tally.equations += 1;
            tally.in_equations += chunk.len();
            let messages: Vec<&[u8]> = chunk
                .iter()
                .map(|(i, _, _)| pending[*i].screened.base.as_slice())
                .collect();
            let signatures: Vec<_> = chunk.iter().map(|(_, _, s)| *s).collect();
            let keys: Vec<_> = chunk.iter().map(|(_, k, _)| *k).collect();
            // Each signature in the equation counts as one check.
            crate::proto::crypto_ops::count_n(
                crate::proto::crypto_ops::Operation::Verify,
                "ed25519",
                chunk.len() as u64,
            );
            if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
                for (i, _, _) in chunk {
                    passed[*i] = true;
                }
            } else {
                tally.failed += 1;
            }
        }
    }
    let checked = pending
        .into_iter()
        .zip(passed)
        .map(|(p, passed)| (passed || p.verifies_alone()).then(|| p.checked()))
        .collect();
    (checked, tally)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::httpsig::{Algorithm, Metadata, SignatureParams};
    use crate::proto::jwk::SigningKey;
    use serde_json::json;

    fn presented(key: &SigningKey, message: &[u8], signature: Vec<u8>) -> Pending {
        let jwk = key.verifying_key().public_jwk().unwrap();
        let public = VerifyingKey::from_presented_jwk(jwk).unwrap();
        Pending {
            screened: Screened {
                input: SignatureInput {
                    label: "sig".into(),
                    params: SignatureParams::new(Vec::new(), Metadata::default()).unwrap(),
                },
                created: 0,
                base: message.to_vec(),
                signature,
            },
            key: Arc::new(public),
        }
    }

    fn signed(key: &SigningKey, message: &[u8]) -> Pending {
        presented(key, message, key.sign(message).unwrap())
    }

    fn keys(n: usize) -> Vec<SigningKey> {
        (0..n)
            .map(|_| SigningKey::generate(Algorithm::Ed25519).unwrap())
            .collect()
    }

    fn verdicts(results: &[Option<Checked>]) -> Vec<bool> {
        results.iter().map(Option::is_some).collect()
    }

    #[test]
    fn good_signatures_pass_in_one_equation() {
        let keys = keys(8);
        let pending = keys
            .iter()
            .enumerate()
            .map(|(i, k)| signed(k, format!("message {i}").as_bytes()))
            .collect();
        let (results, tally) = check(pending);
        assert_eq!(verdicts(&results), vec![true; 8]);
        assert_eq!(
            tally,
            Tally {
                equations: 1,
                in_equations: 8,
                failed: 0
            }
        );
        // Each answer belongs to its own signature.
        for (i, checked) in results.into_iter().enumerate() {
            let checked = checked.unwrap();
            assert_eq!(checked.screened.base, format!("message {i}").as_bytes());
            assert_eq!(
                checked.key.thumbprint(),
                keys[i].verifying_key().thumbprint()
            );
        }
    }

    #[test]
    fn one_bad_signature_fails_alone_and_its_neighbours_still_pass() {
        let keys = keys(6);
        let mut pending: Vec<Pending> = keys.iter().map(|k| signed(k, b"the same body")).collect();
        // Signed by key 2 over another message, presented for key 4.
        pending[4] = presented(&keys[4], b"the same body", keys[2].sign(b"other").unwrap());
        // Right key, tampered message.
        let mut tampered = signed(&keys[1], b"the same body");
        tampered.screened.base = b"the same body!".to_vec();
        pending[1] = tampered;
        let (results, tally) = check(pending);
        assert_eq!(
            verdicts(&results),
            vec![true, false, true, true, false, true]
        );
        assert_eq!(tally.failed, 1);
    }

    #[test]
    fn each_signature_in_a_batch_counts_as_one_verify_and_a_retry_again() {
        use crate::proto::crypto_ops::moved;
        let keys = keys(5);
        let pending: Vec<Pending> = keys.iter().map(|k| signed(k, b"m")).collect();
        let ((results, _), n) = moved("verify:ed25519", || check(pending));
        assert!(results.iter().all(Option::is_some));
        assert_eq!(n, 5);
        // A failed equation: 5 in it, then each of the 5 checked alone.
        let mut pending: Vec<Pending> = keys.iter().map(|k| signed(k, b"m")).collect();
        pending[0].screened.base = b"n".to_vec();
        let ((results, tally), n) = moved("verify:ed25519", || check(pending));
        assert_eq!(tally.failed, 1);
        assert_eq!(verdicts(&results), vec![false, true, true, true, true]);
        assert_eq!(n, 10);
    }

    #[test]
    fn fewer_than_the_minimum_are_checked_alone() {
        let keys = keys(2);
        let pending = keys.iter().map(|k| signed(k, b"m")).collect();
        let (results, tally) = check(pending);
        assert_eq!(verdicts(&results), vec![true, true]);
        assert_eq!(tally, Tally::default());
    }

    #[test]
    fn other_algorithms_and_odd_lengths_are_checked_alone_beside_a_batch() {
        let mut pending: Vec<Pending> = keys(3).iter().map(|k| signed(k, b"m")).collect();
        let ecdsa = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        pending.push(signed(&ecdsa, b"m"));
        let short = SigningKey::generate(Algorithm::Ed25519).unwrap();
        pending.push(presented(&short, b"m", vec![0; 63]));
        let (results, tally) = check(pending);
        assert_eq!(verdicts(&results), vec![true, true, true, true, false]);
        assert_eq!(tally.in_equations, 3);
    }

    #[test]
    fn a_large_crowd_is_split_into_equations_of_at_most_the_maximum() {
        let keys = keys(MAX_BATCH + 1);
        let pending = keys.iter().map(|k| signed(k, b"m")).collect();
        let (results, tally) = check(pending);
        assert!(results.iter().all(Option::is_some));
        assert_eq!(tally.equations, 2);
        assert_eq!(tally.in_equations, MAX_BATCH + 1);
    }

    #[test]
    fn a_non_canonical_s_is_refused_in_a_batch_as_alone() {
        let keys = keys(4);
        let mut pending: Vec<Pending> = keys.iter().map(|k| signed(k, b"m")).collect();
        // S + l: the same point equation, a non-canonical scalar encoding.
        let mut signature = pending[0].screened.signature.clone();
        add_group_order(&mut signature[32..]);
        pending[0].screened.signature = signature;
        let (results, _) = check(pending);
        assert_eq!(verdicts(&results), vec![false, true, true, true]);
    }

    /// Adds l = 2^252 + 27742317777372353535851937790883648493 to a
    /// little-endian 32-byte scalar (which stays below 2^256 for any
    /// canonical S).
    fn add_group_order(s: &mut [u8]) {
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (byte, l) in s.iter_mut().zip(L) {
            let sum = u16::from(*byte) + u16::from(l) + carry;
            *byte = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
    }

    #[test]
    fn a_key_of_small_order_is_no_key() {
        // The identity point (y = 1): with it, R = [S]B satisfies the batch
        // equation for any message, so it must never reach one.
        let mut x = [0u8; 32];
        x[0] = 1;
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": crate::proto::b64::encode_url(&x)});
        assert!(VerifyingKey::from_presented_jwk(&jwk).is_err());
    }
}
