//! Component identifiers (RFC 9421 §2) and the values they name in a message.

use std::borrow::Cow;

use sfv::{BareItemFromInput, ItemSerializer};

use super::message::{HttpRequest, Message, TargetUri};
use crate::proto::b64;
use crate::proto::structured;

mod value;

pub use value::ValueError;
use value::*;

/// The derived components of RFC 9421 §2.2 gnapd supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Derived {
    /// `@method` (§2.2.1)
    Method,
    /// `@target-uri` (§2.2.2)
    TargetUri,
    /// `@authority` (§2.2.3)
    Authority,
    /// `@scheme` (§2.2.4)
    Scheme,
    /// `@request-target` (§2.2.5)
    RequestTarget,
    /// `@path` (§2.2.6)
    Path,
    /// `@query` (§2.2.7)
    Query,
    /// `@query-param` (§2.2.8)
    QueryParam,
    /// `@status` (§2.2.9)
    Status,
}

impl Derived {
    /// Every derived component, in section order.
    pub const ALL: [Derived; 9] = [
        Self::Method,
        Self::TargetUri,
        Self::Authority,
        Self::Scheme,
        Self::RequestTarget,
        Self::Path,
        Self::Query,
        Self::QueryParam,
        Self::Status,
    ];

    /// The component name, with its `@`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Method => "@method",
            Self::TargetUri => "@target-uri",
            Self::Authority => "@authority",
            Self::Scheme => "@scheme",
            Self::RequestTarget => "@request-target",
            Self::Path => "@path",
            Self::Query => "@query",
            Self::QueryParam => "@query-param",
            Self::Status => "@status",
        }
    }

    /// The identifier as it appears in a signature base, with its quotes.
    const fn quoted(self) -> &'static str {
        match self {
            Self::Method => "\"@method\"",
            Self::TargetUri => "\"@target-uri\"",
            Self::Authority => "\"@authority\"",
            Self::Scheme => "\"@scheme\"",
            Self::RequestTarget => "\"@request-target\"",
            Self::Path => "\"@path\"",
            Self::Query => "\"@query\"",
            Self::QueryParam => "\"@query-param\"",
            Self::Status => "\"@status\"",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// What a component identifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentName<'a> {
    /// A derived component.
    Derived(Derived),
    /// An HTTP field, by its lowercase name.
    Field(&'a str),
}

/// Derived component or field; a field's name is read from the serialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Derived(Derived),
    Field,
}

/// Why a component identifier in `Signature-Input` is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// The identifier is not an sf-string.
    #[error("a component identifier must be a string")]
    NotAString,
    /// An `@` name this implementation does not define (§2.2: MUST fail).
    #[error("unknown derived component `{0}`")]
    UnknownDerived(String),
    /// `@signature-params` cannot be a covered component (§2.3).
    #[error("@signature-params cannot be covered")]
    SignatureParams,
    /// Field names are lowercase in identifiers (§2.1).
    #[error("field component `{0}` is not a lowercase field name")]
    NotLowercase(String),
    /// A parameter RFC 9421 does not define.
    #[error("unknown component parameter `{0}`")]
    UnknownParameter(String),
    /// A defined parameter with a value of the wrong type.
    #[error("component parameter `{0}` has the wrong type")]
    ParameterType(&'static str),
    /// Parameters that cannot be combined or do not apply here (§2.1).
    #[error("component parameter `{0}` does not apply here")]
    ParameterMisplaced(&'static str),
    /// `@query-param` without `name` (§2.2.8).
    #[error("@query-param needs a name parameter")]
    QueryParamName,
    /// Trailer fields (`;tr`) are not supported: gnapd never signs them.
    #[error("trailer components are not supported")]
    Trailers,
}

/// A component identifier: a name plus its parameters, as it appears in the
/// covered-components list and (serialized) in the signature base.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ComponentId {
    kind: Kind,
    /// `;sf`: re-serialize the field as a structured field (§2.1.1).
    sf: bool,
    /// `;key="..."`: one member of a dictionary field (§2.1.2).
    key: Option<String>,
    /// `;bs`: each field line wrapped as a byte sequence (§2.1.3).
    bs: bool,
    /// `;req`: taken from the request a response answers (§2.4).
    req: bool,
    /// `;name="..."`: the query parameter of `@query-param` (§2.2.8).
    param_name: Option<String>,
    /// The canonical serialization, e.g. `"@query-param";name="Pet"`. A
    /// field name is a token, so it needs no escaping and the name is the
    /// text between the first two quotes. Static for plain derived
    /// components: the common identifiers cost no allocation.
    serialized: Cow<'static, str>,
}

impl ComponentId {
    /// A derived component with no parameters.
    pub fn derived(d: Derived) -> Self {
        Self::plain(Kind::Derived(d), Cow::Borrowed(d.quoted()))
    }

    /// A field with no parameters; the name is lowercased.
    pub fn field(name: &str) -> Self {
        let mut quoted = quote(name);
        quoted.make_ascii_lowercase();
        Self::plain(Kind::Field, Cow::Owned(quoted))
    }

    fn plain(kind: Kind, serialized: Cow<'static, str>) -> Self {
        Self {
            kind,
            sf: false,
            key: None,
            bs: false,
            req: false,
            param_name: None,
            serialized,
        }
    }

    /// Parses an identifier written as an sf-item, e.g.
    /// `"signature";key="sig1"`.
    pub fn parse(text: &str) -> Result<Self, IdentifierError> {
        let item = structured::item(text.as_bytes()).map_err(|_| IdentifierError::NotAString)?;
        Self::from_item(&item)
    }

    /// Builds an identifier from an item of a covered-components list.
    pub fn from_item(item: &structured::Item<'_>) -> Result<Self, IdentifierError> {
        let text = item
            .bare
            .as_string()
            .ok_or(IdentifierError::NotAString)?
            .as_str();
        let mut id = if text.starts_with('@') {
            if text == "@signature-params" {
                return Err(IdentifierError::SignatureParams);
            }
            let d = Derived::from_name(text)
                .ok_or_else(|| IdentifierError::UnknownDerived(text.to_owned()))?;
            Self::plain(Kind::Derived(d), Cow::Borrowed(d.quoted()))
        } else {
            // RFC 9110 §5.1: a field name is a token; §2.1 here: lowercase.
            let is_tchar = |b: u8| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            };
            if text.is_empty() || !text.bytes().all(is_tchar) {
                return Err(IdentifierError::NotLowercase(text.to_owned()));
            }
            Self::plain(Kind::Field, Cow::Owned(quote(text)))
        };
        for (key, value) in &item.params {
            match key.as_str() {
                "sf" => id.sf = flag(value, "sf")?,
                "bs" => id.bs = flag(value, "bs")?,
                "req" => id.req = flag(value, "req")?,
                "tr" => return Err(IdentifierError::Trailers),
                "key" => id.key = Some(string(value, "key")?),
                "name" => id.param_name = Some(string(value, "name")?),
                other => return Err(IdentifierError::UnknownParameter(other.to_owned())),
            }
        }
        id.check_combination()?;
        if !item.params.is_empty() {
            let mut out = String::with_capacity(text.len() + 16);
            structured::serialize_item(item, &mut out);
            id.serialized = Cow::Owned(out);
        }
        Ok(id)
    }

    fn check_combination(&self) -> Result<(), IdentifierError> {
        let is_field = self.kind == Kind::Field;
        if !is_field {
            if self.sf {
                return Err(IdentifierError::ParameterMisplaced("sf"));
            }
            if self.key.is_some() {
                return Err(IdentifierError::ParameterMisplaced("key"));
            }
            if self.bs {
                return Err(IdentifierError::ParameterMisplaced("bs"));
            }
        }
        // §2.1.3: bs cannot be combined with sf or key.
        if self.bs && (self.sf || self.key.is_some()) {
            return Err(IdentifierError::ParameterMisplaced("bs"));
        }
        let is_query_param = self.kind == Kind::Derived(Derived::QueryParam);
        match (&self.param_name, is_query_param) {
            (None, true) => Err(IdentifierError::QueryParamName),
            (Some(_), false) => Err(IdentifierError::ParameterMisplaced("name")),
            _ => Ok(()),
        }
    }

    /// The name this identifier refers to.
    pub fn name(&self) -> ComponentName<'_> {
        match self.kind {
            Kind::Derived(d) => ComponentName::Derived(d),
            Kind::Field => {
                let rest = self.serialized.get(1..).unwrap_or("");
                ComponentName::Field(rest.split('"').next().unwrap_or(""))
            }
        }
    }

    /// True for a plain field component with no parameters named `field`.
    pub fn is_plain_field(&self, field: &str) -> bool {
        matches!(self.name(), ComponentName::Field(f) if f == field)
            && !self.sf
            && !self.bs
            && !self.req
            && self.key.is_none()
    }

    /// True for a plain field component `field;key="member"`.
    pub fn is_dictionary_member(&self, field: &str, member: &str) -> bool {
        matches!(self.name(), ComponentName::Field(f) if f == field)
            && self.key.as_deref() == Some(member)
            && !self.sf
            && !self.req
    }

    /// True for the derived component `d` with no parameters.
    pub fn is_derived(&self, d: Derived) -> bool {
        self.kind == Kind::Derived(d) && !self.req
    }

    /// The canonical serialization used in the signature base.
    pub fn as_str(&self) -> &str {
        &self.serialized
    }

    /// Appends this component's value for `message` to `out` (§2.5 step 2).
    pub fn write_value(&self, message: Message<'_>, out: &mut Vec<u8>) -> Result<(), ValueError> {
        let message = if self.req {
            match message {
                Message::Response(_, Some(request)) => Message::Request(request),
                Message::Response(_, None) => return Err(ValueError::NoRelatedRequest),
                Message::Request(_) => return Err(ValueError::ReqOnRequest),
            }
        } else {
            message
        };
        let start = out.len();
        match self.name() {
            ComponentName::Derived(d) => self.write_derived(d, message, out)?,
            ComponentName::Field(f) => self.write_field(f, message, out)?,
        }
        // §2.5: a value with a line break would forge extra base lines.
        if out[start..].iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(ValueError::ControlCharacter(self.serialized.to_string()));
        }
        Ok(())
    }

    fn write_derived(
        &self,
        d: Derived,
        message: Message<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), ValueError> {
        if d == Derived::Status {
            return match message {
                Message::Response(resp, _) if (100..=999).contains(&resp.status) => {
                    out.extend_from_slice(format!("{:03}", resp.status).as_bytes());
                    Ok(())
                }
                Message::Response(..) => Err(ValueError::BadStatus),
                Message::Request(_) => Err(ValueError::NotInRequest(d.name())),
            };
        }
        let Message::Request(request) = message else {
            return Err(ValueError::NotInResponse(d.name()));
        };
        if d == Derived::Method {
            out.extend_from_slice(request.method.as_bytes());
            return Ok(());
        }
        let uri = target(request)?;
        match d {
            Derived::TargetUri => out.extend_from_slice(uri.full.as_bytes()),
            Derived::Authority => out.extend_from_slice(uri.normalized_authority().as_bytes()),
            Derived::Scheme => out.extend_from_slice(uri.normalized_scheme().as_bytes()),
            Derived::RequestTarget => {
                out.extend_from_slice(uri.normalized_path().as_bytes());
                if let Some(q) = uri.query {
                    out.push(b'?');
                    out.extend_from_slice(q.as_bytes());
                }
            }
            Derived::Path => out.extend_from_slice(uri.normalized_path().as_bytes()),
            Derived::Query => {
                out.push(b'?');
                out.extend_from_slice(uri.query.unwrap_or("").as_bytes());
            }
            Derived::QueryParam => {
                let name = self.param_name.as_deref().unwrap_or("");
                write_query_param(uri.query.unwrap_or(""), name, out)?;
            }
            Derived::Method | Derived::Status => {}
        }
        Ok(())
    }

    fn write_field(
        &self,
        name: &str,
        message: Message<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), ValueError> {
        let fields = message.fields();
        let mut lines = fields.lines(name).peekable();
        if lines.peek().is_none() {
            return Err(ValueError::MissingField(name.to_owned()));
        }
        if self.bs {
            // §2.1.3: each line on its own, trimmed, as a byte sequence.
            for (i, line) in lines.enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.push(b':');
                out.extend_from_slice(b64::encode_std(line.trim_ascii()).as_bytes());
                out.push(b':');
            }
            return Ok(());
        }
        let plain = self.key.is_none() && !self.sf;
        let mut combined = Vec::new();
        let target = if plain { &mut *out } else { &mut combined };
        for (i, line) in lines.enumerate() {
            if i > 0 {
                target.extend_from_slice(b", ");
            }
            push_unfolded(line.trim_ascii(), target);
        }
        if plain {
            return Ok(());
        }
        self.write_structured(name, &combined, out)
    }

    fn write_structured(
        &self,
        name: &str,
        combined: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), ValueError> {
        let malformed = || ValueError::NotStructured(name.to_owned());
        let kind = if self.key.is_some() {
            SfType::Dictionary
        } else {
            sf_type(name).ok_or_else(|| ValueError::UnknownStructuredType(name.to_owned()))?
        };
        let text = match kind {
            SfType::Dictionary => {
                let dict: sfv::Dictionary = sfv::Parser::new(combined)
                    .parse()
                    .map_err(|_| malformed())?;
                match &self.key {
                    Some(key) => {
                        let entry = dict.get(key.as_str()).ok_or_else(|| {
                            ValueError::MissingMember(name.to_owned(), key.clone())
                        })?;
                        serialize_entry(entry)
                    }
                    None => {
                        let mut ser = sfv::DictSerializer::new();
                        ser.members(&dict);
                        ser.finish().unwrap_or_default()
                    }
                }
            }
            SfType::List => {
                let list: sfv::List = sfv::Parser::new(combined)
                    .parse()
                    .map_err(|_| malformed())?;
                let mut ser = sfv::ListSerializer::new();
                ser.members(&list);
                ser.finish().unwrap_or_default()
            }
            SfType::Item => {
                let item: sfv::Item = sfv::Parser::new(combined)
                    .parse()
                    .map_err(|_| malformed())?;
                ItemSerializer::new()
                    .bare_item(&item.bare_item)
                    .parameters(&item.params)
                    .finish()
            }
        };
        out.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

/// Serializes one dictionary member's value (an item or an inner list) as
/// RFC 9421 §2.1.2 asks: the value alone, without the key.
fn serialize_entry(entry: &sfv::ListEntry) -> String {
    let mut ser = sfv::ListSerializer::new();
    ser.members(std::iter::once(entry));
    ser.finish().unwrap_or_default()
}

/// `"name"`: a field name needs no escaping (it is a token).
fn quote(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    quoted.push_str(name);
    quoted.push('"');
    quoted
}

fn flag(value: &BareItemFromInput<'_>, name: &'static str) -> Result<bool, IdentifierError> {
    match value.as_boolean() {
        Some(true) => Ok(true),
        _ => Err(IdentifierError::ParameterType(name)),
    }
}

fn string(value: &BareItemFromInput<'_>, name: &'static str) -> Result<String, IdentifierError> {
    value
        .as_string()
        .map(|s| s.as_str().to_owned())
        .ok_or(IdentifierError::ParameterType(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::httpsig::message::HttpRequest;

    fn value(id: &str, req: &HttpRequest) -> Result<String, ValueError> {
        let id = ComponentId::parse(id).unwrap();
        let mut out = Vec::new();
        id.write_value(Message::Request(req), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn query_param_values_are_decoded_and_reencoded_as_rfc9421_2_2_8_shows() {
        let req = HttpRequest::new(
            "GET",
            "https://www.example.com/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something",
        );
        assert_eq!(
            value(r#""@query-param";name="var""#, &req).unwrap(),
            "this%20is%20a%20big%0Amultiline%20value"
        );
        assert_eq!(
            value(r#""@query-param";name="bar""#, &req).unwrap(),
            "with%20plus%20whitespace"
        );
        assert_eq!(
            value(r#""@query-param";name="fa%C3%A7ade%22%3A%20""#, &req).unwrap(),
            "something"
        );
    }

    #[test]
    fn query_param_absent_or_repeated_is_an_error() {
        let req = HttpRequest::new("GET", "https://e.com/?a=1&a=2&b=");
        assert_eq!(
            value(r#""@query-param";name="a""#, &req),
            Err(ValueError::RepeatedQueryParam("a".into()))
        );
        assert_eq!(
            value(r#""@query-param";name="c""#, &req),
            Err(ValueError::MissingQueryParam("c".into()))
        );
        assert_eq!(value(r#""@query-param";name="b""#, &req).unwrap(), "");
    }

    #[test]
    fn query_and_path_are_normalized_when_empty() {
        let req = HttpRequest::new("GET", "https://e.com");
        assert_eq!(value(r#""@query""#, &req).unwrap(), "?");
        assert_eq!(value(r#""@path""#, &req).unwrap(), "/");
        assert_eq!(value(r#""@request-target""#, &req).unwrap(), "/");
    }

    #[test]
    fn the_method_is_signed_as_sent() {
        let req = HttpRequest::new("patch", "https://e.com/");
        assert_eq!(value(r#""@method""#, &req).unwrap(), "patch");
    }

    #[test]
    fn field_lines_are_trimmed_and_joined() {
        let req = HttpRequest::new("GET", "https://e.com/")
            .with_field("X-A", "  padded  ")
            .with_field("x-a", "b")
            .with_field("x-fold", "one\r\n   two");
        assert_eq!(value(r#""x-a""#, &req).unwrap(), "padded, b");
        assert_eq!(value(r#""x-a";bs"#, &req).unwrap(), ":cGFkZGVk:, :Yg==:");
        assert_eq!(value(r#""x-fold""#, &req).unwrap(), "one two");
    }

    #[test]
    fn key_takes_the_last_member_across_lines() {
        let req = HttpRequest::new("GET", "https://e.com/")
            .with_field("signature", "a=:AA==:")
            .with_field("signature", "a=:AQ==:, b=:Ag==:");
        assert_eq!(value(r#""signature";key="a""#, &req).unwrap(), ":AQ==:");
        assert_eq!(
            value(r#""signature";sf"#, &req).unwrap(),
            "a=:AQ==:, b=:Ag==:"
        );
        assert_eq!(
            value(r#""signature";key="z""#, &req),
            Err(ValueError::MissingMember("signature".into(), "z".into()))
        );
    }

    #[test]
    fn identifiers_reject_what_rfc9421_does_not_define() {
        assert_eq!(
            ComponentId::parse(r#""@nope""#),
            Err(IdentifierError::UnknownDerived("@nope".into()))
        );
        assert_eq!(
            ComponentId::parse(r#""X-A""#),
            Err(IdentifierError::NotLowercase("X-A".into()))
        );
        assert_eq!(
            ComponentId::parse(r#""x-a";bs;sf"#),
            Err(IdentifierError::ParameterMisplaced("bs"))
        );
        assert_eq!(
            ComponentId::parse(r#""@query-param""#),
            Err(IdentifierError::QueryParamName)
        );
        assert_eq!(
            ComponentId::parse(r#""x-a";foo"#),
            Err(IdentifierError::UnknownParameter("foo".into()))
        );
        assert_eq!(
            ComponentId::parse(r#""@signature-params""#),
            Err(IdentifierError::SignatureParams)
        );
        assert_eq!(
            ComponentId::parse(r#""x-a";tr"#),
            Err(IdentifierError::Trailers)
        );
    }

    #[test]
    fn a_missing_field_is_an_error_not_an_empty_value() {
        let req = HttpRequest::new("GET", "https://e.com/");
        assert_eq!(
            value(r#""x-missing""#, &req),
            Err(ValueError::MissingField("x-missing".into()))
        );
    }
}
