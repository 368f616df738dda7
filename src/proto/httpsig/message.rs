//! The HTTP messages signatures are made over, as plain values.
//!
//! Edges (warp, the upstream client, the CLI's raw-text reader) convert into
//! these; the signature code never sees a framework type. A server's parsed
//! header map (`http::HeaderMap`, the vocabulary type hyper and warp share)
//! is read in place rather than copied (see [`Fields`]).

use std::fmt;

use http::header::{HeaderMap, HeaderValue};

/// The header section of a message: field lines, names compared
/// case-insensitively, values as raw bytes.
///
/// Two forms behind one interface. Lines built one by one (signers, the
/// CLI's raw-text reader, tests) keep names as sent and the order they were
/// added in. A server's parsed [`HeaderMap`] is kept as it is instead of
/// being copied line by line: the gateway verifies a signature over it and
/// forwards the allowed headers from it, on every call. Both forms give the
/// same answers: the values of one field in the order received (all that
/// RFC 9421 §2.1 needs), and every line in the map's order (names
/// lowercase), as the copy made from the map did before.
#[derive(Clone, Default)]
pub struct Fields {
    /// The lines, when built one by one; empty when `map` holds them.
    lines: Vec<(String, Vec<u8>)>,
    /// The parsed header map, when the fields are one.
    map: Option<HeaderMap>,
}

impl Fields {
    /// An empty header section.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lines, turning a header map into lines first: only signers and
    /// tests change a header section, never the per-call path.
    fn lines_mut(&mut self) -> &mut Vec<(String, Vec<u8>)> {
        if let Some(map) = self.map.take() {
            self.lines = map
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect();
        }
        &mut self.lines
    }

    /// Appends one field line.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.lines_mut().push((name.into(), value.into()));
    }

    /// Removes every line of the named field.
    pub fn remove(&mut self, name: &str) {
        self.lines_mut()
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Replaces every line of the named field with one line.
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.remove(name);
        self.append(name, value);
    }

    /// The values of every line of the named field, in order.
    pub fn lines<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        match &self.map {
            None => Either::Left(
                self.lines
                    .iter()
                    .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_slice()),
            ),
            // The map finds names case-insensitively (it lowercases the
            // key it is asked for); a name no header could have finds none.
            Some(map) => Either::Right(map.get_all(name).iter().map(HeaderValue::as_bytes)),
        }
    }

    /// True if the named field has at least one line.
    pub fn contains(&self, name: &str) -> bool {
        self.lines(name).next().is_some()
    }

    /// Every field line, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        match &self.map {
            None => Either::Left(self.lines.iter().map(|(n, v)| (n.as_str(), v.as_slice()))),
            Some(map) => Either::Right(map.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))),
        }
    }

    /// The parsed header map these fields are, if they are one: the
    /// forwarder copies allowed headers from it without parsing them again.
    pub fn header_map(&self) -> Option<&HeaderMap> {
        self.map.as_ref()
    }

    /// Total bytes of names and values: for size limits.
    pub fn byte_len(&self) -> usize {
        self.iter().map(|(n, v)| n.len() + v.len()).sum()
    }
}

impl From<HeaderMap> for Fields {
    fn from(map: HeaderMap) -> Self {
        Self {
            lines: Vec::new(),
            map: Some(map),
        }
    }
}

/// Equal when they hold the same lines in the same order, whatever their
/// form.
impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Fields {}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: values may carry tokens.
        f.debug_list().entries(self.iter().map(|(n, _)| n)).finish()
    }
}

impl<N: Into<String>, V: Into<Vec<u8>>> FromIterator<(N, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Self {
            lines: iter
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
            map: None,
        }
    }
}

/// One of two iterators over the same items (the two forms of [`Fields`]).
enum Either<L, R> {
    Left(L),
    Right(R),
}

impl<T, L: Iterator<Item = T>, R: Iterator<Item = T>> Iterator for Either<L, R> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            Self::Left(l) => l.next(),
            Self::Right(r) => r.next(),
        }
    }
}

/// An HTTP request as the signature sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method, case preserved (RFC 9421 §2.2.1 signs it as sent).
    pub method: String,
    /// The absolute target URI. A server builds it from its configured public
    /// URL and the request path, never from `Host`.
    pub target_uri: String,
    /// The header section.
    pub fields: Fields,
    /// The content, after any transfer coding is removed.
    pub body: Vec<u8>,
    /// The certificate the client proved in the TLS handshake of the
    /// connection the request came on (`mtls`, RFC 9635 §7.3.2): set by the
    /// edge from the connection, never from a header.
    pub client_cert: Option<crate::proto::client_cert::ClientCert>,
}

impl HttpRequest {
    /// A request with no fields and no body.
    pub fn new(method: impl Into<String>, target_uri: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            target_uri: target_uri.into(),
            fields: Fields::new(),
            body: Vec::new(),
            client_cert: None,
        }
    }

    /// Builder-style: adds a field line.
    pub fn with_field(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.fields.append(name, value);
        self
    }

    /// Builder-style: sets the content.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// An HTTP response as the signature sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// The three-digit status code.
    pub status: u16,
    /// The header section.
    pub fields: Fields,
    /// The content.
    pub body: Vec<u8>,
}

/// The message a signature base is built from: a request, or a response
/// together with the request it answers (for `;req` components).
#[derive(Clone, Copy, Debug)]
pub enum Message<'a> {
    /// A request.
    Request(&'a HttpRequest),
    /// A response, and the request it answers when known.
    Response(&'a HttpResponse, Option<&'a HttpRequest>),
}

impl<'a> Message<'a> {
    /// The header section of this message.
    pub fn fields(&self) -> &'a Fields {
        match self {
            Self::Request(r) => &r.fields,
            Self::Response(r, _) => &r.fields,
        }
    }
}

/// Why a target URI could not be taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriError {
    /// Not `scheme://authority[path][?query]`.
    NotAbsolute,
    /// A fragment is not part of a target URI (RFC 9110 §7.1).
    Fragment,
    /// User information is not part of a target URI (RFC 9110 §4.2.4).
    UserInfo,
    /// A byte outside visible ASCII.
    InvalidByte,
}

/// An absolute `http`/`https` target URI, split into the parts RFC 9421's
/// derived components name. Borrowed from the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetUri<'a> {
    /// The whole URI as given.
    pub full: &'a str,
    /// The scheme, as written.
    pub scheme: &'a str,
    /// Host and optional port, as written.
    pub authority: &'a str,
    /// The path, possibly empty.
    pub path: &'a str,
    /// The query without its `?`, if a `?` was present.
    pub query: Option<&'a str>,
}

impl<'a> TargetUri<'a> {
    /// Splits an absolute URI.
    pub fn parse(full: &'a str) -> Result<Self, UriError> {
        if !full.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UriError::InvalidByte);
        }
        let (scheme, rest) = full.split_once("://").ok_or(UriError::NotAbsolute)?;
        let scheme_ok = scheme.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphabetic() || (i > 0 && matches!(b, b'0'..=b'9' | b'+' | b'-' | b'.'))
        });
        if scheme.is_empty() || !scheme_ok {
            return Err(UriError::NotAbsolute);
        }
        if rest.contains('#') {
            return Err(UriError::Fragment);
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        if authority.is_empty() {
            return Err(UriError::NotAbsolute);
        }
        if authority.contains('@') {
            return Err(UriError::UserInfo);
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        Ok(Self {
            full,
            scheme,
            authority,
            path,
            query,
        })
    }

    /// `@scheme`: the scheme, lowercased (RFC 9421 §2.2.4).
    pub fn normalized_scheme(&self) -> String {
        self.scheme.to_ascii_lowercase()
    }

    /// `@authority`: host lowercased, default port removed (RFC 9421 §2.2.3,
    /// RFC 9110 §4.2.3).
    pub fn normalized_authority(&self) -> String {
        let lower = self.authority.to_ascii_lowercase();
        let default_port = match self.normalized_scheme().as_str() {
            "http" => Some(":80"),
            "https" => Some(":443"),
            _ => None,
        };
        match default_port {
            // An IPv6 literal ends in `]`; the port follows it.
            Some(port) if lower.ends_with(port) => lower[..lower.len() - port.len()].to_owned(),
            _ => lower,
        }
    }

    /// `@path`: the path, `/` when empty (RFC 9421 §2.2.6).
    pub fn normalized_path(&self) -> &'a str {
        if self.path.is_empty() { "/" } else { self.path }
    }
}

/// Why raw HTTP/1.1 text could not be read as a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawError {
    /// The first line is not `METHOD target HTTP/x` or `HTTP/x status`.
    StartLine,
    /// A header line has no colon.
    HeaderLine,
    /// An origin-form target with no `Host` field, or a bad URI.
    Target,
}

/// Reads a request written as HTTP/1.1 text (LF or CRLF line ends), the form
/// RFC 9421's examples use. An origin-form target is completed with `Host`
/// and `scheme`. For the `httpsig` CLI and tests, not the network path.
pub fn parse_raw_request(text: &[u8], scheme: &str) -> Result<HttpRequest, RawError> {
    let (start, fields, body) = split_raw(text)?;
    let mut parts = start.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RawError::StartLine);
    };
    if method.is_empty() || !version.starts_with("HTTP/") {
        return Err(RawError::StartLine);
    }
    let target_uri = if target.starts_with('/') {
        let host = fields.lines("host").next().ok_or(RawError::Target)?;
        let host = std::str::from_utf8(host)
            .map_err(|_| RawError::Target)?
            .trim();
        format!("{scheme}://{host}{target}")
    } else {
        target.to_owned()
    };
    TargetUri::parse(&target_uri).map_err(|_| RawError::Target)?;
    Ok(HttpRequest {
        method: method.to_owned(),
        target_uri,
        fields,
        body,
        client_cert: None,
    })
}

/// Reads a response written as HTTP/1.1 text.
pub fn parse_raw_response(text: &[u8]) -> Result<HttpResponse, RawError> {
    let (start, fields, body) = split_raw(text)?;
    let mut parts = start.splitn(3, ' ');
    let (Some(version), Some(status)) = (parts.next(), parts.next()) else {
        return Err(RawError::StartLine);
    };
    if !version.starts_with("HTTP/") || status.len() != 3 {
        return Err(RawError::StartLine);
    }
    let status = status.parse().map_err(|_| RawError::StartLine)?;
    Ok(HttpResponse {
        status,
        fields,
        body,
    })
}

fn split_raw(text: &[u8]) -> Result<(String, Fields, Vec<u8>), RawError> {
    let mut fields = Fields::new();
    let mut rest = text;
    let mut start = None;
    loop {
        let (line, tail) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        rest = tail;
        if start.is_none() {
            start = Some(String::from_utf8(line.to_vec()).map_err(|_| RawError::StartLine)?);
            continue;
        }
        if line.is_empty() {
            break;
        }
        let colon = line
            .iter()
            .position(|b| *b == b':')
            .ok_or(RawError::HeaderLine)?;
        let name = std::str::from_utf8(&line[..colon]).map_err(|_| RawError::HeaderLine)?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(RawError::HeaderLine);
        }
        let value = line[colon + 1..].trim_ascii();
        fields.append(name, value.to_vec());
        if rest.is_empty() {
            break;
        }
    }
    Ok((start.ok_or(RawError::StartLine)?, fields, rest.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_drops_the_default_port_and_lowercases_the_host() {
        let uri = TargetUri::parse("HTTPS://WWW.Example.COM:443/a").unwrap();
        assert_eq!(uri.normalized_authority(), "www.example.com");
        assert_eq!(uri.normalized_scheme(), "https");
        let uri = TargetUri::parse("https://example.com:8443").unwrap();
        assert_eq!(uri.normalized_authority(), "example.com:8443");
        assert_eq!(uri.normalized_path(), "/");
        let uri = TargetUri::parse("http://[::1]:80/").unwrap();
        assert_eq!(uri.normalized_authority(), "[::1]");
    }

    #[test]
    fn fragments_and_userinfo_are_not_target_uris() {
        assert_eq!(TargetUri::parse("https://a/b#c"), Err(UriError::Fragment));
        assert_eq!(TargetUri::parse("https://u:p@a/b"), Err(UriError::UserInfo));
        assert_eq!(TargetUri::parse("/b"), Err(UriError::NotAbsolute));
    }

    /// A parsed header map as hyper builds it, and the same lines built one
    /// by one.
    fn both_forms() -> (Fields, Fields) {
        let lines = [
            ("Content-Type", "application/json"),
            ("Accept", "a"),
            ("Signature-Input", "sig=();created=1"),
            ("accept", " b"),
            ("X-Odd", ""),
        ];
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        // What the HTTP edge copied the map into before it was read in place.
        let copied = map
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        (Fields::from(map), copied)
    }

    #[test]
    fn a_header_map_answers_as_the_lines_copied_from_it() {
        let (map, copied) = both_forms();
        assert!(map.header_map().is_some());
        assert!(copied.header_map().is_none());
        assert_eq!(map, copied);
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            copied.iter().collect::<Vec<_>>()
        );
        assert_eq!(map.byte_len(), copied.byte_len());
        assert_eq!(format!("{map:?}"), format!("{copied:?}"));
        for name in [
            "accept",
            "ACCEPT",
            "Signature-Input",
            "x-odd",
            "absent",
            "bad name",
            "",
        ] {
            assert_eq!(
                map.lines(name).collect::<Vec<_>>(),
                copied.lines(name).collect::<Vec<_>>(),
                "{name}"
            );
            assert_eq!(map.contains(name), copied.contains(name), "{name}");
        }
        // Values of one field in the order received, as they were given.
        assert_eq!(
            map.lines("Accept").collect::<Vec<_>>(),
            [&b"a"[..], &b" b"[..]]
        );
    }

    #[test]
    fn changing_a_header_map_turns_it_into_lines() {
        let (mut map, mut copied) = both_forms();
        map.set("Accept", "c");
        copied.set("Accept", "c");
        assert!(map.header_map().is_none());
        assert_eq!(map, copied);
        map.append("New", "1");
        map.remove("content-type");
        assert_eq!(map.lines("new").collect::<Vec<_>>(), [&b"1"[..]]);
        assert!(!map.contains("Content-Type"));
    }

    #[test]
    fn raw_requests_keep_repeated_fields_in_order() {
        let raw = b"GET /demo?x=1 HTTP/1.1\nHost: example.org\nAccept: a\nAccept:  b \n\n";
        let req = parse_raw_request(raw, "https").unwrap();
        assert_eq!(req.target_uri, "https://example.org/demo?x=1");
        let accept: Vec<_> = req.fields.lines("accept").collect();
        assert_eq!(accept, vec![&b"a"[..], &b"b"[..]]);
        assert!(req.body.is_empty());
    }
}
