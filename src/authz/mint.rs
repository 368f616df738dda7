//! New secret values: access, continuation and management tokens, instance
//! identifiers. 256 bits from the OS, base64url: unguessable, and stored only
//! as their SHA-256.

use crate::proto::gnap::TokenValue;
pub(crate) use crate::random::NoRandomness;
use crate::store::TokenHash;

/// A fresh token value and the hash it is stored under.
pub(crate) fn token() -> Result<(TokenValue, TokenHash), NoRandomness> {
    let text = crate::random::text()?;
    let hash = TokenHash::of(&text);
    let value = TokenValue::new(text).map_err(|_| NoRandomness)?;
    Ok((value, hash))
}

/// A fresh grant identifier (UUID v4).
pub(crate) fn grant_id() -> String {
    crate::random::uuid()
}
