//! The one place gnapd draws randomness from the operating system: token
//! values, identifiers, keys, nonces and `state`s all come from here, so
//! there is one function to review and nothing else calls the OS for it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The operating system's random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the random source failed")]
pub struct NoRandomness;

/// Where random bytes come from. The services hold one, as they hold a
/// `Clock`, so that a test can give them its own; the server gives them
/// [`OsRandom`].
pub trait Randomness: Send + Sync {
    /// Fills `bytes`.
    fn fill(&self, bytes: &mut [u8]) -> Result<(), NoRandomness>;
}

/// The operating system's random source.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Randomness for OsRandom {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), NoRandomness> {
        getrandom::fill(bytes).map_err(|_| NoRandomness)
    }
}

/// Fills `bytes` from the operating system's random source.
pub fn fill(bytes: &mut [u8]) -> Result<(), NoRandomness> {
    OsRandom.fill(bytes)
}

/// 256 random bits from `source` as base64url text (43 characters):
/// unguessable, and safe in a URL, a header or a cookie as it is.
pub fn text_from(source: &dyn Randomness) -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    source.fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// [`text_from`] the operating system's source.
pub fn text() -> Result<String, NoRandomness> {
    text_from(&OsRandom)
}

/// A UUID v4 from 122 bits of `source`, as text.
pub fn uuid_from(source: &dyn Randomness) -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 16];
    source.fill(&mut bytes)?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

/// A UUID v7 for the second `now` (Unix time; before 1970 counts as 1970),
/// with 74 bits of `source`, as text: identifiers made later sort later.
pub fn uuid_v7_from(source: &dyn Randomness, now: i64) -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 10];
    source.fill(&mut bytes)?;
    let millis = u64::try_from(now).unwrap_or(0).saturating_mul(1000);
    Ok(uuid::Builder::from_unix_timestamp_millis(millis, &bytes)
        .into_uuid()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts up from a seed: the same seed gives the same bytes.
    pub(crate) struct Counting(pub(crate) std::sync::atomic::AtomicU8);

    impl Randomness for Counting {
        fn fill(&self, bytes: &mut [u8]) -> Result<(), NoRandomness> {
            for b in bytes {
                *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        }
    }

    #[test]
    fn text_and_uuids_come_from_the_source_they_are_given() {
        let source = Counting(0.into());
        let text = text_from(&source).unwrap_or_default();
        let bytes: Vec<u8> = (0..32).collect();
        assert_eq!(text, URL_SAFE_NO_PAD.encode(bytes));
        let id = uuid_from(&source).unwrap_or_default();
        // Bytes 32..48 with the version (4) and variant bits set.
        assert_eq!(id, "20212223-2425-4627-a829-2a2b2c2d2e2f");
    }

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

    #[test]
    fn uuid_v7_identifiers_made_later_sort_later_and_keep_their_random_bits() {
        struct Fixed(u8);
        impl Randomness for Fixed {
            fn fill(&self, out: &mut [u8]) -> Result<(), NoRandomness> {
                out.fill(self.0);
                Ok(())
            }
        }
        let early = uuid_v7_from(&Fixed(0xff), 1_790_000_000).unwrap();
        let later = uuid_v7_from(&Fixed(0x00), 1_790_000_001).unwrap();
        assert!(early < later, "{early} !< {later}");
        let parsed = uuid::Uuid::parse_str(&later).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_ne!(
            uuid_v7_from(&Fixed(1), 1_790_000_000).unwrap(),
            uuid_v7_from(&Fixed(2), 1_790_000_000).unwrap(),
            "the same second, other random bits: another identifier"
        );
    }
}
