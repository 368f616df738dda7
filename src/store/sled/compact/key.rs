//! Key bindings and token hashes in their usual shapes: an Ed25519 JWK as
//! its 32 key bytes, a thumbprint as its 32 digest bytes, a hash that
//! carries its grant's locator as the 16 bytes after it. Anything else is
//! written as it is.

use serde_json::{Map, Value};

use super::Undecodable;
use super::value;
use super::wire::{Reader, Writer};
use crate::proto::b64;
use crate::proto::gnap::ProofKind;
use crate::store::{KeyBinding, LOCATOR_LEN, TokenHash};

const RAW_THUMBPRINT: u64 = 1;
const ED25519_JWK: u64 = 1 << 1;
/// Two bits of method from here.
const METHOD_SHIFT: u32 = 2;
/// The Ed25519 JWK has members after `x` (`kid`, `alg`): an object of them
/// follows its key bytes.
const ED25519_MORE: u64 = 1 << 4;
/// The thumbprint is the Ed25519 key's RFC 7638 thumbprint: not written.
const DERIVED_THUMBPRINT: u64 = 1 << 5;
const KEY_FLAGS: u64 =
    RAW_THUMBPRINT | ED25519_JWK | (3 << METHOD_SHIFT) | ED25519_MORE | DERIVED_THUMBPRINT;

pub(super) fn put_binding(out: &mut Writer, key: &KeyBinding) {
    let x = ed25519_x(&key.jwk);
    let derived = x
        .as_ref()
        .is_some_and(|(x, _)| thumbprint_of(x) == key.thumbprint);
    let thumbprint = raw32(&key.thumbprint).filter(|_| !derived);
    let method = match key.method {
        ProofKind::HttpSig => 0,
        ProofKind::Jwsd => 1,
        ProofKind::Jws => 2,
        ProofKind::Mtls => 3,
    };
    let mut flags = method << METHOD_SHIFT;
    if thumbprint.is_some() {
        flags |= RAW_THUMBPRINT;
    }
    if derived {
        flags |= DERIVED_THUMBPRINT;
    }
    if let Some((_, more)) = &x {
        flags |= ED25519_JWK;
        if !more.is_empty() {
            flags |= ED25519_MORE;
        }
    }
    out.varint(flags);
    match thumbprint {
        Some(raw) => out.bytes(&raw),
        None if derived => {}
        None => out.text(&key.thumbprint),
    }
    match x {
        Some((raw, more)) => {
            out.bytes(&raw);
            if !more.is_empty() {
                value::put(out, &Value::Object(more), None);
            }
        }
        None => value::put(out, &key.jwk, None),
    }
}

pub(super) fn get_binding(input: &mut Reader<'_>) -> Result<KeyBinding, Undecodable> {
    let flags = input.flags(KEY_FLAGS)?;
    let derived = flags & DERIVED_THUMBPRINT != 0;
    if derived && flags & (ED25519_JWK | RAW_THUMBPRINT) != ED25519_JWK {
        return Err(Undecodable::Bad("a key's thumbprint"));
    }
    let thumbprint = if flags & RAW_THUMBPRINT != 0 {
        b64::encode_url(&input.array::<32>()?)
    } else if derived {
        String::new()
    } else {
        input.text()?
    };
    let jwk = if flags & ED25519_JWK != 0 {
        let x = input.array::<32>()?;
        let more = if flags & ED25519_MORE != 0 {
            match value::get(input, &Value::Null)? {
                Value::Object(more) => more,
                _ => return Err(Undecodable::Bad("a JWK's members")),
            }
        } else {
            Map::new()
        };
        ed25519_jwk(&x, more)
    } else {
        value::get(input, &Value::Null)?
    };
    let method = match (flags >> METHOD_SHIFT) & 3 {
        0 => ProofKind::HttpSig,
        1 => ProofKind::Jwsd,
        2 => ProofKind::Jws,
        _ => ProofKind::Mtls,
    };
    let thumbprint = match jwk.get("x").and_then(Value::as_str) {
        Some(x) if derived => thumbprint_of_text(x),
        _ => thumbprint,
    };
    Ok(KeyBinding {
        thumbprint,
        jwk,
        method,
    })
}

/// The 32 bytes `text` is the canonical base64url of, if it is.
fn raw32(text: &str) -> Option<[u8; 32]> {
    let raw: [u8; 32] = b64::decode_url(text)?.try_into().ok()?;
    (b64::encode_url(&raw) == text).then_some(raw)
}

/// The public key of a JWK that starts `{"crv":"Ed25519","kty":"OKP",
/// "x":…}` (those members, that order, as gnapd stores a key's thumbprint
/// members), and the members after those: what is rebuilt from them
/// serializes to the same bytes.
fn ed25519_x(jwk: &Value) -> Option<([u8; 32], Map<String, Value>)> {
    let mut members = jwk.as_object()?.iter();
    let mut next = |name: &str| {
        members
            .next()
            .filter(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_str())
    };
    if next("crv")? != "Ed25519" || next("kty")? != "OKP" {
        return None;
    }
    let x = raw32(next("x")?)?;
    let more = members.map(|(n, v)| (n.clone(), v.clone())).collect();
    Some((x, more))
}

/// The RFC 7638 thumbprint of the Ed25519 key `x`: base64url of the
/// SHA-256 of its required members, sorted, without whitespace.
fn thumbprint_of(x: &[u8; 32]) -> String {
    thumbprint_of_text(&b64::encode_url(x))
}

fn thumbprint_of_text(x: &str) -> String {
    let members = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    b64::encode_url(&crate::proto::hash::sha256(members.as_bytes()))
}

fn ed25519_jwk(x: &[u8; 32], more: Map<String, Value>) -> Value {
    let mut jwk = Map::new();
    jwk.insert("crv".into(), "Ed25519".into());
    jwk.insert("kty".into(), "OKP".into());
    jwk.insert("x".into(), b64::encode_url(x).into());
    for (name, member) in more {
        jwk.insert(name, member);
    }
    Value::Object(jwk)
}

/// How a token hash is written: whole, or after the locator it shares with
/// the record's grant.
const WHOLE_HASH: u8 = 0;
const LOCATED_HASH: u8 = 1;

pub(super) fn put_hash(out: &mut Writer, hash: &TokenHash, locator: Option<&[u8; LOCATOR_LEN]>) {
    if locator.is_some_and(|l| hash.0[..LOCATOR_LEN] == l[..]) {
        out.byte(LOCATED_HASH);
        out.bytes(&hash.0[LOCATOR_LEN..]);
    } else {
        out.byte(WHOLE_HASH);
        out.bytes(&hash.0);
    }
}

pub(super) fn get_hash(
    input: &mut Reader<'_>,
    locator: Option<&[u8; LOCATOR_LEN]>,
) -> Result<TokenHash, Undecodable> {
    match (input.byte()?, locator) {
        (WHOLE_HASH, _) => Ok(TokenHash(input.array()?)),
        (LOCATED_HASH, Some(locator)) => {
            let mut hash = [0u8; 32];
            hash[..LOCATOR_LEN].copy_from_slice(locator);
            hash[LOCATOR_LEN..].copy_from_slice(input.take(32 - LOCATOR_LEN)?);
            Ok(TokenHash(hash))
        }
        _ => Err(Undecodable::Bad("a token hash")),
    }
}
