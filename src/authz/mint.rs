//! New secret values: access, continuation and management tokens, grant
//! identifiers. 256 bits from the AS's randomness, base64url: unguessable,
//! and stored only as their SHA-256.

use crate::proto::gnap::TokenValue;
pub(crate) use crate::random::NoRandomness;
use crate::random::Randomness;
use crate::store::TokenHash;

/// A fresh token value and the hash it is stored under.
pub(crate) fn token(source: &dyn Randomness) -> Result<(TokenValue, TokenHash), NoRandomness> {
    let text = crate::random::text_from(source)?;
    let hash = TokenHash::of(&text);
    let value = TokenValue::new(text).map_err(|_| NoRandomness)?;
    Ok((value, hash))
}

/// A fresh grant identifier (UUID v4).
pub(crate) fn grant_id(source: &dyn Randomness) -> Result<String, NoRandomness> {
    crate::random::uuid_from(source)
}
