//! The one place gnapd draws randomness from the operating system: token
//! values, identifiers, keys, nonces and `state`s all come from here, so
//! there is one function to review and nothing else calls the OS for it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The operating system's random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the random source failed")]
pub struct NoRandomness;

/// Fills `bytes` from the operating system's random source.
pub fn fill(bytes: &mut [u8]) -> Result<(), NoRandomness> {
    getrandom::fill(bytes).map_err(|_| NoRandomness)
}

/// 256 random bits as base64url text (43 characters): unguessable, and
/// safe in a URL, a header or a cookie as it is.
pub fn text() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A fresh UUID v4, as text.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_text_is_43_base64url_characters_and_never_repeats() {
        let a = text().unwrap_or_default();
        let b = text().unwrap_or_default();
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
    }
}
