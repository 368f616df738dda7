//! HMAC-SHA-256 (RFC 2104) under the 32-byte random keys gnapd draws for
//! itself (the pages' form tokens, the gateway's sealed event ids). One
//! implementation over `sha2`, which the tree already has, rather than a
//! crate for a dozen lines.

use sha2::{Digest as _, Sha256};

/// HMAC-SHA-256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    // Counted as one MAC, not as the two hashes inside it.
    super::crypto_ops::count(super::crypto_ops::Operation::Mac, "hmac-sha256");
    // A key shorter than the 64-byte block is padded with zeros (RFC 2104
    // §2); ours always are.
    let mut inner_pad = [0x36u8; 64];
    let mut outer_pad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        inner_pad[i] ^= k;
        outer_pad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(inner_pad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short RFC 4231 key, zero-padded to 32 bytes as HMAC pads it anyway.
    fn padded(short: &[u8]) -> [u8; 32] {
        let mut key = [0u8; 32];
        key[..short.len()].copy_from_slice(short);
        key
    }

    fn hex(mac: [u8; 32]) -> String {
        mac.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn one_mac_counts_as_one_mac_and_no_hash() {
        use crate::proto::crypto_ops::this_thread;
        let before = this_thread();
        hmac_sha256(&[1; 32], b"m");
        let after = this_thread();
        let delta =
            |k: &str| after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
        assert_eq!(delta("mac:hmac-sha256"), 1);
        assert_eq!(delta("hash:sha-256"), 0);
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_test_cases_1_and_2() {
        assert_eq!(
            hex(hmac_sha256(&padded(&[0x0b; 20]), b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(hmac_sha256(
                &padded(b"Jefe"),
                b"what do ya want for nothing?"
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
