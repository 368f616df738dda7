//! Building a component's value: the target URI, unfolded field lines,
//! structured-field re-serialization, query parameters; and why a
//! covered component has no value.

use super::*;

pub(super) fn target(request: &HttpRequest) -> Result<TargetUri<'_>, ValueError> {
    TargetUri::parse(&request.target_uri).map_err(|_| ValueError::BadTargetUri)
}

/// Replaces obsolete line folding (CRLF or LF followed by whitespace) with a
/// single space (§2.1 step 3).
pub(super) fn push_unfolded(line: &[u8], out: &mut Vec<u8>) {
    if !line.iter().any(|b| matches!(b, b'\r' | b'\n')) {
        out.extend_from_slice(line);
        return;
    }
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b == b'\r' || b == b'\n' {
            let mut j = i;
            while j < line.len() && matches!(line[j], b'\r' | b'\n' | b' ' | b'\t') {
                j += 1;
            }
            let folded = line[i..j].iter().any(|c| matches!(c, b' ' | b'\t'));
            if folded {
                // Drop whitespace already pushed before the fold.
                while out.last().is_some_and(|c| matches!(c, b' ' | b'\t')) {
                    out.pop();
                }
                out.push(b' ');
                i = j;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
}

/// The structured type of a field, for `;sf` (§2.1.1): only fields whose
/// specification says they are structured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SfType {
    Item,
    List,
    Dictionary,
}

pub(super) fn sf_type(field: &str) -> Option<SfType> {
    Some(match field {
        "signature"
        | "signature-input"
        | "accept-signature"
        | "content-digest"
        | "repr-digest"
        | "want-content-digest"
        | "want-repr-digest"
        | "priority"
        | "cdn-cache-control" => SfType::Dictionary,
        "cache-status" | "proxy-status" | "accept-ch" | "client-cert-chain" => SfType::List,
        "client-cert" | "mcp-protocol-version" | "mcp-session-id" => SfType::Item,
        _ => return None,
    })
}

/// `@query-param` (§2.2.8): the named parameter's value, decoded as
/// `application/x-www-form-urlencoded` and re-encoded with percent-encoding.
/// A name that is absent or repeated is an error.
pub(super) fn write_query_param(
    query: &str,
    name: &str,
    out: &mut Vec<u8>,
) -> Result<(), ValueError> {
    let mut found: Option<Vec<u8>> = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let mut encoded_name = Vec::with_capacity(raw_name.len());
        percent_encode(&form_decode(raw_name), &mut encoded_name);
        if encoded_name != name.as_bytes() {
            continue;
        }
        if found.is_some() {
            return Err(ValueError::RepeatedQueryParam(name.to_owned()));
        }
        let mut value = Vec::with_capacity(raw_value.len());
        percent_encode(&form_decode(raw_value), &mut value);
        found = Some(value);
    }
    let value = found.ok_or_else(|| ValueError::MissingQueryParam(name.to_owned()))?;
    out.extend_from_slice(&value);
    Ok(())
}

/// WHATWG URL §5.1 step 3: `+` is a space, then percent-decode (a `%` not
/// followed by two hex digits stays as it is).
pub(super) fn form_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

pub(super) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes with the `application/x-www-form-urlencoded` percent-encode
/// set (WHATWG URL §1.3): everything but ASCII alphanumerics and `*-._`, and a
/// space as `%20` (RFC 9421 §2.2.8), uppercase hex.
pub(super) fn percent_encode(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]]);
        }
    }
}

/// Why a covered component has no value in this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A covered field is absent (§2.5: MUST fail).
    #[error("covered field `{0}` is absent")]
    MissingField(String),
    /// `;key` names a member the dictionary lacks.
    #[error("field `{0}` has no member `{1}`")]
    MissingMember(String, String),
    /// `;sf` on a field whose structured type is not known.
    #[error("field `{0}` has no known structured type")]
    UnknownStructuredType(String),
    /// The field does not parse as its structured type.
    #[error("field `{0}` is not a valid structured field")]
    NotStructured(String),
    /// A request-only derived component in a response without `;req`.
    #[error("{0} is not defined for responses")]
    NotInResponse(&'static str),
    /// `@status` in a request.
    #[error("{0} is not defined for requests")]
    NotInRequest(&'static str),
    /// `;req` on a response whose request is not known.
    #[error("the related request is not available")]
    NoRelatedRequest,
    /// `;req` on a request.
    #[error(";req applies only to responses")]
    ReqOnRequest,
    /// The request's target URI is not an absolute URI.
    #[error("the target URI is not an absolute URI")]
    BadTargetUri,
    /// The response status is not three digits.
    #[error("the status code is not three digits")]
    BadStatus,
    /// `@query-param` names a parameter that is absent (§2.2.8: MUST fail).
    #[error("query parameter `{0}` is absent")]
    MissingQueryParam(String),
    /// `@query-param` names a parameter that occurs more than once.
    #[error("query parameter `{0}` occurs more than once")]
    RepeatedQueryParam(String),
    /// A value would put a line break into the signature base.
    #[error("component {0} contains a control character")]
    ControlCharacter(String),
}
