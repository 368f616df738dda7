//! One-pass reading of RFC 8941/9651 structured fields, borrowing from the
//! input.
//!
//! `sfv`'s owned types (`Dictionary`, an `IndexMap`) collapse duplicate keys
//! silently and cost an allocation per key and value. The signature fields are
//! on every request's hot path, and a duplicated label there is an ambiguity
//! gnapd refuses, so this reader walks the field once with `sfv`'s visitor
//! API: members in input order, keys and strings borrowed, duplicates
//! reported. The semantics are RFC 8941's: for a repeated key, the last value
//! wins (and the reader says a repeat happened); parameters likewise.

use std::convert::Infallible;

use sfv::visitor::{
    DictionaryVisitor, EntryVisitor, InnerListVisitor, ItemVisitor, ParameterVisitor,
};
use sfv::{BareItemFromInput, ItemSerializer, KeyRef};

/// Parameters in input order; a repeated key keeps its first position and
/// its last value (RFC 9651 §4.2.3.2).
pub type Params<'de> = Vec<(&'de KeyRef, BareItemFromInput<'de>)>;

/// A bare item with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Item<'de> {
    /// The value.
    pub bare: BareItemFromInput<'de>,
    /// Its parameters.
    pub params: Params<'de>,
}

/// A dictionary member's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Member<'de> {
    /// An item.
    Item(Item<'de>),
    /// An inner list with its parameters.
    InnerList(Vec<Item<'de>>, Params<'de>),
}

/// A dictionary read in one pass.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Dictionary<'de> {
    /// Members in input order (a repeated key keeps its first position and
    /// its last value, as RFC 9651 §4.2.2 overwrites in place).
    pub members: Vec<(&'de KeyRef, Member<'de>)>,
    /// The first key that occurred more than once, if any.
    pub duplicate: Option<&'de KeyRef>,
}

/// The input is not a valid structured field of the expected type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// Reads a dictionary.
pub fn dictionary(input: &[u8]) -> Result<Dictionary<'_>, Invalid> {
    let mut out = Dictionary::default();
    sfv::Parser::new(input)
        .parse_dictionary_with_visitor(&mut out)
        .map_err(|_| Invalid)?;
    Ok(out)
}

/// Reads an item.
pub fn item(input: &[u8]) -> Result<Item<'_>, Invalid> {
    let mut out = Vec::with_capacity(1);
    sfv::Parser::new(input)
        .parse_item_with_visitor(ItemSlot { out: &mut out })
        .map_err(|_| Invalid)?;
    out.pop().ok_or(Invalid)
}

/// Appends the canonical serialization of an item (RFC 9651 §4.1.3).
pub fn serialize_item(item: &Item<'_>, out: &mut String) {
    let mut ser = ItemSerializer::with_buffer(out).bare_item(&item.bare);
    for (key, value) in &item.params {
        ser = ser.parameter(key, value);
    }
    let _ = ser.finish();
}

/// Appends the canonical serialization of an inner list (RFC 9651 §4.1.1.1).
pub fn serialize_inner_list(items: &[Item<'_>], params: &Params<'_>, out: &mut String) {
    out.push('(');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        serialize_item(item, out);
    }
    out.push(')');
    serialize_params(params, out);
}

/// Appends the canonical serialization of parameters (RFC 9651 §4.1.1.2).
pub fn serialize_params(params: &Params<'_>, out: &mut String) {
    for (key, value) in params {
        out.push(';');
        out.push_str(key.as_str());
        if value.as_boolean() != Some(true) {
            out.push('=');
            // A bare item serialized alone is exactly the parameter value.
            let _ = ItemSerializer::with_buffer(out).bare_item(value).finish();
        }
    }
}

fn put<'de>(params: &mut Params<'de>, key: &'de KeyRef, value: BareItemFromInput<'de>) {
    match params.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => params.push((key, value)),
    }
}

impl<'de> DictionaryVisitor<'de> for &mut Dictionary<'de> {
    type Out = ();
    type Error = Infallible;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Self::Error> {
        let replace = self.members.iter().position(|(k, _)| *k == key);
        if replace.is_some() {
            self.duplicate.get_or_insert(key);
        }
        Ok(EntrySlot {
            members: &mut self.members,
            key,
            replace,
        })
    }

    fn finish(self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Where a dictionary member lands once it is complete.
struct EntrySlot<'a, 'de> {
    members: &'a mut Vec<(&'de KeyRef, Member<'de>)>,
    key: &'de KeyRef,
    /// The position of an earlier member with the same key, which this one
    /// overwrites in place.
    replace: Option<usize>,
}

impl<'de> EntryVisitor<'de> for EntrySlot<'_, 'de> {
    type Error = Infallible;

    fn item(self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        Ok(self)
    }

    fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Self::Error> {
        Ok(ListSlot {
            entry: self,
            items: Vec::new(),
        })
    }
}

impl<'de> ItemVisitor<'de> for EntrySlot<'_, 'de> {
    type Out = ();
    type Error = Infallible;

    fn bare_item(
        self,
        bare: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = ()>, Self::Error> {
        Ok(MemberParams {
            entry: self,
            kind: Pending::Item(bare),
            params: Vec::new(),
        })
    }
}

/// An inner list being read.
struct ListSlot<'a, 'de> {
    entry: EntrySlot<'a, 'de>,
    items: Vec<Item<'de>>,
}

impl<'de> InnerListVisitor<'de> for ListSlot<'_, 'de> {
    type Error = Infallible;

    fn item(&mut self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        Ok(ItemSlot {
            out: &mut self.items,
        })
    }

    fn finish(self) -> Result<impl ParameterVisitor<'de>, Self::Error> {
        Ok(MemberParams {
            entry: self.entry,
            kind: Pending::InnerList(self.items),
            params: Vec::new(),
        })
    }
}

enum Pending<'de> {
    Item(BareItemFromInput<'de>),
    InnerList(Vec<Item<'de>>),
}

/// The parameters of a member; the member is stored when they end.
struct MemberParams<'a, 'de> {
    entry: EntrySlot<'a, 'de>,
    kind: Pending<'de>,
    params: Params<'de>,
}

impl<'de> ParameterVisitor<'de> for MemberParams<'_, 'de> {
    type Out = ();
    type Error = Infallible;

    fn parameter(
        &mut self,
        key: &'de KeyRef,
        value: BareItemFromInput<'de>,
    ) -> Result<(), Self::Error> {
        put(&mut self.params, key, value);
        Ok(())
    }

    fn finish(self) -> Result<(), Self::Error> {
        let member = match self.kind {
            Pending::Item(bare) => Member::Item(Item {
                bare,
                params: self.params,
            }),
            Pending::InnerList(items) => Member::InnerList(items, self.params),
        };
        match self
            .entry
            .replace
            .and_then(|i| self.entry.members.get_mut(i))
        {
            Some(slot) => slot.1 = member,
            None => self.entry.members.push((self.entry.key, member)),
        }
        Ok(())
    }
}

/// Where an item (of an inner list, or a whole field) lands.
struct ItemSlot<'a, 'de> {
    out: &'a mut Vec<Item<'de>>,
}

impl<'de> ItemVisitor<'de> for ItemSlot<'_, 'de> {
    type Out = ();
    type Error = Infallible;

    fn bare_item(
        self,
        bare: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = ()>, Self::Error> {
        Ok(ItemParams {
            out: self.out,
            bare,
            params: Vec::new(),
        })
    }
}

struct ItemParams<'a, 'de> {
    out: &'a mut Vec<Item<'de>>,
    bare: BareItemFromInput<'de>,
    params: Params<'de>,
}

impl<'de> ParameterVisitor<'de> for ItemParams<'_, 'de> {
    type Out = ();
    type Error = Infallible;

    fn parameter(
        &mut self,
        key: &'de KeyRef,
        value: BareItemFromInput<'de>,
    ) -> Result<(), Self::Error> {
        put(&mut self.params, key, value);
        Ok(())
    }

    fn finish(self) -> Result<(), Self::Error> {
        self.out.push(Item {
            bare: self.bare,
            params: self.params,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical_dictionary(input: &str) -> String {
        let dict = dictionary(input.as_bytes()).unwrap();
        let mut out = String::new();
        for (i, (key, member)) in dict.members.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(key.as_str());
            out.push('=');
            match member {
                Member::Item(item) => serialize_item(item, &mut out),
                Member::InnerList(items, params) => serialize_inner_list(items, params, &mut out),
            }
        }
        out
    }

    #[test]
    fn serialization_matches_sfv_for_inner_lists_and_items() {
        for input in [
            "a=1, b=2, a=(3 4)",
            r#"a=("x" "y";p=1);created=1;keyid="k";f;g=?0;d=1.5;t=tok;b=:AQ==:"#,
            r#"a=();created=1"#,
            r#"a=:AQID:;n="s\"q""#,
        ] {
            let ours = canonical_dictionary(input);
            let theirs: sfv::Dictionary = sfv::Parser::new(input).parse().unwrap();
            let mut ser = sfv::DictSerializer::new();
            ser.members(&theirs);
            assert_eq!(ours, ser.finish().unwrap(), "{input}");
        }
    }

    #[test]
    fn a_repeated_key_is_reported_and_the_last_value_wins() {
        let dict = dictionary(b"a=1, b=2, a=3").unwrap();
        assert_eq!(dict.duplicate.map(KeyRef::as_str), Some("a"));
        assert_eq!(canonical_dictionary("a=1, b=2, a=3"), "a=3, b=2");
    }

    #[test]
    fn a_repeated_parameter_keeps_its_place_and_takes_the_last_value() {
        assert_eq!(
            canonical_dictionary("a=(\"x\");p=1;q=2;p=3"),
            "a=(\"x\");p=3;q=2"
        );
    }

    #[test]
    fn invalid_input_is_refused() {
        assert_eq!(dictionary(b"a=(\"x"), Err(Invalid));
        assert_eq!(item(b"\"x\" y"), Err(Invalid));
    }
}
