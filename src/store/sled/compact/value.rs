//! JSON values in binary: a kind, then the value, with the common words of
//! [`super::words`] as one byte. Used for the parts of a grant record that
//! are JSON by nature (the request, access rights, JWKs other than
//! Ed25519, OAuth details): they come back as the same `Value`, members in
//! the same order, so they serialize to the same bytes.
//!
//! One number says what comes next: 0–8 a kind below, from 9 up text
//! (`9 + n`: word `n`, or after the words, a literal of that many bytes).
//! Member names are text of the same form without the kinds.

use serde_json::{Map, Number, Value};

use super::Undecodable;
use super::wire::{Reader, Writer};
use super::words::{WORDS, index_of};

const NULL: u64 = 0;
const FALSE: u64 = 1;
const TRUE: u64 = 2;
const UNSIGNED: u64 = 3;
const NEGATIVE: u64 = 4;
const FLOAT: u64 = 5;
const ARRAY: u64 = 6;
const OBJECT: u64 = 7;
/// The JWK of the record's client key binding, left out where the request
/// repeats it.
const BINDING_JWK: u64 = 8;
const TEXT: u64 = 9;

/// How deep a value may nest: serde_json's own limit, so anything stored
/// as JSON before fits, and a hostile record cannot exhaust the stack.
const MAX_DEPTH: usize = 128;

/// Writes `value`; the value at address `elided` (if any) is written as
/// [`BINDING_JWK`], for the reader to put back.
pub(super) fn put(out: &mut Writer, value: &Value, elided: Option<&Value>) {
    if elided.is_some_and(|e| std::ptr::eq(e, value)) {
        out.varint(BINDING_JWK);
        return;
    }
    match value {
        Value::Null => out.varint(NULL),
        Value::Bool(false) => out.varint(FALSE),
        Value::Bool(true) => out.varint(TRUE),
        Value::Number(n) => put_number(out, n),
        Value::String(s) => put_text(out, TEXT, s),
        Value::Array(items) => {
            out.varint(ARRAY);
            out.len(items.len());
            for item in items {
                put(out, item, elided);
            }
        }
        Value::Object(members) => {
            out.varint(OBJECT);
            out.len(members.len());
            for (name, member) in members {
                put_text(out, 0, name);
                put(out, member, elided);
            }
        }
    }
}

fn put_number(out: &mut Writer, n: &Number) {
    if let Some(u) = n.as_u64() {
        out.varint(UNSIGNED);
        out.varint(u);
    } else if let Some(i) = n.as_i64() {
        out.varint(NEGATIVE);
        out.signed(i);
    } else {
        // serde_json holds any other number as a finite f64.
        out.varint(FLOAT);
        out.bytes(&n.as_f64().unwrap_or_default().to_le_bytes());
    }
}

/// Text after the kinds numbered below `first`.
fn put_text(out: &mut Writer, first: u64, text: &str) {
    match index_of(text) {
        Some(word) => out.varint(first + word as u64),
        None => {
            out.varint(first + (WORDS.len() + text.len()) as u64);
            out.bytes(text.as_bytes());
        }
    }
}

/// Reads a value; [`BINDING_JWK`] becomes `binding_jwk`.
pub(super) fn get(input: &mut Reader<'_>, binding_jwk: &Value) -> Result<Value, Undecodable> {
    get_at(input, binding_jwk, 0)
}

fn get_at(input: &mut Reader<'_>, binding_jwk: &Value, depth: usize) -> Result<Value, Undecodable> {
    if depth > MAX_DEPTH {
        return Err(Undecodable::Bad("JSON nested too deep"));
    }
    let kind = input.varint()?;
    Ok(match kind {
        NULL => Value::Null,
        FALSE => Value::Bool(false),
        TRUE => Value::Bool(true),
        UNSIGNED => Value::from(input.varint()?),
        NEGATIVE => Value::from(input.signed()?),
        FLOAT => {
            let float = f64::from_le_bytes(input.array()?);
            Value::Number(Number::from_f64(float).ok_or(Undecodable::Bad("a number JSON lacks"))?)
        }
        ARRAY => {
            let count = input.len()?;
            let mut items = Vec::new();
            for _ in 0..count {
                items.push(get_at(input, binding_jwk, depth + 1)?);
            }
            Value::Array(items)
        }
        OBJECT => {
            let count = input.len()?;
            let mut members = Map::new();
            for _ in 0..count {
                let name = get_text(input, 0)?;
                members.insert(name, get_at(input, binding_jwk, depth + 1)?);
            }
            Value::Object(members)
        }
        BINDING_JWK => binding_jwk.clone(),
        _ => Value::String(text_after(input, kind - TEXT)?),
    })
}

fn get_text(input: &mut Reader<'_>, first: u64) -> Result<String, Undecodable> {
    let n = input.varint()?;
    text_after(
        input,
        n.checked_sub(first).ok_or(Undecodable::Bad("a name"))?,
    )
}

/// Word `n`, or a literal of `n - WORDS.len()` bytes.
fn text_after(input: &mut Reader<'_>, n: u64) -> Result<String, Undecodable> {
    let n = usize::try_from(n).map_err(|_| Undecodable::Short("text beyond the record"))?;
    if let Some(word) = WORDS.get(n) {
        return Ok((*word).to_owned());
    }
    let bytes = input.take(n - WORDS.len())?;
    String::from_utf8(bytes.to_vec()).map_err(|_| Undecodable::Bad("text that is not UTF-8"))
}
