//! The resource-server-facing API (RFC 9767 §3): discovery, token
//! introspection, resource set registration and their errors.
//!
//! Field names, types and codes come from the working group's
//! `draft-ietf-gnap-resource-servers` source at its last revision (-08),
//! which RFC 9767 published with editorial changes; section numbers are the
//! RFC's (§3.1 discovery, §3.2 RS authentication, §3.3 introspection, §3.4
//! resource set registration, §3.5 errors).
//!
//! Requests are read the way grant requests are ([`super::reader`]): one pass
//! into narrowed types, every refusal naming the field. A parse error keeps
//! its RFC 9635 code internally and becomes an RS-facing code here
//! ([`RsError::from`]): an unusable key is `invalid_resource_server`,
//! anything else `invalid_request`.

use std::fmt;

use serde::ser::{SerializeStruct as _, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::access::{AccessRight, parse_access_right};
use super::error::ErrorCode;
use super::key::{Key, PresentedKey, parse_presented_key};
use super::limits::MAX_ACCESS_ITEMS;
use super::reader::{self, Path, Reason, RequestError};
use super::response::ResponseFlag;

/// An RS-facing error code (RFC 9767 §3.5, the "GNAP RS-Facing Error Codes"
/// registry). A registry apart from RFC 9635 §3.6's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RsErrorCode {
    /// "The request is missing a required parameter, includes an invalid
    /// parameter value or is otherwise malformed."
    InvalidRequest,
    /// "The request was made from an RS that was not recognized or allowed
    /// by the AS, or the RS's signature validation failed."
    InvalidResourceServer,
    /// "The RS is not permitted to register or introspect for the requested
    /// `access` value."
    InvalidAccess,
}

impl RsErrorCode {
    /// Every registered code, in §3.5 order.
    pub const ALL: [RsErrorCode; 3] = [
        Self::InvalidRequest,
        Self::InvalidResourceServer,
        Self::InvalidAccess,
    ];

    /// The code as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidResourceServer => "invalid_resource_server",
            Self::InvalidAccess => "invalid_access",
        }
    }

    /// §3.5: "the AS responds to the RS with an HTTP 400 (Bad Request)
    /// status code", whatever the code.
    pub const fn status(self) -> u16 {
        400
    }
}

impl fmt::Display for RsErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `error` member of an RS-facing error response (§3.5): always sent in
/// the object form, `{"code": …, "description": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsError {
    /// The code. REQUIRED.
    pub code: RsErrorCode,
    /// For the RS's developer; gnapd's own words only. OPTIONAL.
    pub description: Option<String>,
}

impl RsError {
    /// An error with a code and a description.
    pub fn described(code: RsErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: Some(description.into()),
        }
    }
}

impl Serialize for RsError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 1 + usize::from(self.description.is_some());
        let mut s = serializer.serialize_struct("RsError", len)?;
        s.serialize_field("code", self.code.as_str())?;
        if let Some(description) = &self.description {
            s.serialize_field("description", description)?;
        }
        s.end()
    }
}

/// The body of an RS-facing error: "a JSON object consisting of a single
/// `error` field" (§3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RsErrorResponse {
    /// The error.
    pub error: RsError,
}

/// A parse error as the RS sees it: a key gnapd cannot use
/// (`invalid_client` in a grant request) is `invalid_resource_server`;
/// everything else is `invalid_request`.
impl From<&RequestError> for RsError {
    fn from(err: &RequestError) -> Self {
        let code = match err.code() {
            ErrorCode::InvalidClient => RsErrorCode::InvalidResourceServer,
            _ => RsErrorCode::InvalidRequest,
        };
        Self::described(code, err.to_string())
    }
}

/// How the RS identifies itself (§3.2): its key by value, or by reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceServer {
    /// `{"key": {"proof": "httpsig", "jwk": {…}}}`: the request must be
    /// signed with this key.
    Key(PresentedKey),
    /// A string: an instance identifier the AS issued to the RS.
    Reference(String),
}

/// The values of the "GNAP Key Proofing Methods" registry (RFC 9635
/// §10.16), the only values `proof` may take (§3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofMethod {
    /// `httpsig` (RFC 9635 §7.3.1): the only method gnapd binds tokens with.
    HttpSig,
    /// `mtls` (§7.3.2).
    Mtls,
    /// `jwsd` (§7.3.3).
    Jwsd,
    /// `jws` (§7.3.4).
    Jws,
}

impl ProofMethod {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "httpsig" => Some(Self::HttpSig),
            "mtls" => Some(Self::Mtls),
            "jwsd" => Some(Self::Jwsd),
            "jws" => Some(Self::Jws),
            _ => None,
        }
    }
}

/// A token introspection request (§3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionRequest {
    /// `access_token`: the value the client presented. REQUIRED.
    pub access_token: String,
    /// `proof`: how the client bound the token to its request at the RS.
    /// RECOMMENDED.
    pub proof: Option<ProofMethod>,
    /// `resource_server`: who is asking. REQUIRED.
    pub resource_server: ResourceServer,
    /// `access`: "the minimum access rights required to fulfill the
    /// request". OPTIONAL; an empty array asks for nothing in particular.
    pub access: Option<Vec<AccessRight>>,
}

/// A resource set registration request (§3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationRequest {
    /// `access`: the rights to register. REQUIRED, non-empty.
    pub access: Vec<AccessRight>,
    /// `resource_server`: who is registering. REQUIRED.
    pub resource_server: ResourceServer,
    /// `token_formats_supported`: formats the RS can process. OPTIONAL.
    pub token_formats_supported: Option<Vec<String>>,
    /// `token_introspection_required`: absent means `false`.
    pub token_introspection_required: bool,
}

/// Parses an introspection request body. The caller has bounded its size
/// and checked the content type.
pub fn parse_introspection_request(body: &[u8]) -> Result<IntrospectionRequest, RequestError> {
    let map = reader::body_object(body)?;
    let root = Path::root();
    let at_token = root.key("access_token");
    let access_token =
        reader::nonempty_string(reader::required(&map, "access_token", &root)?, &at_token)?
            .to_owned();
    let proof = match map.get("proof") {
        None => None,
        Some(value) => {
            let at = root.key("proof");
            let name = reader::string(value, &at)?;
            Some(
                ProofMethod::from_name(name)
                    .ok_or_else(|| RequestError::invalid(&at, Reason::UnsupportedProof))?,
            )
        }
    };
    let resource_server = parse_resource_server(&map, &root)?;
    let access = match map.get("access") {
        None => None,
        Some(value) => Some(parse_rights(value, &root.key("access"), true)?),
    };
    Ok(IntrospectionRequest {
        access_token,
        proof,
        resource_server,
        access,
    })
}

/// Parses a resource set registration request body.
pub fn parse_registration_request(body: &[u8]) -> Result<RegistrationRequest, RequestError> {
    let map = reader::body_object(body)?;
    let root = Path::root();
    let access = parse_rights(
        reader::required(&map, "access", &root)?,
        &root.key("access"),
        false,
    )?;
    let resource_server = parse_resource_server(&map, &root)?;
    let token_formats_supported = match map.get("token_formats_supported") {
        None => None,
        Some(value) => Some(reader::string_list(
            value,
            &root.key("token_formats_supported"),
        )?),
    };
    let token_introspection_required = match map.get("token_introspection_required") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(RequestError::invalid(
                &root.key("token_introspection_required"),
                Reason::WrongType {
                    expected: "boolean",
                },
            ));
        }
    };
    Ok(RegistrationRequest {
        access,
        resource_server,
        token_formats_supported,
        token_introspection_required,
    })
}

/// An `access` array (RFC 9635 §8); `allow_empty` for introspection, where
/// an empty minimum asks for nothing.
fn parse_rights(
    value: &Value,
    at: &Path<'_>,
    allow_empty: bool,
) -> Result<Vec<AccessRight>, RequestError> {
    let items = reader::array(value, at, "array of objects/strings", MAX_ACCESS_ITEMS)?;
    if items.is_empty() && !allow_empty {
        return Err(RequestError::invalid(at, Reason::Empty));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(parse_access_right(item, &at.index(i))?);
    }
    Ok(out)
}

/// `resource_server` (§3.2): REQUIRED, "either by value or by reference".
fn parse_resource_server(
    map: &Map<String, Value>,
    root: &Path<'_>,
) -> Result<ResourceServer, RequestError> {
    let value = reader::required(map, "resource_server", root)?;
    let at = root.key("resource_server");
    if value.is_string() {
        return Ok(ResourceServer::Reference(
            reader::nonempty_string(value, &at)?.to_owned(),
        ));
    }
    let rs = reader::object(value, &at).map_err(|_| {
        RequestError::invalid(
            &at,
            Reason::WrongType {
                expected: "object or string",
            },
        )
    })?;
    let key = parse_presented_key(reader::required(rs, "key", &at)?, &at.key("key"))?;
    Ok(ResourceServer::Key(key))
}

/// An introspection response (§3.3). Inactive: `{"active": false}` and
/// nothing else. Active: the token's state, never its `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntrospectionResponse {
    /// `active`. REQUIRED.
    pub active: bool,
    /// `access`: the token's rights, as far as this RS may see them.
    /// REQUIRED when active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<Vec<AccessRight>>,
    /// `key`: the key the token is bound to. REQUIRED for a bound token,
    /// "MUST NOT be included" for a bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// `flags`. OPTIONAL; omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<ResponseFlag>,
    /// `exp`: Unix seconds after which the token is no longer valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// `iat`: Unix seconds at which the token was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// `iss`: the grant endpoint of the issuing AS. REQUIRED when active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// `instance_id`: the client instance the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
}

impl IntrospectionResponse {
    /// `{"active": false}`: "other fields are omitted".
    pub fn inactive() -> Self {
        Self {
            active: false,
            access: None,
            key: None,
            flags: Vec::new(),
            exp: None,
            iat: None,
            iss: None,
            instance_id: None,
        }
    }
}

/// A resource set registration response (§3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationResponse {
    /// `resource_reference`: the string a client uses as an access right
    /// reference (RFC 9635 §8.1). REQUIRED.
    pub resource_reference: String,
    /// `introspection_endpoint`. OPTIONAL; gnapd always sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
}

/// The RS-facing discovery document (§3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsDiscovery {
    /// `grant_request_endpoint`: the one clients use. REQUIRED.
    pub grant_request_endpoint: String,
    /// `introspection_endpoint`: REQUIRED if the AS supports introspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// `token_formats_supported`: values of the "GNAP Token Formats"
    /// registry. OPTIONAL; gnapd's tokens are opaque references in none of
    /// them, so it omits the member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_formats_supported: Vec<String>,
    /// `resource_registration_endpoint`: REQUIRED if the AS supports
    /// resource set registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_registration_endpoint: Option<String>,
    /// `key_proofs_supported`. OPTIONAL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_proofs_supported: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn introspect(body: Value) -> Result<IntrospectionRequest, RequestError> {
        parse_introspection_request(&serde_json::to_vec(&body).unwrap())
    }

    fn register(body: Value) -> Result<RegistrationRequest, RequestError> {
        parse_registration_request(&serde_json::to_vec(&body).unwrap())
    }

    fn rs_key() -> Value {
        json!({"key": {"proof": "httpsig", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}})
    }

    #[test]
    fn rfc9767_section_3_5_codes_are_spelled_as_the_rfc_spells_them() {
        let names: Vec<&str> = RsErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "invalid_request",
                "invalid_resource_server",
                "invalid_access"
            ]
        );
        assert!(RsErrorCode::ALL.iter().all(|c| c.status() == 400));
        assert_eq!(
            serde_json::to_value(RsErrorResponse {
                error: RsError::described(RsErrorCode::InvalidAccess, "no")
            })
            .unwrap(),
            json!({"error": {"code": "invalid_access", "description": "no"}})
        );
    }

    #[test]
    fn rfc9767_section_3_3_introspection_request_example() {
        // §3.3's example, the RS by reference.
        let parsed = introspect(json!({
            "access_token": "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0",
            "proof": "httpsig",
            "resource_server": "7C7C4AZ9KHRS6X63AJAO"
        }))
        .unwrap();
        assert_eq!(
            parsed.access_token,
            "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0"
        );
        assert_eq!(parsed.proof, Some(ProofMethod::HttpSig));
        assert_eq!(
            parsed.resource_server,
            ResourceServer::Reference("7C7C4AZ9KHRS6X63AJAO".into())
        );
        assert_eq!(parsed.access, None);
    }

    #[test]
    fn introspection_request_reads_a_key_by_value_and_access() {
        let parsed = introspect(json!({
            "access_token": "abc",
            "resource_server": rs_key(),
            "access": ["dolphin-metadata", {"type": "photo-api", "actions": ["read"]}]
        }))
        .unwrap();
        assert!(matches!(parsed.resource_server, ResourceServer::Key(_)));
        assert_eq!(parsed.access.unwrap().len(), 2);
        assert_eq!(parsed.proof, None);
        let empty =
            introspect(json!({"access_token": "abc", "resource_server": rs_key(), "access": []}))
                .unwrap();
        assert_eq!(empty.access, Some(Vec::new()));
    }

    #[test]
    fn malformed_introspection_requests_name_the_field() {
        for (body, field, code) in [
            (
                json!({"resource_server": "x"}),
                "access_token",
                RsErrorCode::InvalidRequest,
            ),
            (
                json!({"access_token": 7, "resource_server": "x"}),
                "access_token",
                RsErrorCode::InvalidRequest,
            ),
            (
                json!({"access_token": ""}),
                "access_token",
                RsErrorCode::InvalidRequest,
            ),
            (
                json!({"access_token": "t"}),
                "resource_server",
                RsErrorCode::InvalidRequest,
            ),
            (
                json!({"access_token": "t", "resource_server": 3}),
                "resource_server",
                RsErrorCode::InvalidRequest,
            ),
            (
                json!({"access_token": "t", "resource_server": {}}),
                "resource_server.key",
                RsErrorCode::InvalidRequest,
            ),
            (
                json!({"access_token": "t", "resource_server": {"key": {"proof": "carrier-pigeon", "jwk": {}}}}),
                "resource_server.key.proof",
                RsErrorCode::InvalidResourceServer,
            ),
            (
                json!({"access_token": "t", "resource_server": "x", "proof": "carrier-pigeon"}),
                "proof",
                RsErrorCode::InvalidRequest,
            ),
            (
                json!({"access_token": "t", "resource_server": "x", "access": "read"}),
                "access",
                RsErrorCode::InvalidRequest,
            ),
            (
                json!({"access_token": "t", "resource_server": "x", "access": [{"actions": []}]}),
                "access[0].type",
                RsErrorCode::InvalidRequest,
            ),
        ] {
            let err = introspect(body.clone()).unwrap_err();
            assert_eq!(err.field(), field, "{body}");
            assert_eq!(RsError::from(&err).code, code, "{body}");
        }
        assert_eq!(
            parse_introspection_request(b"[]").unwrap_err().reason(),
            Reason::NotJson
        );
    }

    #[test]
    fn rfc9767_section_3_4_registration_request_example() {
        let parsed = register(json!({
            "access": [
                {
                    "actions": ["read", "write", "dolphin"],
                    "locations": ["https://server.example.net/", "https://resource.local/other"],
                    "datatypes": ["metadata", "images"]
                },
                "dolphin-metadata"
            ],
            "resource_server": "7C7C4AZ9KHRS6X63AJAO"
        }));
        // The draft's example object has no `type`, which RFC 9635 §8 makes
        // REQUIRED: gnapd refuses it and accepts it once a type is given.
        assert_eq!(parsed.unwrap_err().field(), "access[0].type");
        let parsed = register(json!({
            "access": [
                {"type": "photo-api", "actions": ["read", "write", "dolphin"], "datatypes": ["metadata", "images"]},
                "dolphin-metadata"
            ],
            "resource_server": "7C7C4AZ9KHRS6X63AJAO",
            "token_introspection_required": true
        }))
        .unwrap();
        assert_eq!(parsed.access.len(), 2);
        assert!(parsed.token_introspection_required);
        assert_eq!(parsed.token_formats_supported, None);
    }

    #[test]
    fn malformed_registration_requests_name_the_field() {
        for (body, field) in [
            (json!({"resource_server": "x"}), "access"),
            (json!({"access": [], "resource_server": "x"}), "access"),
            (json!({"access": ["a"]}), "resource_server"),
            (
                json!({"access": ["a"], "resource_server": "x", "token_formats_supported": "jwt-signed"}),
                "token_formats_supported",
            ),
            (
                json!({"access": ["a"], "resource_server": "x", "token_introspection_required": "yes"}),
                "token_introspection_required",
            ),
        ] {
            assert_eq!(register(body.clone()).unwrap_err().field(), field, "{body}");
        }
    }

    #[test]
    fn an_inactive_answer_is_active_false_alone() {
        assert_eq!(
            serde_json::to_value(IntrospectionResponse::inactive()).unwrap(),
            json!({"active": false})
        );
    }

    #[test]
    fn rs_discovery_omits_what_it_does_not_offer() {
        let doc = RsDiscovery {
            grant_request_endpoint: "https://as.example/gnap".into(),
            introspection_endpoint: Some("https://as.example/gnap/introspect".into()),
            token_formats_supported: Vec::new(),
            resource_registration_endpoint: None,
            key_proofs_supported: vec!["httpsig".into()],
        };
        assert_eq!(
            serde_json::to_value(doc).unwrap(),
            json!({
                "grant_request_endpoint": "https://as.example/gnap",
                "introspection_endpoint": "https://as.example/gnap/introspect",
                "key_proofs_supported": ["httpsig"]
            })
        );
    }
}
