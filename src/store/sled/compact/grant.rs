//! A grant record without its list of token hashes (written after the
//! tokens, which it usually repeats: `tokens.rs`).

use serde_json::Value;

use super::key::{get_binding, get_hash, put_binding, put_hash};
use super::wire::{Reader, Writer};
use super::{Undecodable, value};
use crate::store::{Continuation, GrantId, GrantRecord, GrantState, RECORD_VERSION, StoreError};

const STATE: u64 = 3;
const UUID_ID: u64 = 1 << 2;
const INSTANCE_ID: u64 = 1 << 3;
/// The instance identifier is the grant's own (gnapd names a new client's
/// instance after its first grant).
const INSTANCE_IS_GRANT: u64 = 1 << 4;
const CONTINUATION: u64 = 1 << 5;
/// The continuation token was issued when the grant was created.
const CONTINUED_AT_CREATION: u64 = 1 << 6;
/// The request's `client.key.jwk` is the binding's JWK, left out.
const CLIENT_JWK_ELIDED: u64 = 1 << 7;
/// Rare flags from here: they take a second byte.
const OAUTH: u64 = 1 << 8;
const GRANT_FLAGS: u64 = (1 << 9) - 1;

/// Writes `grant` but its token list; `expires_at` is the entry's.
pub(super) fn put_grant(
    out: &mut Writer,
    grant: &GrantRecord,
    expires_at: i64,
) -> Result<(), StoreError> {
    let locator = grant.id.locator();
    let request = serde_json::to_value(&grant.request).map_err(encoding)?;
    let elided = request
        .pointer("/client/key/jwk")
        .filter(|jwk| same_json(jwk, &grant.client.jwk));
    let mut flags = match grant.state {
        GrantState::Pending => 0,
        GrantState::Approved => 1,
        GrantState::Denied => 2,
    };
    let own_instance = grant.instance_id.as_deref() == Some(grant.id.0.as_str());
    for (set, flag) in [
        (locator.is_some(), UUID_ID),
        (grant.instance_id.is_some(), INSTANCE_ID),
        (own_instance, INSTANCE_IS_GRANT),
        (grant.continuation.is_some(), CONTINUATION),
        (
            grant
                .continuation
                .as_ref()
                .is_some_and(|c| c.issued_at == grant.created_at),
            CONTINUED_AT_CREATION,
        ),
        (grant.oauth.is_some(), OAUTH),
        (elided.is_some(), CLIENT_JWK_ELIDED),
    ] {
        if set {
            flags |= flag;
        }
    }
    out.varint(flags);
    match &locator {
        Some(uuid) => out.bytes(uuid),
        None => out.text(&grant.id.0),
    }
    put_binding(out, &grant.client);
    if let Some(id) = grant.instance_id.as_deref().filter(|_| !own_instance) {
        out.text(id);
    }
    value::put(out, &request, elided);
    if let Some(continuation) = &grant.continuation {
        put_hash(out, &continuation.token, locator.as_ref());
        out.varint(continuation.wait);
        if continuation.issued_at != grant.created_at {
            out.delta(continuation.issued_at, grant.created_at);
        }
    }
    out.delta(grant.created_at, expires_at);
    out.delta(grant.expires_at, expires_at);
    if let Some(oauth) = &grant.oauth {
        value::put(out, &serde_json::to_value(oauth).map_err(encoding)?, None);
    }
    Ok(())
}

/// Reads what [`put_grant`] wrote; the grant's token list is left empty.
pub(super) fn get_grant(
    input: &mut Reader<'_>,
    expires_at: i64,
) -> Result<GrantRecord, Undecodable> {
    let flags = input.flags(GRANT_FLAGS)?;
    let state = match flags & STATE {
        0 => GrantState::Pending,
        1 => GrantState::Approved,
        2 => GrantState::Denied,
        _ => return Err(Undecodable::Bad("a grant state")),
    };
    let id = if flags & UUID_ID != 0 {
        GrantId(
            uuid::Uuid::from_bytes(input.array()?)
                .hyphenated()
                .to_string(),
        )
    } else {
        GrantId(input.text()?)
    };
    let locator = id.locator();
    if (flags & UUID_ID != 0) != locator.is_some() {
        return Err(Undecodable::Bad("a grant identifier"));
    }
    let client = get_binding(input)?;
    let instance_id = match (flags & INSTANCE_ID != 0, flags & INSTANCE_IS_GRANT != 0) {
        (false, false) => None,
        (true, true) => Some(id.0.clone()),
        (true, false) => Some(input.text()?),
        (false, true) => return Err(Undecodable::Bad("an instance identifier")),
    };
    let jwk = if flags & CLIENT_JWK_ELIDED != 0 {
        &client.jwk
    } else {
        &Value::Null
    };
    let request = serde_json::from_value(value::get(input, jwk)?).map_err(Undecodable::json)?;
    let continuation = if flags & CONTINUATION != 0 {
        let token = get_hash(input, locator.as_ref())?;
        let wait = input.varint()?;
        Some((token, wait))
    } else {
        None
    };
    let issued_at = if flags & CONTINUED_AT_CREATION != 0 {
        None
    } else {
        continuation.map(|_| input.signed()).transpose()?
    };
    let created_at = input.delta(expires_at)?;
    let continuation = continuation.map(|(token, wait)| Continuation {
        token,
        wait,
        issued_at: issued_at.map_or(created_at, |d| created_at.wrapping_add(d)),
    });
    let grant_expires_at = input.delta(expires_at)?;
    let oauth = if flags & OAUTH != 0 {
        Some(serde_json::from_value(value::get(input, &Value::Null)?).map_err(Undecodable::json)?)
    } else {
        None
    };
    Ok(GrantRecord {
        v: RECORD_VERSION,
        id,
        state,
        client,
        instance_id,
        request,
        tokens: Vec::new(),
        continuation,
        created_at,
        expires_at: grant_expires_at,
        oauth,
    })
}

/// True if `a` and `b` serialize to the same bytes: equal, with object
/// members in the same order (`Value`'s own equality ignores the order).
pub(super) fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_json(va, vb))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_json(a, b))
        }
        _ => a == b,
    }
}

pub(super) fn encoding(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("encoding a grant record: {e}"))
}
