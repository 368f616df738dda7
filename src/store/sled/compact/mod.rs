//! A grant record in binary: about a sixth of its JSON (issue 19 wants a
//! first grant at ≤ 600 bytes on disk, sled's own share is ~250).
//!
//! Layout (format 1): the tag [`TAG`], the format version, a fixed header
//! (flags, the entry's expiry, the tokens' earliest expiry: all a sweep
//! reads), then the grant (`grant.rs`), its tokens, its token list and its
//! instance (`tokens.rs`). Times are varints, relative to a time they
//! usually equal or sit near; fields that repeat the grant are flags; hashes,
//! thumbprints and Ed25519 keys are raw bytes; the request and other JSON
//! are binary JSON values (`value.rs`). Each compact form has a general
//! one beside it, so every entry comes back exactly, down to the JSON its
//! parts serialize to.

use super::entry::{EntryExpiry, GrantEntry};
use crate::store::{
    GrantRecord, InstanceRecord, RECORD_VERSION, StoreError, TokenHash, TokenRecord,
};
use wire::{Reader, Writer};

mod either;
mod grant;
mod key;
mod tokens;
mod value;
mod wire;
mod words;

#[cfg(test)]
mod tests;

/// The first byte of a compact record. Never the first byte of a JSON
/// record (`{`), nor of any UTF-8 text: JSON and compact records share a
/// tree and are told apart by it.
pub(crate) const TAG: u8 = 0xF5;

/// The format version written after the tag. Format 1 holds records of
/// [`RECORD_VERSION`] 1; a new record version needs a new format.
const FORMAT: u8 = 1;

/// The header's one flag: the tokens' earliest expiry follows.
const TOKENS_EXPIRE: u64 = 1;

/// Why bytes are not a compact grant record.
#[derive(Debug)]
pub(super) enum Undecodable {
    Short(&'static str),
    Bad(&'static str),
    Json(String),
    Version(u32),
}

impl Undecodable {
    fn json(e: serde_json::Error) -> Self {
        Self::Json(e.to_string())
    }
}

impl From<Undecodable> for StoreError {
    fn from(why: Undecodable) -> Self {
        let why = match why {
            Undecodable::Version(v) => return StoreError::Version(v),
            Undecodable::Short(what) => format!("cut short reading {what}"),
            Undecodable::Bad(what) => format!("bad {what}"),
            Undecodable::Json(e) => e,
        };
        StoreError::Backend(format!("undecodable grant record: {why}"))
    }
}

/// A new entry's bytes, from borrowed parts (its expiries follow from them).
pub(crate) fn encode(
    grant: &GrantRecord,
    tokens: &[(TokenHash, TokenRecord)],
    instance: Option<&InstanceRecord>,
) -> Result<Vec<u8>, StoreError> {
    let header = EntryExpiry {
        v: RECORD_VERSION,
        expires_at: grant.expires_at,
        tokens_expire: super::entry::tokens_expire(tokens),
    };
    encode_parts(&header, grant, tokens, instance)
}

/// An entry's bytes, its expiries as they are.
pub(crate) fn encode_entry(entry: &GrantEntry) -> Result<Vec<u8>, StoreError> {
    let header = EntryExpiry {
        v: entry.v,
        expires_at: entry.expires_at,
        tokens_expire: entry.tokens_expire,
    };
    encode_parts(
        &header,
        &entry.grant,
        &entry.tokens,
        entry.instance.as_ref(),
    )
}

fn encode_parts(
    header: &EntryExpiry,
    grant: &GrantRecord,
    tokens: &[(TokenHash, TokenRecord)],
    instance: Option<&InstanceRecord>,
) -> Result<Vec<u8>, StoreError> {
    // The format has no room for a record of another version: refused like
    // `codec::encode` refuses it, so this build never writes what it could
    // not read back.
    let other = [header.v, grant.v]
        .into_iter()
        .chain(tokens.iter().map(|(_, t)| t.v))
        .chain(instance.map(|i| i.v))
        .find(|&v| v != RECORD_VERSION);
    if let Some(v) = other {
        return Err(StoreError::Version(v));
    }
    let mut out = Writer(Vec::with_capacity(256));
    out.byte(TAG);
    out.byte(FORMAT);
    out.varint(if header.tokens_expire.is_some() {
        TOKENS_EXPIRE
    } else {
        0
    });
    out.signed(header.expires_at);
    if let Some(at) = header.tokens_expire {
        out.delta(at, header.expires_at);
    }
    grant::put_grant(&mut out, grant, header.expires_at)?;
    let locator = grant.id.locator();
    out.len(tokens.len());
    for token in tokens {
        tokens::put_token(&mut out, grant, locator.as_ref(), token)?;
    }
    tokens::put_grant_tokens(&mut out, &grant.tokens, tokens, locator.as_ref());
    tokens::put_instance(&mut out, grant, instance);
    Ok(out.0)
}

/// The entry stored as `bytes` (a compact record).
pub(crate) fn decode(bytes: &[u8]) -> Result<GrantEntry, StoreError> {
    let mut input = Reader::new(bytes);
    let header = read_header(&mut input)?;
    let mut grant = grant::get_grant(&mut input, header.expires_at)?;
    let locator = grant.id.locator();
    let mut tokens = Vec::new();
    for _ in 0..input.len()? {
        tokens.push(tokens::get_token(&mut input, &grant, locator.as_ref())?);
    }
    grant.tokens = tokens::get_grant_tokens(&mut input, &tokens, locator.as_ref())?;
    let instance = tokens::get_instance(&mut input, &grant)?;
    input.end()?;
    Ok(GrantEntry {
        v: header.v,
        expires_at: header.expires_at,
        tokens_expire: header.tokens_expire,
        grant,
        tokens,
        instance,
    })
}

/// The expiries of the entry stored as `bytes`, from its header alone.
pub(crate) fn expiry(bytes: &[u8]) -> Result<EntryExpiry, StoreError> {
    Ok(read_header(&mut Reader::new(bytes))?)
}

fn read_header(input: &mut Reader<'_>) -> Result<EntryExpiry, Undecodable> {
    if input.byte()? != TAG {
        return Err(Undecodable::Bad("tag"));
    }
    match input.byte()? {
        FORMAT => {}
        other => return Err(Undecodable::Version(u32::from(other))),
    }
    let flags = input.flags(TOKENS_EXPIRE)?;
    let expires_at = input.signed()?;
    let tokens_expire = if flags & TOKENS_EXPIRE != 0 {
        Some(input.delta(expires_at)?)
    } else {
        None
    };
    Ok(EntryExpiry {
        v: RECORD_VERSION,
        expires_at,
        tokens_expire,
    })
}
