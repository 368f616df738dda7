//! Reading untrusted JSON into typed values, naming the field at fault.
//!
//! Requests are decoded to a `serde_json::Value` and then walked by hand
//! rather than by `#[derive(Deserialize)]`: serde's own errors do not say
//! which member was wrong, carry dependency text that must not reach a
//! client, and cannot choose among §3.6 codes (`invalid_request` for a
//! malformed member, `invalid_flag` for a bad flag, `invalid_client` for a
//! key gnapd cannot use). The walk also applies [`super::limits`] as it goes.
//!
//! Every string read here, bar an assertion's opaque value, is refused when
//! it carries a character that can hide or rewrite what a person reads
//! (terminal and bidi controls, [`crate::proto::text::is_hidden`]): names,
//! URIs and access descriptions reach the consent page and the admin's
//! `gnapd grants pending`, and no GNAP value needs one.
//!
//! A [`RequestError`] carries the error code, the path of the field
//! (`access_token[1].access[0].type`) and the [`Reason`]. Its `Display` text
//! contains only gnapd's own words and the field path, never a value the
//! client sent, so it can go into the `description` of the error response.

use std::fmt;

use serde_json::{Map, Value};

use super::error::{ErrorCode, GrantError};
use super::limits::{MAX_DEPTH, MAX_LIST_ITEMS, MAX_STRING_LEN};
use crate::proto::text;

/// Why a field was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The body is not JSON, or its top level is not an object.
    NotJson,
    /// The member has another JSON type than the one expected.
    WrongType {
        /// The RFC 9635 type, e.g. "string", "array of strings".
        expected: &'static str,
    },
    /// A REQUIRED member is absent.
    Missing,
    /// An array or string that must not be empty is.
    Empty,
    /// An array has more items than gnapd accepts.
    TooMany {
        /// The limit.
        max: usize,
    },
    /// The body nests arrays and objects deeper than gnapd accepts.
    TooDeep {
        /// The limit, in levels.
        max: usize,
    },
    /// A string is longer than gnapd accepts.
    TooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// A URI that RFC 9635 requires to be absolute is not (or carries a
    /// fragment where one is forbidden).
    NotAbsoluteUri,
    /// A value that must be ASCII (a nonce) or unreserved characters (an
    /// interaction reference) is not.
    BadCharacters,
    /// A string carries a control character (C0, DEL, C1) or a Unicode bidi
    /// control, which could hide or rewrite what a person is shown.
    HiddenCharacter,
    /// A label repeats another label of the same request (§2.1.2).
    DuplicateLabel,
    /// A token of a multiple-token request has no label (§2.1.2).
    MissingLabel,
    /// A flag appears twice (§2.1.1).
    DuplicateFlag,
    /// A flag that is not registered for use in a request (§2.1.1, §10.3).
    UnsupportedFlag,
    /// The member is not allowed in this message, e.g. `client` in a
    /// modification (§5.3) or `datatypes` in an `mcp` access right.
    NotAllowed,
    /// The key is a reference (§7.1.1); gnapd knows no keys in advance.
    KeyReference,
    /// The key is in a format gnapd does not read (`cert`, `cert#S256`).
    UnsupportedKeyFormat,
    /// The key is in none, or more than one, of the formats (§7.1).
    NotOneKeyFormat,
    /// The proofing method is not `httpsig` (§7.3), or its object form has a
    /// parameter gnapd does not know.
    UnsupportedProof,
    /// The algorithm named is not one gnapd accepts for a presented key.
    UnsupportedAlgorithm,
    /// The request asks for neither an access token nor subject information.
    NothingRequested,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson => f.write_str("the content is not a JSON object"),
            Self::WrongType { expected } => write!(f, "expected {expected}"),
            Self::Missing => f.write_str("required but absent"),
            Self::Empty => f.write_str("must not be empty"),
            Self::TooMany { max } => write!(f, "more than {max} items"),
            Self::TooLong { max } => write!(f, "longer than {max} bytes"),
            Self::TooDeep { max } => write!(f, "nested deeper than {max} levels"),
            Self::NotAbsoluteUri => f.write_str("not an absolute URI without a fragment"),
            Self::BadCharacters => f.write_str("contains characters not allowed here"),
            Self::HiddenCharacter => {
                f.write_str("contains a control or bidirectional formatting character")
            }
            Self::DuplicateLabel => f.write_str("label is not unique within the request"),
            Self::MissingLabel => {
                f.write_str("a label is required when several access tokens are requested")
            }
            Self::DuplicateFlag => f.write_str("flag included more than once"),
            Self::UnsupportedFlag => f.write_str("flag not allowed in a request"),
            Self::NotAllowed => f.write_str("not allowed in this message"),
            Self::KeyReference => f.write_str("keys by reference are not supported"),
            Self::UnsupportedKeyFormat => f.write_str("key format not supported; send a jwk"),
            Self::NotOneKeyFormat => f.write_str("the key must be in exactly one format"),
            Self::UnsupportedProof => f.write_str("proofing method not supported; use httpsig"),
            Self::UnsupportedAlgorithm => f.write_str("algorithm not supported"),
            Self::NothingRequested => {
                f.write_str("the request asks for neither access_token nor subject")
            }
        }
    }
}

/// A request body, or one member of it, that gnapd will not act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RequestError {
    code: ErrorCode,
    field: String,
    reason: Reason,
}

impl RequestError {
    /// An error with the code the AS answers with.
    pub(crate) fn new(code: ErrorCode, at: &Path<'_>, reason: Reason) -> Self {
        Self {
            code,
            field: at.render(),
            reason,
        }
    }

    /// An `invalid_request` error.
    pub(crate) fn invalid(at: &Path<'_>, reason: Reason) -> Self {
        Self::new(ErrorCode::InvalidRequest, at, reason)
    }

    /// The §3.6 code the AS answers with.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The path of the field at fault (`access_token[0].flags[1]`); empty for
    /// the body as a whole.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why it was refused.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The same error under another code: the key rules answer
    /// `invalid_client` in a grant request but `invalid_rotation` or
    /// `key_rotation_not_supported` in a rotation (§6.1.1).
    pub(crate) fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = code;
        self
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "`{}`: {}", self.field, self.reason)
        }
    }
}

/// The `error` member to answer with: the code, and the field and reason as
/// the description (gnapd's own words only, see the module docs).
impl From<&RequestError> for GrantError {
    fn from(err: &RequestError) -> Self {
        GrantError::described(err.code, err.to_string())
    }
}

/// Where in the document a value sits; built on the stack as the walk
/// descends, rendered to text only when an error is reported.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: Segment<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> Path<'a> {
    /// The whole body.
    pub(crate) const fn root() -> Path<'static> {
        Path {
            parent: None,
            segment: Segment::Root,
        }
    }

    /// A member of the object at `self`.
    pub(crate) fn key(&'a self, name: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Key(name),
        }
    }

    /// An item of the array at `self`.
    pub(crate) fn index(&'a self, i: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Index(i),
        }
    }

    fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut at = Some(self);
        while let Some(p) = at {
            segments.push(p.segment);
            at = p.parent;
        }
        let mut out = String::new();
        for segment in segments.iter().rev() {
            match segment {
                Segment::Root => {}
                Segment::Key(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

/// Decodes a body that must be one JSON object, nested at most
/// [`MAX_DEPTH`] levels.
pub(crate) fn body_object(bytes: &[u8]) -> Result<Map<String, Value>, RequestError> {
    if depth(bytes) > MAX_DEPTH {
        return Err(RequestError::invalid(
            &Path::root(),
            Reason::TooDeep { max: MAX_DEPTH },
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(RequestError::invalid(&Path::root(), Reason::NotJson)),
    }
}

/// How deep arrays and objects nest in `bytes`, read as JSON text: one
/// pass, brackets inside strings skipped. Text that is not JSON gets some
/// number; the decoder refuses it after.
fn depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The value as an object.
pub(crate) fn object<'v>(
    value: &'v Value,
    at: &Path<'_>,
) -> Result<&'v Map<String, Value>, RequestError> {
    value
        .as_object()
        .ok_or_else(|| RequestError::invalid(at, Reason::WrongType { expected: "object" }))
}

/// The value as an array of at most `max` items.
pub(crate) fn array<'v>(
    value: &'v Value,
    at: &Path<'_>,
    expected: &'static str,
    max: usize,
) -> Result<&'v [Value], RequestError> {
    let items = value
        .as_array()
        .ok_or_else(|| RequestError::invalid(at, Reason::WrongType { expected }))?;
    if items.len() > max {
        return Err(RequestError::invalid(at, Reason::TooMany { max }));
    }
    Ok(items)
}

/// The value as a string of at most `max` bytes, without a character that
/// can hide text ([`text::is_hidden`]).
pub(crate) fn string_max<'v>(
    value: &'v Value,
    at: &Path<'_>,
    max: usize,
) -> Result<&'v str, RequestError> {
    let text = opaque_string_max(value, at, max)?;
    shown(text, at)?;
    Ok(text)
}

/// The value as a string of at most `max` bytes, whatever its characters:
/// for an opaque value no person reads (an assertion, where a SAML
/// document may have line breaks).
pub(crate) fn opaque_string_max<'v>(
    value: &'v Value,
    at: &Path<'_>,
    max: usize,
) -> Result<&'v str, RequestError> {
    let text = value
        .as_str()
        .ok_or_else(|| RequestError::invalid(at, Reason::WrongType { expected: "string" }))?;
    if text.len() > max {
        return Err(RequestError::invalid(at, Reason::TooLong { max }));
    }
    Ok(text)
}

/// Refuses text that carries a character that can hide or rewrite what a
/// person reads.
pub(crate) fn shown(text: &str, at: &Path<'_>) -> Result<(), RequestError> {
    if text.chars().any(text::is_hidden) {
        return Err(RequestError::invalid(at, Reason::HiddenCharacter));
    }
    Ok(())
}

/// Refuses every member name and string inside `value` that [`shown`]
/// refuses: an access right's members of its own type's design (§8).
pub(crate) fn shown_tree(value: &Value, at: &Path<'_>) -> Result<(), RequestError> {
    match value {
        Value::String(s) => shown(s, at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| shown_tree(item, &at.index(i))),
        Value::Object(map) => map.iter().try_for_each(|(name, item)| {
            let at_member = at.key(name);
            shown(name, &at_member)?;
            shown_tree(item, &at_member)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// Refuses a string over [`MAX_STRING_LEN`] bytes anywhere inside `value`:
/// members kept as sent (an access right's own, a subject identifier's)
/// are stored with a pending grant, bounded like the members gnapd reads.
pub(crate) fn bounded_tree(value: &Value, at: &Path<'_>) -> Result<(), RequestError> {
    match value {
        Value::String(s) if s.len() > MAX_STRING_LEN => Err(RequestError::invalid(
            at,
            Reason::TooLong {
                max: MAX_STRING_LEN,
            },
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| bounded_tree(item, &at.index(i))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(name, item)| bounded_tree(item, &at.key(name))),
        _ => Ok(()),
    }
}

/// The value as a string of at most [`MAX_STRING_LEN`] bytes.
pub(crate) fn string<'v>(value: &'v Value, at: &Path<'_>) -> Result<&'v str, RequestError> {
    string_max(value, at, MAX_STRING_LEN)
}

/// The value as a non-empty string of at most [`MAX_STRING_LEN`] bytes.
pub(crate) fn nonempty_string<'v>(
    value: &'v Value,
    at: &Path<'_>,
) -> Result<&'v str, RequestError> {
    let text = string(value, at)?;
    if text.is_empty() {
        return Err(RequestError::invalid(at, Reason::Empty));
    }
    Ok(text)
}

/// The value as an array of strings, each at most [`MAX_STRING_LEN`] bytes.
pub(crate) fn string_list(value: &Value, at: &Path<'_>) -> Result<Vec<String>, RequestError> {
    let items = array(value, at, "array of strings", MAX_LIST_ITEMS)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(string(item, &at.index(i))?.to_owned());
    }
    Ok(out)
}

/// A REQUIRED member.
pub(crate) fn required<'v>(
    map: &'v Map<String, Value>,
    name: &str,
    at: &Path<'_>,
) -> Result<&'v Value, RequestError> {
    map.get(name)
        .ok_or_else(|| RequestError::invalid(&at.key(name), Reason::Missing))
}

/// True for an absolute URI (RFC 3986 §4.3: a scheme, then `:`) without a
/// fragment. RFC 9635 requires absolute URIs for the finish `uri` (§2.5.2,
/// which also forbids a fragment), the display `uri` and `logo_uri` (§2.3.2).
/// Whether the rest is a well-formed URI, and whether the AS will use it, is
/// for the interaction layer to decide.
pub(crate) fn is_absolute_uri(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let starts_alpha = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    starts_alpha
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !text.contains('#')
        && !text
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_control())
}

/// An absolute URI string (see [`is_absolute_uri`]).
pub(crate) fn absolute_uri(value: &Value, at: &Path<'_>) -> Result<String, RequestError> {
    let text = string(value, at)?;
    if !is_absolute_uri(text) {
        return Err(RequestError::invalid(at, Reason::NotAbsoluteUri));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_render_as_members_and_indexes() {
        let root = Path::root();
        let token = root.key("access_token");
        let second = token.index(1);
        let access = second.key("access");
        let item = access.index(0);
        let kind = item.key("type");
        assert_eq!(kind.render(), "access_token[1].access[0].type");
        assert_eq!(root.render(), "");
    }

    #[test]
    fn the_message_names_the_field_and_never_the_value() {
        let root = Path::root();
        let err = string(&json!(42), &root.key("label")).unwrap_err();
        assert_eq!(err.to_string(), "`label`: expected string");
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        assert_eq!(err.field(), "label");
        assert_eq!(
            serde_json::to_value(GrantError::from(&err)).unwrap(),
            json!({"code": "invalid_request", "description": "`label`: expected string"})
        );
    }

    #[test]
    fn absolute_uris_need_a_scheme_and_no_fragment() {
        for good in [
            "https://client.example.net/return/123455",
            "data:image/png;base64,Eeww...=",
            "com.example.app:/callback",
            "http://localhost:8080/cb?x=1",
        ] {
            assert!(is_absolute_uri(good), "{good}");
        }
        for bad in [
            "/relative",
            "client.example.net",
            "https://a.example/#frag",
            "1http://x",
            "ht tp://x",
            "https://a.example/ x",
            "",
            ":x",
        ] {
            assert!(!is_absolute_uri(bad), "{bad}");
        }
    }

    #[test]
    fn arrays_and_strings_are_bounded() {
        let root = Path::root();
        let long = "x".repeat(MAX_STRING_LEN + 1);
        assert_eq!(
            string(&json!(long), &root.key("s")).unwrap_err().reason(),
            Reason::TooLong {
                max: MAX_STRING_LEN
            }
        );
        let many: Vec<String> = (0..=MAX_LIST_ITEMS).map(|i| i.to_string()).collect();
        assert_eq!(
            string_list(&json!(many), &root.key("l"))
                .unwrap_err()
                .reason(),
            Reason::TooMany {
                max: MAX_LIST_ITEMS
            }
        );
    }

    #[test]
    fn nesting_is_counted_outside_strings_and_bounded() {
        assert_eq!(depth(br#"{"a":[1,{"b":[]}]}"#), 4);
        assert_eq!(depth(br#"{"a":"[[[{{{\"[[["}"#), 1);
        assert_eq!(depth(br#"{"a":"\\","b":[[]]}"#), 3);
        let nested = |levels: usize| {
            let mut body = String::from("{\"a\":");
            body.push_str(&"[".repeat(levels - 1));
            body.push_str(&"]".repeat(levels - 1));
            body.push('}');
            body
        };
        assert!(body_object(nested(MAX_DEPTH).as_bytes()).is_ok());
        let err = body_object(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert_eq!(err.reason(), Reason::TooDeep { max: MAX_DEPTH });
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        assert_eq!(err.to_string(), "nested deeper than 32 levels");
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_invalid_request() {
        for body in [&b"not json"[..], b"[]", b"\"x\"", b"", b"{\"a\":1"] {
            let err = body_object(body).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest);
            assert_eq!(err.reason(), Reason::NotJson);
        }
    }
}
