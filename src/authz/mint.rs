//! New secret values: access, continuation and management tokens, grant
//! identifiers. 256 bits from the AS's randomness, base64url: unguessable,
//! and stored only as hashes ([`TokenHash::of`]).

use crate::proto::gnap::TokenValue;
pub(crate) use crate::random::NoRandomness;
use crate::random::Randomness;
use crate::store::{GrantId, TokenHash};

/// A fresh token value for the grant `grant` and the hash it is stored
/// under. The value names its grant ([`crate::store::located_value`]) so
/// the store finds the grant's one record from the hash alone; a grant
/// whose identifier is not a UUID gets a plain random value.
pub(crate) fn token(
    source: &dyn Randomness,
    grant: &GrantId,
) -> Result<(TokenValue, TokenHash), NoRandomness> {
    let text = match grant.locator() {
        Some(locator) => {
            let mut secret = [0u8; 32];
            source.fill(&mut secret)?;
            crate::store::located_value(&locator, &secret)
        }
        None => crate::random::text_from(source)?,
    };
    let hash = TokenHash::of(&text);
    let value = TokenValue::new(text).map_err(|_| NoRandomness)?;
    Ok((value, hash))
}

/// A fresh grant identifier: a UUID v7 made at `now` (seconds), 74 bits of
/// it random. Time-ordered so that new grants land at the end of the store's
/// key order, where its pages are already in memory: with random
/// identifiers every new grant in a large store touches a cold page (the
/// first-token flow cost 1.6× more after a restart at 240,000 grants).
pub(crate) fn grant_id(source: &dyn Randomness, now: i64) -> Result<String, NoRandomness> {
    crate::random::uuid_v7_from(source, now)
}
