//! Interaction: what the client can do (RFC 9635 §2.5) and what the AS
//! answers (§3.3).
//!
//! The request's `start` modes are kept in order; modes gnapd does not know,
//! and any mode sent in object form (the four modes of §2.5.1 are registered
//! as strings), are kept as [`StartMode::Other`] so the AS can ignore them
//! ("An AS MAY respond to any, all, or none of the presented interaction
//! modes") and a stored request still serializes as it came.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::limits::MAX_LIST_ITEMS;
use super::reader::{self, Path, Reason, RequestError};

/// An interaction start mode (§2.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartMode {
    /// `redirect`: the client can send the end user to an arbitrary URI.
    Redirect,
    /// `app`: the client can launch an application URI.
    App,
    /// `user_code`: the client can show a short code for a stable URI.
    UserCode,
    /// `user_code_uri`: the client can show a short code and a short URI.
    UserCodeUri,
    /// Another mode, or a mode in object form, kept as sent.
    Other(Value),
}

impl StartMode {
    /// The wire name of a registered mode.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Self::Redirect => Some("redirect"),
            Self::App => Some("app"),
            Self::UserCode => Some("user_code"),
            Self::UserCodeUri => Some("user_code_uri"),
            Self::Other(_) => None,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "redirect" => Some(Self::Redirect),
            "app" => Some(Self::App),
            "user_code" => Some(Self::UserCode),
            "user_code_uri" => Some(Self::UserCodeUri),
            _ => None,
        }
    }
}

impl Serialize for StartMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (self.name(), self) {
            (Some(name), _) => serializer.serialize_str(name),
            (None, Self::Other(raw)) => raw.serialize(serializer),
            (None, _) => serializer.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for StartMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        parse_start_mode(&value, &Path::root().key("start")).map_err(de::Error::custom)
    }
}

/// An interaction finish method (§2.5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishMethod {
    /// `redirect`: the RO's browser comes back to the client's URI.
    Redirect,
    /// `push`: the AS POSTs to the client's URI.
    Push,
    /// A method gnapd does not know.
    Other(String),
}

impl FinishMethod {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Redirect => "redirect",
            Self::Push => "push",
            Self::Other(name) => name,
        }
    }
}

impl Serialize for FinishMethod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FinishMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(finish_method(&name))
    }
}

fn finish_method(name: &str) -> FinishMethod {
    match name {
        "redirect" => FinishMethod::Redirect,
        "push" => FinishMethod::Push,
        other => FinishMethod::Other(other.to_owned()),
    }
}

/// The `finish` member of `interact` (§2.5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finish {
    /// `method`. REQUIRED.
    pub method: FinishMethod,
    /// `uri`: absolute, no fragment; REQUIRED for `redirect` and `push`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// `nonce`: the client's nonce for the interaction hash (§4.2.3),
    /// printable ASCII. REQUIRED.
    pub nonce: String,
    /// `hash_method`: a Named Information Hash Algorithm name; absent means
    /// `sha-256` (see [`Finish::hash_method`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_method: Option<HashMethod>,
}

impl Finish {
    /// The hash method in force: the one named, else `sha-256` (§2.5.2:
    /// "If absent, the default value is `sha-256`").
    pub fn hash_method(&self) -> HashMethod {
        self.hash_method.unwrap_or(HashMethod::Sha256)
    }
}

/// A hash method for the interaction hash (§4.2.3): a name from the IANA
/// Named Information Hash Algorithm Registry that gnapd computes.
///
/// The registry also lists truncated SHA-256 (`sha-256-128` down to
/// `sha-256-32`), BLAKE2 and KangarooTwelve. gnapd refuses the truncations
/// (a 32- to 128-bit hash is too short to bind the callback to the
/// request) and does not implement the others; a request naming any of
/// them is `invalid_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashMethod {
    /// `sha-256` (the default).
    Sha256,
    /// `sha-384`.
    Sha384,
    /// `sha-512`.
    Sha512,
    /// `sha3-224`.
    Sha3_224,
    /// `sha3-256`.
    Sha3_256,
    /// `sha3-384`.
    Sha3_384,
    /// `sha3-512`.
    Sha3_512,
}

impl HashMethod {
    /// Every method gnapd computes.
    pub const ALL: [HashMethod; 7] = [
        Self::Sha256,
        Self::Sha384,
        Self::Sha512,
        Self::Sha3_224,
        Self::Sha3_256,
        Self::Sha3_384,
        Self::Sha3_512,
    ];

    /// The registry's hash name string.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
            Self::Sha3_224 => "sha3-224",
            Self::Sha3_256 => "sha3-256",
            Self::Sha3_384 => "sha3-384",
            Self::Sha3_512 => "sha3-512",
        }
    }

    /// The method with this registry name (exact match: the registry's
    /// names are lowercase).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The digest of `input`.
    pub fn digest(self, input: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        // The one place these are computed (`proto::hash` has the common
        // ones; the SHA-3 family lives only here).
        crate::proto::crypto_ops::count(crate::proto::crypto_ops::Operation::Hash, self.name());
        match self {
            Self::Sha256 => sha2::Sha256::digest(input).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(input).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(input).to_vec(),
            Self::Sha3_224 => sha3::Sha3_224::digest(input).to_vec(),
            Self::Sha3_256 => sha3::Sha3_256::digest(input).to_vec(),
            Self::Sha3_384 => sha3::Sha3_384::digest(input).to_vec(),
            Self::Sha3_512 => sha3::Sha3_512::digest(input).to_vec(),
        }
    }
}

impl Serialize for HashMethod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for HashMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::from_name(&name).ok_or_else(|| de::Error::custom("not a supported hash_method"))
    }
}

/// The interaction hash (§4.2.3): the client's nonce, the AS's nonce, the
/// interaction reference and the grant endpoint URI, joined by single
/// newlines with no trailing newline, hashed with `method`, base64url
/// without padding.
pub fn interaction_hash(
    method: HashMethod,
    client_nonce: &str,
    as_nonce: &str,
    interact_ref: &str,
    grant_endpoint: &str,
) -> String {
    let base = format!("{client_nonce}\n{as_nonce}\n{interact_ref}\n{grant_endpoint}");
    crate::proto::b64::encode_url(&method.digest(base.as_bytes()))
}

/// The `hints` member of `interact` (§2.5.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hints {
    /// `ui_locales`: RFC 5646 language tags, preferred first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ui_locales: Option<Vec<String>>,
}

/// The `interact` member of a grant request (§2.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InteractRequest {
    /// `start`: how the client can start an interaction. REQUIRED, may be
    /// empty (the §2.5 example with a `push` finish only).
    pub start: Vec<StartMode>,
    /// `finish`: how the client learns the interaction finished. OPTIONAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish: Option<Finish>,
    /// `hints`. OPTIONAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hints: Option<Hints>,
}

/// Reads `interact` (§2.5).
pub(crate) fn parse_interact(
    value: &Value,
    at: &Path<'_>,
) -> Result<InteractRequest, RequestError> {
    let map = reader::object(value, at)?;
    let at_start = at.key("start");
    let items = reader::array(
        reader::required(map, "start", at)?,
        &at_start,
        "array of objects/strings",
        MAX_LIST_ITEMS,
    )?;
    let mut start = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        start.push(parse_start_mode(item, &at_start.index(i))?);
    }
    let finish = match map.get("finish") {
        Some(v) => Some(parse_finish(v, &at.key("finish"))?),
        None => None,
    };
    let hints = match map.get("hints") {
        Some(v) => {
            let at_hints = at.key("hints");
            let hints = reader::object(v, &at_hints)?;
            let ui_locales = match hints.get("ui_locales") {
                Some(v) => Some(reader::string_list(v, &at_hints.key("ui_locales"))?),
                None => None,
            };
            Some(Hints { ui_locales })
        }
        None => None,
    };
    Ok(InteractRequest {
        start,
        finish,
        hints,
    })
}

fn parse_start_mode(value: &Value, at: &Path<'_>) -> Result<StartMode, RequestError> {
    match value {
        Value::String(_) => {
            let name = reader::nonempty_string(value, at)?;
            Ok(StartMode::from_name(name).unwrap_or_else(|| StartMode::Other(value.clone())))
        }
        Value::Object(map) => {
            // "a JSON object with the required field `mode`" (§2.5.1).
            reader::nonempty_string(reader::required(map, "mode", at)?, &at.key("mode"))?;
            Ok(StartMode::Other(value.clone()))
        }
        _ => Err(RequestError::invalid(
            at,
            Reason::WrongType {
                expected: "object or string",
            },
        )),
    }
}

fn parse_finish(value: &Value, at: &Path<'_>) -> Result<Finish, RequestError> {
    let map = reader::object(value, at)?;
    let method = finish_method(reader::nonempty_string(
        reader::required(map, "method", at)?,
        &at.key("method"),
    )?);
    let at_uri = at.key("uri");
    let uri = match map.get("uri") {
        Some(v) => Some(reader::absolute_uri(v, &at_uri)?),
        None if matches!(method, FinishMethod::Redirect | FinishMethod::Push) => {
            return Err(RequestError::invalid(&at_uri, Reason::Missing));
        }
        None => None,
    };
    let at_nonce = at.key("nonce");
    let nonce = reader::nonempty_string(reader::required(map, "nonce", at)?, &at_nonce)?;
    // "Unique ASCII string value" (§2.5.2); it is one line of the hash base
    // (§4.2.3), so whitespace and control characters are refused too.
    if !nonce.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RequestError::invalid(&at_nonce, Reason::BadCharacters));
    }
    let hash_method =
        match map.get("hash_method") {
            Some(v) => {
                let at_method = at.key("hash_method");
                let name = reader::nonempty_string(v, &at_method)?;
                // §4.2.3: "MUST be one of the hash name strings defined in the
                // IANA Named Information Hash Algorithm Registry"; of those,
                // gnapd computes the ones `HashMethod` lists.
                Some(HashMethod::from_name(name).ok_or_else(|| {
                    RequestError::invalid(&at_method, Reason::UnsupportedAlgorithm)
                })?)
            }
            None => None,
        };
    Ok(Finish {
        method,
        uri,
        nonce: nonce.to_owned(),
        hash_method,
    })
}

/// `user_code_uri` in an interaction response (§3.3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCodeUri {
    /// `code`: the short code to type. REQUIRED.
    pub code: String,
    /// `uri`: where to type it; absolute, without the code. REQUIRED.
    pub uri: String,
}

/// The `interact` member of a grant response (§3.3). Each member is present
/// only for a mode the client asked for and the AS supports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractResponse {
    /// `redirect`: the URI to send the end user to (§3.3.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// `app`: the application URI to launch (§3.3.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// `user_code`: the code to show, for the AS's stable URI (§3.3.3). A
    /// string since draft -10; the object form in the draft's Appendix B.2
    /// example is stale and is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_code: Option<String>,
    /// `user_code_uri`: a code and a short URI (§3.3.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_code_uri: Option<UserCodeUri>,
    /// `finish`: the AS's nonce for the interaction hash (§3.3.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<String>,
    /// `expires_in`: seconds until these modes stop working. OPTIONAL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::gnap::error::ErrorCode;
    use serde_json::json;

    fn interact(value: Value) -> Result<InteractRequest, RequestError> {
        parse_interact(&value, &Path::root().key("interact"))
    }

    #[test]
    fn section_2_5_redirect_start_and_finish() {
        let wire = json!({
            "start": ["redirect"],
            "finish": {
                "method": "redirect",
                "uri": "https://client.example.net/return/123455",
                "nonce": "LKLTI25DK82FX4T4QFZC"
            }
        });
        let parsed = interact(wire.clone()).unwrap();
        assert_eq!(parsed.start, [StartMode::Redirect]);
        let finish = parsed.finish.as_ref().unwrap();
        assert_eq!(finish.method, FinishMethod::Redirect);
        assert_eq!(finish.hash_method(), HashMethod::Sha256);
        assert_eq!(serde_json::to_value(&parsed).unwrap(), wire);
    }

    #[test]
    fn section_2_5_push_finish_with_no_start_mode() {
        let wire = json!({
            "start": [],
            "finish": {
                "method": "push",
                "uri": "https://client.example.net/return/123455",
                "nonce": "LKLTI25DK82FX4T4QFZC"
            }
        });
        let parsed = interact(wire.clone()).unwrap();
        assert!(parsed.start.is_empty());
        assert_eq!(parsed.finish.as_ref().unwrap().method, FinishMethod::Push);
        assert_eq!(serde_json::to_value(&parsed).unwrap(), wire);
    }

    #[test]
    fn section_2_5_1_every_start_mode_and_hints() {
        let wire = json!({
            "start": ["redirect", "app", "user_code", "user_code_uri"],
            "hints": {"ui_locales": ["en-US", "fr-CA"]}
        });
        let parsed = interact(wire.clone()).unwrap();
        assert_eq!(
            parsed.start,
            [
                StartMode::Redirect,
                StartMode::App,
                StartMode::UserCode,
                StartMode::UserCodeUri
            ]
        );
        assert_eq!(serde_json::to_value(&parsed).unwrap(), wire);
    }

    #[test]
    fn unknown_and_object_form_modes_are_kept_for_the_as_to_ignore() {
        let wire = json!({"start": ["future_mode", {"mode": "redirect", "x": 1}]});
        let parsed = interact(wire.clone()).unwrap();
        assert!(matches!(parsed.start[0], StartMode::Other(_)));
        assert!(matches!(parsed.start[1], StartMode::Other(_)));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), wire);
        let err = interact(json!({"start": [{"nomode": 1}]})).unwrap_err();
        assert_eq!(err.field(), "interact.start[0].mode");
    }

    #[test]
    fn start_is_required() {
        let err = interact(json!({"hints": {"ui_locales": ["en-US"]}})).unwrap_err();
        assert_eq!(
            (err.field(), err.reason()),
            ("interact.start", Reason::Missing)
        );
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn finish_needs_method_nonce_and_for_redirect_and_push_an_absolute_uri() {
        let cases = [
            (
                json!({"uri": "https://c.example/cb", "nonce": "n"}),
                "interact.finish.method",
            ),
            (
                json!({"method": "redirect", "nonce": "n"}),
                "interact.finish.uri",
            ),
            (
                json!({"method": "push", "uri": "/cb", "nonce": "n"}),
                "interact.finish.uri",
            ),
            (
                json!({"method": "redirect", "uri": "https://c.example/cb#x", "nonce": "n"}),
                "interact.finish.uri",
            ),
            (
                json!({"method": "redirect", "uri": "https://c.example/cb"}),
                "interact.finish.nonce",
            ),
            (
                json!({"method": "redirect", "uri": "https://c.example/cb", "nonce": "a\nb"}),
                "interact.finish.nonce",
            ),
            (
                json!({"method": "redirect", "uri": "https://c.example/cb", "nonce": "é"}),
                "interact.finish.nonce",
            ),
        ];
        for (finish, field) in cases {
            let err = interact(json!({"start": ["redirect"], "finish": finish})).unwrap_err();
            assert_eq!(err.field(), field, "{finish}");
            assert_eq!(err.code(), ErrorCode::InvalidRequest);
        }
    }

    #[test]
    fn an_unknown_finish_method_is_kept_and_needs_no_uri() {
        let parsed = interact(json!({
            "start": [],
            "finish": {"method": "carrier-pigeon", "nonce": "n", "hash_method": "sha3-512"}
        }))
        .unwrap();
        let finish = parsed.finish.unwrap();
        assert_eq!(finish.method, FinishMethod::Other("carrier-pigeon".into()));
        assert_eq!(finish.hash_method(), HashMethod::Sha3_512);
    }

    #[test]
    fn section_4_2_3_interaction_hash_vectors() {
        let text = include_str!("../../../tests/vectors/rfc9635-interaction-hash.json");
        let vector: Value = serde_json::from_str(text).unwrap();
        let field = |name: &str| vector[name].as_str().unwrap();
        let hashes = vector["hashes"].as_object().unwrap();
        assert!(hashes.contains_key("sha-256") && hashes.contains_key("sha3-512"));
        for (name, expected) in hashes {
            let method = HashMethod::from_name(name).unwrap();
            let hash = interaction_hash(
                method,
                field("client_nonce"),
                field("as_nonce"),
                field("interact_ref"),
                field("grant_endpoint"),
            );
            assert_eq!(hash, expected.as_str().unwrap(), "{name}");
        }
        // Every method gnapd offers yields its full digest length.
        for method in HashMethod::ALL {
            let bits = method
                .name()
                .rsplit('-')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap();
            assert_eq!(method.digest(b"x").len() * 8, bits, "{}", method.name());
        }
    }

    #[test]
    fn unsupported_or_unregistered_hash_methods_are_invalid_request() {
        for name in [
            "sha-256-32",
            "sha-256-128",
            "md5",
            "SHA-256",
            "blake2b-512",
            "sha1",
        ] {
            let err = interact(json!({
                "start": [],
                "finish": {"method": "push", "uri": "https://c.example/p", "nonce": "n", "hash_method": name}
            }))
            .unwrap_err();
            assert_eq!(err.field(), "interact.finish.hash_method", "{name}");
            assert_eq!(err.code(), ErrorCode::InvalidRequest);
        }
        let ok = interact(json!({
            "start": [],
            "finish": {"method": "push", "uri": "https://c.example/p", "nonce": "n", "hash_method": "sha-384"}
        }))
        .unwrap();
        assert_eq!(ok.finish.unwrap().hash_method(), HashMethod::Sha384);
    }

    #[test]
    fn section_3_3_response_modes_round_trip() {
        for wire in [
            json!({"redirect": "https://interact.example.com/4CF492MLVMSW9MKMXKHQ"}),
            json!({"app": "https://app.example.com/launch?tx=4CF492MLV"}),
            json!({"user_code": "A1BC3DFF"}),
            json!({"user_code_uri": {"code": "A1BC3DFF", "uri": "https://s.example/device"}}),
            json!({"finish": "MBDOFXG4Y5CVJCX821LH"}),
            json!({"redirect": "https://srv.ex/MXKHQ", "finish": "MBDOFXG4Y5CVJCX821LH", "expires_in": 600}),
        ] {
            let parsed: InteractResponse = serde_json::from_value(wire.clone()).unwrap();
            assert_eq!(serde_json::to_value(&parsed).unwrap(), wire);
        }
    }
}
