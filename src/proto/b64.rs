//! The two base64 alphabets the protocols use, named by where they appear.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Standard alphabet with padding: RFC 8941 byte sequences (`:...:`).
pub fn encode_std(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// URL-safe alphabet without padding: JWK members and thumbprints (RFC 7515 §2).
pub fn encode_url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a JWK member (base64url, no padding).
pub fn decode_url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Decodes the standard alphabet, padded: a PEM body (RFC 7468 §2).
pub fn decode_std(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}
