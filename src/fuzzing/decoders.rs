//! Other JSON decoders, as models: what a peer reading the same text with
//! another library sees. The gateway reads exact member names with serde;
//! an upstream or an agent may keep duplicates, take the first or the last,
//! match names case-blind or fold them, or stop a name at a NUL.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A JSON document with every member kept, duplicates and order included:
/// what a decoder other than serde's sees before it picks.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Doc {
    /// A string, number, boolean or null.
    Scalar(Value),
    /// An array.
    Array(Vec<Doc>),
    /// An object: every member, in order.
    Object(Vec<(String, Doc)>),
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Doc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Doc, E> {
                Ok(Doc::Scalar(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Doc, E> {
                Ok(Doc::Scalar(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Doc, E> {
                Ok(Doc::Scalar(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Doc, E> {
                Ok(Doc::Scalar(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Doc, E> {
                Ok(Doc::Scalar(v.into()))
            }
            fn visit_unit<E>(self) -> Result<Doc, E> {
                Ok(Doc::Scalar(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Doc, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(Doc::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Doc, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = a.next_entry::<String, Doc>()? {
                    members.push(member);
                }
                Ok(Doc::Object(members))
            }
        }
        d.deserialize_any(V)
    }
}

/// How a decoder matches a member name to a field it knows.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fold {
    /// Byte for byte (serde, Python's `json`).
    Exact,
    /// ASCII case-blind.
    Ascii,
    /// Each character lower-cased after upper-casing (Go's fold orbits:
    /// `ſ` → `S` → `s`, `K` (Kelvin) → `k`).
    Orbit,
    /// The full Unicode lower case (`ẞ` → `ß`, `ﬁ` stays).
    Lower,
    /// The full upper case, then lower case (`ß` → `SS` → `ss`, `ﬁ` → `fi`).
    UpperLower,
    /// A C-string decoder: the name stops at the first NUL, then ASCII
    /// case-blind.
    CString,
}

pub(super) const FOLDS: [Fold; 6] = [
    Fold::Exact,
    Fold::Ascii,
    Fold::Orbit,
    Fold::Lower,
    Fold::UpperLower,
    Fold::CString,
];

impl Fold {
    pub(super) fn apply(self, name: &str) -> String {
        match self {
            Self::Exact => name.to_owned(),
            Self::Ascii => name.to_ascii_lowercase(),
            Self::Orbit => name
                .chars()
                .flat_map(char::to_uppercase)
                .flat_map(char::to_lowercase)
                .collect(),
            Self::Lower => name.to_lowercase(),
            Self::UpperLower => name.to_uppercase().to_lowercase(),
            Self::CString => name
                .split('\0')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase(),
        }
    }
}

/// The value a decoder with `fold` reads for field `known`: the first or
/// the last member whose name folds to it.
pub(super) fn pick<'d>(
    members: &'d [(String, Doc)],
    known: &str,
    fold: Fold,
    last: bool,
) -> Option<&'d Doc> {
    let mut matching = members
        .iter()
        .filter(|(name, _)| fold.apply(name) == known)
        .map(|(_, value)| value);
    if last {
        matching.next_back()
    } else {
        matching.next()
    }
}
