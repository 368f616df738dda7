//! JSON-RPC 2.0 messages as MCP carries them: one message per HTTP POST.
//!
//! Only what authorization needs is read: the kind of message, the method,
//! and (for the methods that name a target) `params.name` or `params.uri`.
//! The message itself is forwarded untouched, so it must not say anything
//! else to a decoder that reads member names differently (see [`fold`]):
//! a message is refused when it has a top-level member JSON-RPC 2.0 does
//! not define (`Method`, `ID`, `paramſ` ...), a member given twice (at the
//! top level, or one of [`PARAMS_READ`] in `params`), or a `params` member
//! some decoder reads as one of [`PARAMS_READ`] (`Name`, `NAME`, `urı`,
//! `name` followed by a NUL ...). What is left reads the same to every
//! decoder: the method, id, target and params the gateway decided on.
//!
//! [`fold`]: super::fold

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request: has `id` and `method`.
    Request {
        /// The method.
        method: String,
        /// `params.name` (tools/call, prompts/get) or `params.uri`
        /// (resources/read), when present.
        target: Option<String>,
    },
    /// A notification: `method` without `id`.
    Notification {
        /// The method.
        method: String,
    },
    /// A response or error from the client to a server request.
    Response,
}

/// Why a body is not one JSON-RPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON.
    #[error("the body is not JSON")]
    NotJson,
    /// JSON, but not a JSON-RPC 2.0 message object (arrays included: MCP
    /// 2025-06-18 removed batching).
    #[error("the body is not a JSON-RPC 2.0 message")]
    NotMessage,
}

/// The members of a `params` object that are read (`name`, `uri`) or that
/// an upstream reads in a way that matters (`arguments`, the tool's input;
/// `_meta`, whose `progressToken` routes a stdio child's messages): each
/// may appear once, and no other member may be read as one of them.
pub const PARAMS_READ: [&str; 4] = ["name", "uri", "arguments", "_meta"];

/// The members of a message that authorization reads; everything else
/// (arguments, results) is skipped without being built into values, since
/// this runs on every gateway call. Members JSON-RPC 2.0 does not define
/// are refused: a case-blind decoder would read `Method` as `method`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "id_kind")]
    id: Option<IdKind>,
    #[serde(borrow, default, deserialize_with = "method")]
    method: Option<Option<Cow<'a, str>>>,
    #[serde(default)]
    params: Params,
    #[serde(default, deserialize_with = "present")]
    result: bool,
    #[serde(default, deserialize_with = "present")]
    error: bool,
}

/// What an `id` member holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IdKind {
    /// A string or a number: a request or response id.
    Valid,
    /// Anything else (null is reserved for errors).
    Other,
}

fn id_kind<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IdKind>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = IdKind;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_str<E>(self, _: &str) -> Result<IdKind, E> {
            Ok(IdKind::Valid)
        }
        fn visit_i64<E>(self, _: i64) -> Result<IdKind, E> {
            Ok(IdKind::Valid)
        }
        fn visit_u64<E>(self, _: u64) -> Result<IdKind, E> {
            Ok(IdKind::Valid)
        }
        fn visit_f64<E>(self, _: f64) -> Result<IdKind, E> {
            Ok(IdKind::Valid)
        }
        fn visit_bool<E>(self, _: bool) -> Result<IdKind, E> {
            Ok(IdKind::Other)
        }
        fn visit_unit<E>(self) -> Result<IdKind, E> {
            Ok(IdKind::Other)
        }
        fn visit_none<E>(self) -> Result<IdKind, E> {
            Ok(IdKind::Other)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<IdKind, A::Error> {
            while a.next_element::<Skip>()?.is_some() {}
            Ok(IdKind::Other)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<IdKind, A::Error> {
            while a.next_entry::<Skip, Skip>()?.is_some() {}
            Ok(IdKind::Other)
        }
    }
    d.deserialize_any(V).map(Some)
}

/// `Some(Some(name))` for a string method, `Some(None)` for any other value.
fn method<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Cow<'de, str>>>, D::Error> {
    StrOrNot::deserialize(d).map(|s| Some(s.0))
}

/// True for any value, null included: the member is present.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Skip::deserialize(d).map(|_| true)
}

/// `params.name` and `params.uri`: `Some(None)` when present but not a
/// string, `None` when absent.
#[derive(Default)]
struct Params {
    name: Option<Option<String>>,
    uri: Option<Option<String>>,
}

impl Params {
    /// What `method` names: `uri` for the resource methods, else `name`
    /// (else `uri`, for the `Mcp-Name` check of other methods). A target
    /// that is not a string names nothing, and the other member is not
    /// read in its place.
    fn target(self, method: &str) -> Option<String> {
        let (first, second) = if method.starts_with("resources/") {
            (self.uri, self.name)
        } else {
            (self.name, self.uri)
        };
        match first {
            Some(first) => first,
            None => second.flatten(),
        }
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Params, A::Error> {
                // Each member of PARAMS_READ at most once: parsers differ
                // on which of two equal keys counts, and the upstream must
                // run the tool the gateway authorized, not the other one.
                // Nor may another member be one of them to some decoder.
                let mut params = Params::default();
                let mut seen = [false; PARAMS_READ.len()];
                while let Some(StrOrNot(key)) = a.next_key::<StrOrNot<'de>>()? {
                    let key = key.unwrap_or_default();
                    let Some(i) = PARAMS_READ.iter().position(|k| *k == key) else {
                        if PARAMS_READ.iter().any(|k| super::fold::reads_as(&key, k)) {
                            return Err(de::Error::custom(
                                "a params member some decoders read as another",
                            ));
                        }
                        a.next_value::<Skip>()?;
                        continue;
                    };
                    if std::mem::replace(&mut seen[i], true) {
                        return Err(de::Error::duplicate_field(PARAMS_READ[i]));
                    }
                    let slot = match PARAMS_READ[i] {
                        "name" => &mut params.name,
                        "uri" => &mut params.uri,
                        _ => {
                            a.next_value::<Skip>()?;
                            continue;
                        }
                    };
                    *slot = Some(a.next_value::<StrOrNot<'de>>()?.0.map(Cow::into_owned));
                }
                Ok(params)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Params, A::Error> {
                while a.next_element::<Skip>()?.is_some() {}
                Ok(Params::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Params, E> {
                Ok(Params::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Params, E> {
                Ok(Params::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Params, E> {
                Ok(Params::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Params, E> {
                Ok(Params::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Params, E> {
                Ok(Params::default())
            }
            fn visit_unit<E>(self) -> Result<Params, E> {
                Ok(Params::default())
            }
            fn visit_none<E>(self) -> Result<Params, E> {
                Ok(Params::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A string value (borrowed from the body when it has no escapes), or
/// `None` for any other value, which is skipped. A visitor of its own rather
/// than an untagged enum: serde buffers an untagged value before trying its
/// variants, which cost allocations on every call.
pub(crate) struct StrOrNot<'de>(pub(crate) Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for StrOrNot<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrNot<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(StrOrNot(Some(Cow::Borrowed(text))))
            }
            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(StrOrNot(Some(Cow::Owned(text.to_owned()))))
            }
            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(StrOrNot(Some(Cow::Owned(text))))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(StrOrNot(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(StrOrNot(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StrOrNot(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StrOrNot(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(StrOrNot(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(StrOrNot(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<Skip>()?.is_some() {}
                Ok(StrOrNot(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(StrOrNot(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Any value, skipped without being built, but with its numbers read:
/// serde's `IgnoredAny` skips a number without computing it, so a number
/// beyond `f64` (`1e999`) in a member the gateway does not read went to the
/// upstream, whose decoder may refuse it, read infinity or keep it exact
/// (RFC 8259 §9, found by the `jsonrpc` fuzz target).
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Skip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_unit<E>(self) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Skip, A::Error> {
                while a.next_element::<Skip>()?.is_some() {}
                Ok(Skip)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Skip, A::Error> {
                while a.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Skip)
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads one message.
pub fn parse(body: &[u8]) -> Result<Message, ParseError> {
    // JSON between systems is UTF-8 (RFC 8259 §8.1). serde skips the
    // members it ignores without checking their bytes, and an upstream's
    // decoder may refuse, replace or drop what is not UTF-8 there: such a
    // body would not read the same to it.
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(ParseError::NotJson);
    };
    let wire: Wire<'_> = serde_json::from_str(text).map_err(|e| match e.classify() {
        // A member no message has can stop the read before the text is
        // checked to its end: text that is not JSON is still a parse
        // error (-32700), not an invalid request.
        serde_json::error::Category::Data if serde_json::from_slice::<IgnoredAny>(body).is_ok() => {
            ParseError::NotMessage
        }
        _ => ParseError::NotJson,
    })?;
    if wire.jsonrpc.as_deref() != Some("2.0") {
        return Err(ParseError::NotMessage);
    }
    let has_id = wire.id == Some(IdKind::Valid);
    match wire.method {
        Some(Some(method)) => {
            if has_id {
                Ok(Message::Request {
                    target: wire.params.target(&method),
                    method: method.into_owned(),
                })
            } else if wire.id.is_some() {
                // An `id` that is neither a string nor a number (null is
                // reserved for errors) cannot be a request.
                Err(ParseError::NotMessage)
            } else {
                Ok(Message::Notification {
                    method: method.into_owned(),
                })
            }
        }
        Some(None) => Err(ParseError::NotMessage),
        None if has_id && (wire.result || wire.error) => Ok(Message::Response),
        None => Err(ParseError::NotMessage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_a_case_blind_or_folding_decoder_reads_otherwise_are_refused() {
        // Top level: only what JSON-RPC 2.0 defines, spelled exactly.
        for extra in [
            r#""Method":"tools/call""#,
            r#""METHOD":"tools/call""#,
            r#""ID":2"#,
            r#""\u0131d":2"#,
            r#""Params":{"name":"delete_repo"}"#,
            r#""param\u017f":{"name":"delete_repo"}"#,
            r#""jsonRPC":"2.0""#,
            r#""method\u0000":"tools/call""#,
            r#""extra":1"#,
        ] {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"name":"search_issues"}},{extra}}}"#
            );
            assert_eq!(
                parse(body.as_bytes()),
                Err(ParseError::NotMessage),
                "{body}"
            );
        }
        // In params: nothing another decoder reads as `name`, `uri`,
        // `arguments` or `_meta`, and none of those twice.
        for members in [
            r#""Name":"delete_repo""#,
            r#""NAME":"delete_repo""#,
            r#""\u004eame":"delete_repo""#,
            r#""name\u0000":"delete_repo""#,
            r#""ur\u0131":"file:///secret""#,
            r#""ur\u0130":"file:///secret""#,
            r#""URI":"file:///secret""#,
            r#""Arguments":{"repo":"x"}"#,
            r#""argument\u017f":{}"#,
            r#""_META":{}"#,
            r#""arguments":{}"#,
            r#""_meta":{}"#,
            r#""n\u0061me":"delete_repo""#,
        ] {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"search_issues","uri":"file:///public","arguments":{{}},"_meta":{{}},{members}}}}}"#
            );
            assert_eq!(
                parse(body.as_bytes()),
                Err(ParseError::NotMessage),
                "{body}"
            );
        }
        // Other members, in any case, are the upstream's business: the
        // gateway decides on none of them.
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"Name":"x","name":"y"},"_meta":{"progressToken":1},"task":{"ttl":5},"Task":1,"cursor":"c"}}"#),
            Ok(Message::Request {
                method: "tools/call".into(),
                target: Some("a".into())
            })
        );
    }

    #[test]
    fn escaped_and_non_string_names_read_as_before() {
        // Escapes make serde hand over an owned string, not a borrowed one.
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"se\u0061rch"}}"#),
            Ok(Message::Request {
                method: "tools/call".into(),
                target: Some("search".into())
            })
        );
        // A name that is not a string names nothing, and `uri` is not used
        // in its place; a method that is not a string is no message.
        for name in ["1", "null", "true", "[\"a\"]", "{\"a\":\"b\"}", "1.5"] {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":{name},"uri":"u"}}}}"#
            );
            assert_eq!(
                parse(body.as_bytes()),
                Ok(Message::Request {
                    method: "tools/call".into(),
                    target: None
                }),
                "{name}"
            );
            let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":{name}}}"#);
            assert_eq!(
                parse(body.as_bytes()),
                Err(ParseError::NotMessage),
                "{name}"
            );
        }
    }

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{}}}"#),
            Ok(Message::Request {
                method: "tools/call".into(),
                target: Some("search".into())
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x"}}"#),
            Ok(Message::Request {
                method: "resources/read".into(),
                target: Some("file:///x".into())
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification {
                method: "notifications/initialized".into()
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":7,"result":{}}"#),
            Ok(Message::Response)
        );
    }

    #[test]
    fn batches_and_malformed_messages_are_refused() {
        assert_eq!(parse(b"[]"), Err(ParseError::NotMessage));
        assert_eq!(parse(b"{"), Err(ParseError::NotJson));
        assert_eq!(
            parse(br#"{"id":1,"method":"x"}"#),
            Err(ParseError::NotMessage)
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#),
            Err(ParseError::NotMessage)
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":5}"#),
            Err(ParseError::NotMessage)
        );
    }

    #[test]
    fn only_what_authorization_reads_is_read_and_edge_cases_hold() {
        // A null result is still a response; params of any shape.
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":"x","result":null}"#),
            Ok(Message::Response)
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}"#),
            Ok(Message::Response)
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1.5,"method":"ping","params":[1,2]}"#),
            Ok(Message::Request {
                method: "ping".into(),
                target: None
            })
        );
        // `name` wins over `uri`, and a non-string `name` names nothing.
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"uri":"u","name":"n"}}"#),
            Ok(Message::Request {
                method: "m".into(),
                target: Some("n".into())
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"name":{"a":1},"uri":"u"}}"#),
            Ok(Message::Request {
                method: "m".into(),
                target: None
            })
        );
        // Escapes are decoded; large ignored members cost nothing.
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"cursor":{"deep":[[[{"x":"y"}]]]},"name":"a\u0062c","arguments":{"q":"z"}}}"#),
            Ok(Message::Request {
                method: "tools/call".into(),
                target: Some("abc".into())
            })
        );
        for bad in [
            &br#"{"jsonrpc":"2.0","id":true,"method":"x"}"#[..],
            br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
            br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            br#"{"jsonrpc":"2.0","id":1}"#,
            br#"{"jsonrpc":"2.0","result":{}}"#,
            br#""just a string""#,
            br#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#,
            // The tool or resource named twice: which one an upstream runs
            // depends on its parser.
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok","name":"other"}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok","arguments":{},"n\u0061me":"other"}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"a","uri":"b"}}"#,
        ] {
            assert_eq!(
                parse(bad),
                Err(ParseError::NotMessage),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse(b""), Err(ParseError::NotJson));
        // A resource method names its `uri`, whatever `name` says.
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"n","uri":"u"}}"#),
            Ok(Message::Request {
                method: "resources/read".into(),
                target: Some("u".into())
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0"} trailing"#),
            Err(ParseError::NotJson)
        );
    }

    #[test]
    fn text_that_is_not_json_is_a_parse_error_even_when_a_member_is_refused_first() {
        // Found by the `jsonrpc` fuzz target: the unknown member stopped
        // the read before the broken rest was seen.
        for body in [
            &br#"{"jsonrpc":"2.0","Method":"#[..],
            br#"{"extra":1,"id":1,"method":"x" trailing"#,
            br#"{"id":1,"id":2"#,
            br#"[1,"#,
        ] {
            assert_eq!(
                parse(body),
                Err(ParseError::NotJson),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","Method":"x"}"#),
            Err(ParseError::NotMessage)
        );
    }

    #[test]
    fn a_body_that_is_not_utf8_is_a_parse_error_even_where_nothing_is_read() {
        // Found by the `jsonrpc` fuzz target: serde skips the members it
        // ignores (an answer's `error`, the `arguments`) without checking
        // their bytes, so these were forwarded.
        for body in [
            &b"{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":0,\"m\xb0\":\"x\"}}"[..],
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\",\"arguments\":{\"path\xff\":\"/etc\"}}}",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"cursor\":\"\xc3\"}}",
        ] {
            assert_eq!(
                parse(body),
                Err(ParseError::NotJson),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_number_no_double_holds_is_refused_even_where_nothing_is_read() {
        // Found by the `jsonrpc` fuzz target: serde skipped the numbers of
        // the members it ignores without computing them, so these were
        // forwarded; `id` was already read, and refused.
        for body in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1e999}}}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":[-1e400]}}"#,
            br#"{"jsonrpc":"2.0","id":7,"result":{"v":11.7e0000000000800000000000000000}}"#,
            br#"{"jsonrpc":"2.0","id":1e999,"method":"ping"}"#,
        ] {
            assert_eq!(
                parse(body),
                Err(ParseError::NotJson),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Beyond 64 bits, but a double: a number like any other.
        assert!(parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":[1e300,123456789012345678901234567890,1e-999]}}"#).is_ok());
    }
}
