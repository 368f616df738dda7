//! New secret values: access, continuation and management tokens, instance
//! identifiers. 256 bits from the OS, base64url: unguessable, and stored only
//! as their SHA-256.

use crate::proto::b64;
use crate::proto::gnap::TokenValue;
use crate::store::TokenHash;

/// The operating system's random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the random source failed")]
pub struct NoRandomness;

/// A fresh token value and the hash it is stored under.
pub fn token() -> Result<(TokenValue, TokenHash), NoRandomness> {
    let text = random_text()?;
    let hash = TokenHash::of(&text);
    let value = TokenValue::new(text).map_err(|_| NoRandomness)?;
    Ok((value, hash))
}

/// 256 random bits as base64url text.
pub fn random_text() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| NoRandomness)?;
    Ok(b64::encode_url(&bytes))
}

/// A fresh grant identifier (UUID v4).
pub fn grant_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
