//! The tokens of a grant record, the grant's list of token hashes and the
//! instance minted with the grant: each field that repeats the grant (its
//! identifier, key, creation time, requested access) is a flag.

use serde_json::Value;

use super::grant::encoding;
use super::key::{get_binding, get_hash, put_binding, put_hash};
use super::wire::{Reader, Writer};
use super::{Undecodable, value};
use crate::store::{
    GrantId, GrantRecord, InstanceRecord, KeyBinding, LOCATOR_LEN, RECORD_VERSION, StoreError,
    TokenHash, TokenRecord,
};

/// The token carries exactly what one of the request's tokens asked for:
/// its index follows.
const ASKED_ACCESS: u64 = 1;
const LABEL: u64 = 1 << 1;
const BEARER: u64 = 1 << 2;
const OTHER_KEY: u64 = 1 << 3;
const ISSUED_AT_CREATION: u64 = 1 << 4;
const CREDENTIAL_SETS: u64 = 1 << 5;
const OAUTH: u64 = 1 << 6;
/// Rare: takes a second byte.
const OTHER_GRANT: u64 = 1 << 7;
const TOKEN_FLAGS: u64 = (1 << 8) - 1;

pub(super) fn put_token(
    out: &mut Writer,
    grant: &GrantRecord,
    locator: Option<&[u8; LOCATOR_LEN]>,
    (hash, token): &(TokenHash, TokenRecord),
) -> Result<(), StoreError> {
    let asked = grant.request.access_token.as_ref().and_then(|asked| {
        asked
            .as_slice()
            .iter()
            .position(|t| t.access == token.access)
    });
    let mut flags = 0;
    for (set, flag) in [
        (token.grant != grant.id, OTHER_GRANT),
        (token.label.is_some(), LABEL),
        (token.bearer, BEARER),
        (!same_binding(&token.key, &grant.client), OTHER_KEY),
        (token.issued_at == grant.created_at, ISSUED_AT_CREATION),
        (!token.credential_sets.is_empty(), CREDENTIAL_SETS),
        (token.oauth.is_some(), OAUTH),
        (asked.is_some(), ASKED_ACCESS),
    ] {
        if set {
            flags |= flag;
        }
    }
    put_hash(out, hash, locator);
    out.varint(flags);
    if flags & OTHER_GRANT != 0 {
        out.text(&token.grant.0);
    }
    if let Some(label) = &token.label {
        out.text(label);
    }
    match asked {
        Some(index) => out.len(index),
        None => value::put(
            out,
            &serde_json::to_value(&token.access).map_err(encoding)?,
            None,
        ),
    }
    if flags & OTHER_KEY != 0 {
        put_binding(out, &token.key);
    }
    put_hash(out, &token.manage, locator);
    if token.issued_at != grant.created_at {
        out.delta(token.issued_at, grant.created_at);
    }
    out.delta(token.expires_at, token.issued_at);
    if !token.credential_sets.is_empty() {
        out.len(token.credential_sets.len());
        for (upstream, set) in &token.credential_sets {
            out.text(upstream);
            put_set_id(out, upstream, set);
        }
    }
    if let Some(oauth) = &token.oauth {
        value::put(out, &serde_json::to_value(oauth).map_err(encoding)?, None);
    }
    Ok(())
}

/// How the enterprise-held credential set of an upstream is named
/// (`upstream::server::enterprise_set_id`): such an id is written as `0`.
const ENTERPRISE_SET: &str = "enterprise:";

/// A credential set id: `0` for the upstream's enterprise-held set, else
/// its length plus one and its bytes.
fn put_set_id(out: &mut Writer, upstream: &str, set: &str) {
    if set.strip_prefix(ENTERPRISE_SET) == Some(upstream) {
        out.varint(0);
    } else {
        out.len(set.len() + 1);
        out.bytes(set.as_bytes());
    }
}

fn get_set_id(input: &mut Reader<'_>, upstream: &str) -> Result<String, Undecodable> {
    match input.varint()? {
        0 => Ok(format!("{ENTERPRISE_SET}{upstream}")),
        n => {
            let len = usize::try_from(n - 1).map_err(|_| Undecodable::Short("a set id"))?;
            String::from_utf8(input.take(len)?.to_vec())
                .map_err(|_| Undecodable::Bad("text that is not UTF-8"))
        }
    }
}

/// Equal bindings whose JWKs also serialize alike (member order counts):
/// only then may a token's or instance's key be written as the grant's.
fn same_binding(a: &KeyBinding, b: &KeyBinding) -> bool {
    a.thumbprint == b.thumbprint && a.method == b.method && super::grant::same_json(&a.jwk, &b.jwk)
}

pub(super) fn get_token(
    input: &mut Reader<'_>,
    grant: &GrantRecord,
    locator: Option<&[u8; LOCATOR_LEN]>,
) -> Result<(TokenHash, TokenRecord), Undecodable> {
    let hash = get_hash(input, locator)?;
    let flags = input.flags(TOKEN_FLAGS)?;
    let on = |flag| flags & flag != 0;
    let token_grant = if on(OTHER_GRANT) {
        GrantId(input.text()?)
    } else {
        grant.id.clone()
    };
    let label = on(LABEL).then(|| input.text()).transpose()?;
    let access = if on(ASKED_ACCESS) {
        let index = usize::try_from(input.varint()?).unwrap_or(usize::MAX);
        grant
            .request
            .access_token
            .as_ref()
            .and_then(|asked| asked.as_slice().get(index))
            .ok_or(Undecodable::Bad("a requested token"))?
            .access
            .clone()
    } else {
        serde_json::from_value(value::get(input, &Value::Null)?).map_err(Undecodable::json)?
    };
    let key = if on(OTHER_KEY) {
        get_binding(input)?
    } else {
        grant.client.clone()
    };
    let manage = get_hash(input, locator)?;
    let issued_at = if on(ISSUED_AT_CREATION) {
        grant.created_at
    } else {
        input.delta(grant.created_at)?
    };
    let expires_at = input.delta(issued_at)?;
    let mut credential_sets = Vec::new();
    if on(CREDENTIAL_SETS) {
        for _ in 0..input.len()? {
            let upstream = input.text()?;
            let set = get_set_id(input, &upstream)?;
            credential_sets.push((upstream, set));
        }
    }
    let oauth = if on(OAUTH) {
        Some(serde_json::from_value(value::get(input, &Value::Null)?).map_err(Undecodable::json)?)
    } else {
        None
    };
    let token = TokenRecord {
        v: RECORD_VERSION,
        grant: token_grant,
        label,
        access,
        key,
        manage,
        bearer: on(BEARER),
        issued_at,
        expires_at,
        credential_sets,
        oauth,
    };
    Ok((hash, token))
}

/// The grant's token list: `0` when it is the entry's token hashes in
/// order (the usual case), else its length plus one and each hash, as a
/// reference `1 + i` to the entry's token `i` or `0` and the hash.
pub(super) fn put_grant_tokens(
    out: &mut Writer,
    listed: &[TokenHash],
    tokens: &[(TokenHash, TokenRecord)],
    locator: Option<&[u8; LOCATOR_LEN]>,
) {
    if listed.iter().eq(tokens.iter().map(|(h, _)| h)) {
        out.varint(0);
        return;
    }
    out.len(listed.len() + 1);
    for hash in listed {
        match tokens.iter().position(|(h, _)| h == hash) {
            Some(i) => out.len(i + 1),
            None => {
                out.varint(0);
                put_hash(out, hash, locator);
            }
        }
    }
}

pub(super) fn get_grant_tokens(
    input: &mut Reader<'_>,
    tokens: &[(TokenHash, TokenRecord)],
    locator: Option<&[u8; LOCATOR_LEN]>,
) -> Result<Vec<TokenHash>, Undecodable> {
    let count = match input.len()? {
        0 => return Ok(tokens.iter().map(|(h, _)| *h).collect()),
        n => n - 1,
    };
    let mut listed = Vec::new();
    for _ in 0..count {
        let hash = match usize::try_from(input.varint()?).unwrap_or(usize::MAX) {
            0 => get_hash(input, locator)?,
            i => {
                tokens
                    .get(i - 1)
                    .ok_or(Undecodable::Bad("a token reference"))?
                    .0
            }
        };
        listed.push(hash);
    }
    Ok(listed)
}

const INSTANCE: u64 = 1;
const INSTANCE_OTHER_KEY: u64 = 1 << 1;
const INSTANCE_CREATED_WITH_GRANT: u64 = 1 << 2;
const INSTANCE_EXPIRES: u64 = 1 << 3;
const INSTANCE_EXPIRES_WITH_GRANT: u64 = 1 << 4;
const INSTANCE_FLAGS: u64 = (1 << 5) - 1;

pub(super) fn put_instance(
    out: &mut Writer,
    grant: &GrantRecord,
    instance: Option<&InstanceRecord>,
) {
    let Some(instance) = instance else {
        out.varint(0);
        return;
    };
    let other_key = !same_binding(&instance.key, &grant.client);
    let mut flags = INSTANCE;
    for (set, flag) in [
        (other_key, INSTANCE_OTHER_KEY),
        (
            instance.created_at == grant.created_at,
            INSTANCE_CREATED_WITH_GRANT,
        ),
        (instance.expires_at.is_some(), INSTANCE_EXPIRES),
        (
            instance.expires_at == Some(grant.expires_at),
            INSTANCE_EXPIRES_WITH_GRANT,
        ),
    ] {
        if set {
            flags |= flag;
        }
    }
    out.varint(flags);
    if other_key {
        put_binding(out, &instance.key);
    }
    if instance.created_at != grant.created_at {
        out.delta(instance.created_at, grant.created_at);
    }
    if let Some(at) = instance.expires_at.filter(|&at| at != grant.expires_at) {
        out.delta(at, grant.expires_at);
    }
}

pub(super) fn get_instance(
    input: &mut Reader<'_>,
    grant: &GrantRecord,
) -> Result<Option<InstanceRecord>, Undecodable> {
    let flags = input.flags(INSTANCE_FLAGS)?;
    if flags & INSTANCE == 0 {
        return match flags {
            0 => Ok(None),
            _ => Err(Undecodable::Bad("an instance")),
        };
    }
    let on = |flag| flags & flag != 0;
    let key = if on(INSTANCE_OTHER_KEY) {
        get_binding(input)?
    } else {
        grant.client.clone()
    };
    let created_at = if on(INSTANCE_CREATED_WITH_GRANT) {
        grant.created_at
    } else {
        input.delta(grant.created_at)?
    };
    let expires_at = match (on(INSTANCE_EXPIRES), on(INSTANCE_EXPIRES_WITH_GRANT)) {
        (false, false) => None,
        (true, true) => Some(grant.expires_at),
        (true, false) => Some(input.delta(grant.expires_at)?),
        (false, true) => return Err(Undecodable::Bad("an instance's expiry")),
    };
    Ok(Some(InstanceRecord {
        v: RECORD_VERSION,
        key,
        created_at,
        expires_at,
    }))
}
