//! Subject information and the end user (RFC 9635 §2.2, §2.4, §3.4).
//!
//! Subject identifiers are RFC 9493 objects: a REQUIRED `format` and members
//! that depend on it (`id` for `opaque`, `email` for `email`, …). gnapd keeps
//! the members as sent; which formats it releases or trusts is policy.
//! Assertions are `{format, value}` with the assertion serialized as a JSON
//! string (§3.4), e.g. an ID token.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::limits::{MAX_ASSERTION_LEN, MAX_EXTRA_MEMBERS, MAX_LIST_ITEMS};
use super::reader::{self, Path, Reason, RequestError};

/// A subject identifier (RFC 9493 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectIdentifier {
    /// `format`, e.g. `opaque`, `email`, `iss_sub`, `did`.
    pub format: String,
    /// The format's own members, as sent.
    #[serde(flatten)]
    pub members: Map<String, Value>,
}

/// An assertion (§3.4): its format and its value as a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assertion {
    /// `format`: `id_token`, `saml2`, or another registered format. REQUIRED.
    pub format: String,
    /// `value`: the assertion's serialization. REQUIRED.
    pub value: String,
}

/// The `subject` member of a grant request (§2.2): what the client wants to
/// learn about the RO. Every member is OPTIONAL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubjectRequest {
    /// `sub_id_formats`: the RFC 9493 formats wanted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_id_formats: Option<Vec<String>>,
    /// `assertion_formats`: the assertion formats wanted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assertion_formats: Option<Vec<String>>,
    /// `sub_ids`: whom the request is about; "all identifiers … MUST identify
    /// the same subject". Absent: the current user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_ids: Option<Vec<SubjectIdentifier>>,
}

/// The `user` member of a grant request (§2.4): who the end user is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum User {
    /// By value: hints, never authoritative (§2.4).
    Value(UserInfo),
    /// By reference (§2.4.1), an opaque string the AS issued; unknown
    /// references are `unknown_user`.
    Reference(String),
}

/// The end user by value (§2.4). Both members are OPTIONAL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// `sub_ids`: identifiers of the end user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_ids: Option<Vec<SubjectIdentifier>>,
    /// `assertions`: assertions about the end user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assertions: Option<Vec<Assertion>>,
}

/// The `subject` member of a grant response (§3.4). Returned only when the AS
/// is sure the RO and the end user are the same party.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectResponse {
    /// `sub_ids`: identifiers of the RO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_ids: Option<Vec<SubjectIdentifier>>,
    /// `assertions`: assertions about the RO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertions: Option<Vec<Assertion>>,
    /// `updated_at`: RFC 3339 time the account was last updated. RECOMMENDED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl<'de> Deserialize<'de> for SubjectIdentifier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        parse_subject_identifier(&value, &Path::root().key("sub_ids")).map_err(de::Error::custom)
    }
}

/// Reads `subject` (§2.2).
pub(crate) fn parse_subject_request(
    value: &Value,
    at: &Path<'_>,
) -> Result<SubjectRequest, RequestError> {
    let map = reader::object(value, at)?;
    let mut out = SubjectRequest::default();
    if let Some(v) = map.get("sub_id_formats") {
        out.sub_id_formats = Some(reader::string_list(v, &at.key("sub_id_formats"))?);
    }
    if let Some(v) = map.get("assertion_formats") {
        out.assertion_formats = Some(reader::string_list(v, &at.key("assertion_formats"))?);
    }
    if let Some(v) = map.get("sub_ids") {
        out.sub_ids = Some(parse_subject_identifiers(v, &at.key("sub_ids"))?);
    }
    Ok(out)
}

/// Reads `user` (§2.4, §2.4.1).
pub(crate) fn parse_user(value: &Value, at: &Path<'_>) -> Result<User, RequestError> {
    if value.is_string() {
        return Ok(User::Reference(
            reader::nonempty_string(value, at)?.to_owned(),
        ));
    }
    let map = reader::object(value, at).map_err(|_| {
        RequestError::invalid(
            at,
            Reason::WrongType {
                expected: "object or string",
            },
        )
    })?;
    let mut out = UserInfo::default();
    if let Some(v) = map.get("sub_ids") {
        out.sub_ids = Some(parse_subject_identifiers(v, &at.key("sub_ids"))?);
    }
    if let Some(v) = map.get("assertions") {
        let at_list = at.key("assertions");
        let items = reader::array(v, &at_list, "array of objects", MAX_LIST_ITEMS)?;
        let mut assertions = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            assertions.push(parse_assertion(item, &at_list.index(i))?);
        }
        out.assertions = Some(assertions);
    }
    Ok(User::Value(out))
}

fn parse_subject_identifiers(
    value: &Value,
    at: &Path<'_>,
) -> Result<Vec<SubjectIdentifier>, RequestError> {
    let items = reader::array(value, at, "array of objects", MAX_LIST_ITEMS)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(parse_subject_identifier(item, &at.index(i))?);
    }
    Ok(out)
}

fn parse_subject_identifier(
    value: &Value,
    at: &Path<'_>,
) -> Result<SubjectIdentifier, RequestError> {
    let map = reader::object(value, at)?;
    let format = reader::nonempty_string(reader::required(map, "format", at)?, &at.key("format"))?
        .to_owned();
    if map.len() > MAX_EXTRA_MEMBERS {
        return Err(RequestError::invalid(
            at,
            Reason::TooMany {
                max: MAX_EXTRA_MEMBERS,
            },
        ));
    }
    for (name, member) in map {
        reader::bounded_tree(member, &at.key(name))?;
    }
    let mut members = map.clone();
    // Not `remove`: with serde_json's `preserve_order` (josekit turns it on)
    // it swaps the last member into the gap, so the identifier's members
    // changed order each time it was read back (found by the
    // `grant_request` fuzz target).
    members.shift_remove("format");
    Ok(SubjectIdentifier { format, members })
}

fn parse_assertion(value: &Value, at: &Path<'_>) -> Result<Assertion, RequestError> {
    let map = reader::object(value, at)?;
    let format = reader::nonempty_string(reader::required(map, "format", at)?, &at.key("format"))?
        .to_owned();
    let value = reader::opaque_string_max(
        reader::required(map, "value", at)?,
        &at.key("value"),
        MAX_ASSERTION_LEN,
    )?
    .to_owned();
    Ok(Assertion { format, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(value: Value) -> Result<User, RequestError> {
        parse_user(&value, &Path::root().key("user"))
    }

    #[test]
    fn section_2_4_user_by_value_and_by_reference() {
        let wire = json!({
            "sub_ids": [{"format": "opaque", "id": "J2G8G8O4AZ"}],
            "assertions": [{"format": "id_token", "value": "eyj..."}]
        });
        let User::Value(info) = user(wire.clone()).unwrap() else {
            panic!("by value expected");
        };
        let ids = info.sub_ids.as_ref().unwrap();
        assert_eq!(ids[0].format, "opaque");
        assert_eq!(ids[0].members["id"], "J2G8G8O4AZ");
        assert_eq!(serde_json::to_value(User::Value(info)).unwrap(), wire);

        assert_eq!(
            user(json!("XUT2MFM1XBIKJKSDU8QM")).unwrap(),
            User::Reference("XUT2MFM1XBIKJKSDU8QM".into())
        );
    }

    #[test]
    fn section_2_2_subject_request() {
        let wire = json!({
            "sub_id_formats": ["iss_sub", "opaque"],
            "assertion_formats": ["id_token", "saml2"]
        });
        let subject = parse_subject_request(&wire, &Path::root().key("subject")).unwrap();
        assert_eq!(subject.assertion_formats.as_ref().unwrap()[1], "saml2");
        assert_eq!(serde_json::to_value(&subject).unwrap(), wire);
    }

    #[test]
    fn identifiers_need_a_format_and_assertions_a_value() {
        let err = user(json!({"sub_ids": [{"id": "x"}]})).unwrap_err();
        assert_eq!(err.field(), "user.sub_ids[0].format");
        let err = user(json!({"assertions": [{"format": "id_token"}]})).unwrap_err();
        assert_eq!(err.field(), "user.assertions[0].value");
        let err = user(json!(3)).unwrap_err();
        assert_eq!(err.field(), "user");
    }

    #[test]
    fn section_3_4_subject_response_round_trips() {
        let wire = json!({
            "sub_ids": [{"format": "opaque", "id": "XUT2MFM1XBIKJKSDU8QM"}],
            "assertions": [{"format": "id_token", "value": "eyj..."}]
        });
        let subject: SubjectResponse = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(serde_json::to_value(&subject).unwrap(), wire);
    }

    #[test]
    fn an_identifier_reads_back_with_its_members_in_the_same_order() {
        // Found by the `grant_request` fuzz target: each read swapped the
        // last member into `format`'s place, so a stored request changed
        // bytes every time it was read and written again.
        let text = r#"{"format":"opaque","id":"J","email":"u@example.com","x":1}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        let id = parse_subject_identifier(&value, &Path::root()).unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), text);
        let again: SubjectIdentifier = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&again).unwrap(), text);
    }

    #[test]
    fn an_identifiers_own_strings_are_bounded() {
        // Found by the `grant_request` fuzz target: a 2,392-byte `uri` in a
        // user's identifier was kept, bounded only by the body.
        let long = "x".repeat(crate::proto::gnap::limits::MAX_STRING_LEN + 1);
        for id in [
            json!({"format": "uri", "uri": long}),
            json!({"format": "aliases", "identifiers": [{"format": "opaque", "id": long}]}),
        ] {
            let err = user(json!({"sub_ids": [id]})).unwrap_err();
            assert!(
                err.field().starts_with("user.sub_ids[0]"),
                "{}",
                err.field()
            );
        }
        let fits = "x".repeat(crate::proto::gnap::limits::MAX_STRING_LEN);
        assert!(user(json!({"sub_ids": [{"format": "uri", "uri": fits}]})).is_ok());
    }
}
