//! Reading a grant request (§2) into its types: every member checked,
//! bounded and decoded before anything acts on it.

use super::*;

/// Parses a grant request body (§2). The caller has already bounded the body
/// size and checked the content type.
pub fn parse_grant_request(body: &[u8]) -> Result<GrantRequest, RequestError> {
    parse_grant_object(&reader::body_object(body)?)
}

pub(crate) fn parse_grant_object(map: &Map<String, Value>) -> Result<GrantRequest, RequestError> {
    let root = Path::root();
    // RFC 9767 §4 (deriving a downstream token) registers this member; gnapd
    // derives no token from another, and granting an unrelated token instead
    // would mislead the RS that asked, so the request is refused.
    if map.contains_key("existing_access_token") {
        return Err(RequestError::invalid(
            &root.key("existing_access_token"),
            Reason::NotAllowed,
        ));
    }
    let client = parse_client(reader::required(map, "client", &root)?, &root.key("client"))?;
    let access_token = optional(map, "access_token", &root, parse_access_token_requests)?;
    let subject = optional(map, "subject", &root, parse_subject_request)?;
    if access_token.is_none() && subject.is_none() {
        return Err(RequestError::invalid(&root, Reason::NothingRequested));
    }
    Ok(GrantRequest {
        access_token,
        subject,
        client,
        user: optional(map, "user", &root, parse_user)?,
        interact: optional(map, "interact", &root, parse_interact)?,
    })
}

/// Reads an OPTIONAL member with `parse`.
pub(crate) fn optional<T>(
    map: &Map<String, Value>,
    name: &str,
    at: &Path<'_>,
    parse: impl FnOnce(&Value, &Path<'_>) -> Result<T, RequestError>,
) -> Result<Option<T>, RequestError> {
    map.get(name).map(|v| parse(v, &at.key(name))).transpose()
}

/// Reads `access_token` (§2.1).
pub(crate) fn parse_access_token_requests(
    value: &Value,
    at: &Path<'_>,
) -> Result<AccessTokenRequests, RequestError> {
    match value {
        Value::Object(_) => parse_token_request(value, at).map(AccessTokenRequests::Single),
        Value::Array(_) => {
            let items = reader::array(value, at, "array of objects", MAX_ACCESS_TOKENS)?;
            if items.is_empty() {
                return Err(RequestError::invalid(at, Reason::Empty));
            }
            let mut out: Vec<AccessTokenRequest> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let at_item = at.index(i);
                let token = parse_token_request(item, &at_item)?;
                let at_label = at_item.key("label");
                let Some(label) = &token.label else {
                    return Err(RequestError::invalid(&at_label, Reason::MissingLabel));
                };
                if out.iter().any(|t| t.label.as_ref() == Some(label)) {
                    return Err(RequestError::invalid(&at_label, Reason::DuplicateLabel));
                }
                out.push(token);
            }
            Ok(AccessTokenRequests::Multiple(out))
        }
        _ => Err(RequestError::invalid(
            at,
            Reason::WrongType {
                expected: "object or array of objects",
            },
        )),
    }
}

pub(super) fn parse_token_request(
    value: &Value,
    at: &Path<'_>,
) -> Result<AccessTokenRequest, RequestError> {
    let map = reader::object(value, at)?;
    let access = parse_access_list(reader::required(map, "access", at)?, &at.key("access"))?;
    let label = match map.get("label") {
        Some(v) => Some(reader::nonempty_string(v, &at.key("label"))?.to_owned()),
        None => None,
    };
    let mut flags = Vec::new();
    if let Some(v) = map.get("flags") {
        let at_flags = at.key("flags");
        let items = reader::array(v, &at_flags, "array of strings", MAX_LIST_ITEMS)?;
        for (i, item) in items.iter().enumerate() {
            let at_flag = at_flags.index(i);
            let flag = match reader::string(item, &at_flag)? {
                "bearer" => RequestFlag::Bearer,
                _ => {
                    return Err(RequestError::new(
                        ErrorCode::InvalidFlag,
                        &at_flag,
                        Reason::UnsupportedFlag,
                    ));
                }
            };
            // "If the request includes a flag value multiple times, the AS
            // MUST return an `invalid_flag` error" (§2.1.1).
            if flags.contains(&flag) {
                return Err(RequestError::new(
                    ErrorCode::InvalidFlag,
                    &at_flag,
                    Reason::DuplicateFlag,
                ));
            }
            flags.push(flag);
        }
    }
    Ok(AccessTokenRequest {
        access,
        label,
        flags,
    })
}

pub(super) fn parse_client(value: &Value, at: &Path<'_>) -> Result<Client, RequestError> {
    if value.is_string() {
        return Ok(Client::Instance(
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
    let key = parse_presented_key(reader::required(map, "key", at)?, &at.key("key"))?;
    let class_id = match map.get("class_id") {
        Some(v) => Some(reader::nonempty_string(v, &at.key("class_id"))?.to_owned()),
        None => None,
    };
    let display = optional(map, "display", at, parse_display)?;
    Ok(Client::Key(ClientKey {
        key,
        class_id,
        display,
    }))
}

pub(super) fn parse_display(value: &Value, at: &Path<'_>) -> Result<ClientDisplay, RequestError> {
    let map = reader::object(value, at)?;
    let name = match map.get("name") {
        Some(v) => Some(reader::string(v, &at.key("name"))?.to_owned()),
        None => None,
    };
    let uri = optional(map, "uri", at, reader::absolute_uri)?;
    let logo_uri = match map.get("logo_uri") {
        Some(v) => {
            let at_logo = at.key("logo_uri");
            let text = reader::string_max(v, &at_logo, MAX_LOGO_URI_LEN)?;
            if !reader::is_absolute_uri(text) {
                return Err(RequestError::invalid(&at_logo, Reason::NotAbsoluteUri));
            }
            Some(text.to_owned())
        }
        None => None,
    };
    Ok(ClientDisplay {
        name,
        uri,
        logo_uri,
    })
}

/// A stored request reads back through the same parser, so a record can
/// never hold a request the parser would refuse.
impl<'de> Deserialize<'de> for GrantRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Object(map) => parse_grant_object(&map).map_err(de::Error::custom),
            _ => Err(de::Error::custom("a grant request is a JSON object")),
        }
    }
}
