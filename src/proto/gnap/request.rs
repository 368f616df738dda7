//! The grant request (RFC 9635 §2).
//!
//! [`parse_grant_request`] turns a request body into a [`GrantRequest`] or a
//! [`RequestError`] that names the field and the §3.6 code. What it checks:
//!
//! - the body is a JSON object, and every member gnapd reads has the JSON type
//!   §2 gives it (`invalid_request`);
//! - `client` is present (§2: REQUIRED) and, by value, carries a key gnapd can
//!   verify: an `httpsig` JWK (else `invalid_client`, see [`super::key`]);
//! - `access_token` is one object or a non-empty array; in an array every
//!   entry has a `label` and labels are unique (§2.1.2: `invalid_request`);
//! - each `access` array is non-empty and well formed (§8, [`super::access`]);
//! - flags: only `bearer` is registered for requests (§10.3, "Allowed Use:
//!   Request"); another value is `invalid_flag`, a repeated one
//!   `invalid_request` (§2.1.1 says so explicitly);
//! - at least one of `access_token` and `subject` is present (gnapd's rule:
//!   a request for neither has nothing to approve);
//! - the sizes in [`super::limits`].
//!
//! Members gnapd does not know are ignored, as Appendix D allows ("a
//! recipient may ignore such values"); members it knows but cannot honour are
//! refused. Whether the AS grants `bearer`, accepts the `user`, or can use the
//! interaction modes offered is decided later, by policy.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::access::{AccessRight, parse_access_list};
use super::error::ErrorCode;
use super::interact::{InteractRequest, parse_interact};
use super::key::{PresentedKey, parse_presented_key};
use super::limits::{MAX_ACCESS_TOKENS, MAX_LIST_ITEMS, MAX_LOGO_URI_LEN};
use super::reader::{self, Path, Reason, RequestError};
use super::subject::{SubjectRequest, User, parse_subject_request, parse_user};

mod parse;

pub use parse::parse_grant_request;
pub(crate) use parse::{optional, parse_access_token_requests};

/// A grant request (§2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantRequest {
    /// `access_token`: the tokens asked for (§2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<AccessTokenRequests>,
    /// `subject`: the subject information asked for (§2.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<SubjectRequest>,
    /// `client`: who is asking (§2.3). REQUIRED.
    pub client: Client,
    /// `user`: who the end user is (§2.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// `interact`: how the client can involve the RO (§2.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interact: Option<InteractRequest>,
}

impl GrantRequest {
    /// What the AS keeps of the request once it has read it: everything a
    /// policy, a person or a later modification (§5.3) reads, without the
    /// display `logo_uri` (a `data:` URI may be 32 KiB; gnapd neither shows
    /// nor fetches logos) and the `user`'s assertions (checked once, when
    /// the request came; never read again).
    pub fn stored(&self) -> GrantRequest {
        let mut kept = self.clone();
        if let Client::Key(ClientKey {
            display: Some(display),
            ..
        }) = &mut kept.client
        {
            display.logo_uri = None;
        }
        if let Some(User::Value(user)) = &mut kept.user {
            user.assertions = None;
            if user.sub_ids.is_none() {
                kept.user = None;
            }
        }
        kept
    }
}

/// The `access_token` member: the shape matters, because the response must
/// answer a single request with a single token and a multiple request with
/// an array (§3.2.1, §3.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AccessTokenRequests {
    /// One object (§2.1.1).
    Single(AccessTokenRequest),
    /// An array (§2.1.2); every entry has a unique label.
    Multiple(Vec<AccessTokenRequest>),
}

impl AccessTokenRequests {
    /// The requested tokens, whatever the shape.
    pub fn as_slice(&self) -> &[AccessTokenRequest] {
        match self {
            Self::Single(one) => std::slice::from_ref(one),
            Self::Multiple(many) => many,
        }
    }
}

/// One requested access token (§2.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessTokenRequest {
    /// `access`: the rights asked for. REQUIRED, non-empty.
    pub access: Vec<AccessRight>,
    /// `label`: the client's name for the token, echoed in the response.
    /// REQUIRED in a multiple request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `flags`, each at most once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<RequestFlag>,
}

impl AccessTokenRequest {
    /// True if the client asked for a bearer token.
    pub fn wants_bearer(&self) -> bool {
        self.flags.contains(&RequestFlag::Bearer)
    }
}

/// A flag allowed in a request (§2.1.1; §10.3 registers `durable` for
/// responses only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestFlag {
    /// `bearer`: the token is not bound to a key. Refused unless policy
    /// allows it.
    Bearer,
}

impl Serialize for RequestFlag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Bearer => serializer.serialize_str("bearer"),
        }
    }
}

/// The `client` member (§2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Client {
    /// By reference (§2.3.1): an instance identifier gnapd issued earlier
    /// (`instance_id`, §3.5). The AS "MUST ensure that the key used to sign
    /// the request is associated with the instance identifier" and answers
    /// `invalid_client` for one it does not know.
    Instance(String),
    /// By value.
    Key(ClientKey),
}

/// A client instance presented by value (§2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientKey {
    /// `key`: the client's public key; the request must be signed with it.
    /// REQUIRED.
    pub key: PresentedKey,
    /// `class_id`: self-declared software class; a hint, never proof.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_id: Option<String>,
    /// `display`: what to show the RO; a hint, never proof (§2.3.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<ClientDisplay>,
}

/// `client.display` (§2.3.2). "MUST NOT be taken as authentic proof of the
/// client instance's identity or source."
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClientDisplay {
    /// `name`. RECOMMENDED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `uri`: absolute. OPTIONAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// `logo_uri`: absolute, possibly a `data:` URI. OPTIONAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::gnap::access::AccessRight;
    use crate::proto::gnap::key::HttpSigProof;
    use serde_json::json;

    const CLIENT: &str = "client-541-ab";

    fn parse(value: Value) -> Result<GrantRequest, RequestError> {
        parse_grant_request(&serde_json::to_vec(&value).unwrap())
    }

    fn with_tokens(access_token: Value) -> Value {
        json!({"access_token": access_token, "client": CLIENT})
    }

    fn ed25519_client() -> Value {
        json!({
            "key": {
                "proof": "httpsig",
                "jwk": {"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
            },
            "display": {"name": "Agent", "uri": "https://agent.example/"}
        })
    }

    #[test]
    fn what_the_as_keeps_of_a_request_has_no_logo_and_no_assertion() {
        let mut client = ed25519_client();
        let logo = format!("data:image/png;base64,{}", "A".repeat(30 * 1024));
        client["display"]["logo_uri"] = json!(logo);
        let wire = json!({
            "access_token": {"access": ["mcp:github"]},
            "client": client,
            "user": {
                "sub_ids": [{"format": "opaque", "id": "u1"}],
                "assertions": [{"format": "id_token", "value": "x".repeat(4096)}]
            },
            "interact": {"start": ["redirect"]}
        });
        let request = parse(wire).unwrap();
        let stored = request.stored();
        let Client::Key(key) = &stored.client else {
            panic!("by value")
        };
        let display = key.display.as_ref().unwrap();
        assert_eq!(display.logo_uri, None);
        assert_eq!(display.name.as_deref(), Some("Agent"));
        let Some(User::Value(user)) = &stored.user else {
            panic!("the user's identifiers are kept")
        };
        assert!(user.assertions.is_none() && user.sub_ids.is_some());
        assert_eq!(stored.access_token, request.access_token);
        assert_eq!(stored.interact, request.interact);
        let kept = serde_json::to_vec(&stored).unwrap().len();
        assert!(kept < 1024, "{kept} bytes kept");
        // Read back from a record through the same parser.
        let again: GrantRequest =
            serde_json::from_slice(&serde_json::to_vec(&stored).unwrap()).unwrap();
        assert_eq!(again, stored);
        // A user given by assertions alone is not kept at all.
        let wire = json!({
            "access_token": {"access": ["mcp:github"]},
            "client": ed25519_client(),
            "user": {"assertions": [{"format": "id_token", "value": "x"}]}
        });
        assert_eq!(parse(wire).unwrap().stored().user, None);
    }

    #[test]
    fn a_minimal_agent_request_parses_and_round_trips() {
        let wire = json!({
            "access_token": {"access": ["mcp:github"]},
            "client": ed25519_client()
        });
        let request = parse(wire.clone()).unwrap();
        let Client::Key(client) = &request.client else {
            panic!("client by value expected");
        };
        assert_eq!(
            client.key.proof,
            crate::proto::gnap::Proof::HttpSig(HttpSigProof::Derived)
        );
        assert_eq!(
            client.display.as_ref().unwrap().name.as_deref(),
            Some("Agent")
        );
        assert_eq!(serde_json::to_value(&request).unwrap(), wire);
        // And a stored request reads back through the parser.
        let back: GrantRequest = serde_json::from_value(wire).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn client_is_required() {
        let err = parse(json!({"access_token": {"access": ["x"]}})).unwrap_err();
        assert_eq!((err.field(), err.reason()), ("client", Reason::Missing));
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn client_of_the_wrong_type_or_without_key_is_invalid_request() {
        let err = parse(with_tokens(json!({"access": ["x"]})).merge_client(json!(5))).unwrap_err();
        assert_eq!(err.field(), "client");
        let err = parse(with_tokens(json!({"access": ["x"]})).merge_client(json!({"display": {}})))
            .unwrap_err();
        assert_eq!((err.field(), err.reason()), ("client.key", Reason::Missing));
        let err = parse(with_tokens(json!({"access": ["x"]})).merge_client(json!(""))).unwrap_err();
        assert_eq!((err.field(), err.reason()), ("client", Reason::Empty));
    }

    #[test]
    fn a_client_key_gnapd_cannot_verify_is_invalid_client() {
        for key in [
            json!("S-P4XJQ_RYJCRTSU1.63N3E"),
            json!({"proof": "mtls", "jwk": {"kty": "OKP"}}),
            json!({"proof": {"method": "jwsd"}, "jwk": {"kty": "RSA"}}),
            json!({"proof": "httpsig", "cert": "MIIC6jCCAdKgAwIBAgIGAXjw74xPMA0GCSqGSIb3DQEBCwUAMDYx"}),
        ] {
            let err = parse(
                with_tokens(json!({"access": ["x"]})).merge_client(json!({"key": key.clone()})),
            )
            .unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidClient, "{key}");
        }
    }

    #[test]
    fn control_and_bidi_characters_in_what_a_person_reads_are_refused_naming_the_field() {
        // Each tries to hide or rewrite a line of the admin's listing or the
        // consent page: erase and return, cursor up (ESC and C1 forms), DEL,
        // a bidi override and isolate, a Unicode line separator.
        let hidden = [
            "\x1b[2K\r",
            "\x1b[1A",
            "\u{9b}1A",
            "\x7f",
            "\u{202e}",
            "\u{2066}",
            "\u{2028}",
        ];
        for h in hidden {
            let evil = format!("mcp:github{h}");
            let cases = [
                (
                    json!({"client": {"key": ed25519_client()["key"], "display": {"name": evil}}, "access_token": {"access": ["x"]}}),
                    "client.display.name",
                ),
                (
                    json!({"client": {"key": ed25519_client()["key"], "display": {"uri": format!("https://a.example/{h}")}}, "access_token": {"access": ["x"]}}),
                    "client.display.uri",
                ),
                (
                    json!({"client": {"key": ed25519_client()["key"], "class_id": evil}, "access_token": {"access": ["x"]}}),
                    "client.class_id",
                ),
                (
                    with_tokens(json!({"access": ["x"], "label": evil})),
                    "access_token.label",
                ),
                (
                    with_tokens(json!({"access": [evil]})),
                    "access_token.access[0]",
                ),
                (
                    with_tokens(json!({"access": [{"type": evil}]})),
                    "access_token.access[0].type",
                ),
                (
                    with_tokens(json!({"access": [{"type": "mcp", "identifier": evil}]})),
                    "access_token.access[0].identifier",
                ),
                (
                    with_tokens(
                        json!({"access": [{"type": "mcp", "actions": ["tools/call", evil]}]}),
                    ),
                    "access_token.access[0].actions[1]",
                ),
                (
                    with_tokens(json!({"access": [{"type": "mcp", "tools": [evil]}]})),
                    "access_token.access[0].tools[0]",
                ),
                (
                    with_tokens(json!({"access": [{"type": "mcp", "locations": [evil]}]})),
                    "access_token.access[0].locations[0]",
                ),
                (
                    with_tokens(json!({"access": [{"type": "photo-api", "datatypes": [evil]}]})),
                    "access_token.access[0].datatypes[0]",
                ),
                (
                    with_tokens(json!({"access": [{"type": "photo-api", "privileges": [evil]}]})),
                    "access_token.access[0].privileges[0]",
                ),
                (
                    with_tokens(
                        json!({"access": [{"type": "photo-api", "note": {"text": [evil]}}]}),
                    ),
                    "access_token.access[0].note.text[0]",
                ),
                (
                    with_tokens(json!({"access": [{"type": "photo-api", evil.clone(): 1}]})),
                    &format!("access_token.access[0].{evil}"),
                ),
            ];
            for (body, field) in cases {
                let err = parse(body).unwrap_err();
                assert_eq!(
                    (err.code(), err.field(), err.reason()),
                    (ErrorCode::InvalidRequest, field, Reason::HiddenCharacter),
                    "{h:?}"
                );
            }
        }
        // What no person reads keeps its characters: a SAML assertion may
        // have line breaks.
        let saml = json!({"client": CLIENT, "access_token": {"access": ["x"]},
            "user": {"assertions": [{"format": "saml2", "value": "<a>\n  <b/>\n</a>"}]}});
        assert!(parse(saml).is_ok());
    }

    #[test]
    fn a_request_for_nothing_is_refused() {
        let err =
            parse(json!({"client": CLIENT, "interact": {"start": ["redirect"]}})).unwrap_err();
        assert_eq!(err.reason(), Reason::NothingRequested);
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        // Subject information alone is a request.
        assert!(
            parse(json!({"client": CLIENT, "subject": {"sub_id_formats": ["opaque"]}})).is_ok()
        );
    }

    #[test]
    fn multiple_tokens_need_labels() {
        let err = parse(with_tokens(json!([
            {"label": "a", "access": ["x"]},
            {"access": ["y"]}
        ])))
        .unwrap_err();
        assert_eq!(err.field(), "access_token[1].label");
        assert_eq!(err.reason(), Reason::MissingLabel);
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn multiple_tokens_need_unique_labels() {
        let err = parse(with_tokens(json!([
            {"label": "a", "access": ["x"]},
            {"label": "b", "access": ["y"]},
            {"label": "a", "access": ["z"]}
        ])))
        .unwrap_err();
        assert_eq!(err.field(), "access_token[2].label");
        assert_eq!(err.reason(), Reason::DuplicateLabel);
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn a_single_token_keeps_its_shape_and_an_optional_label() {
        let request = parse(with_tokens(json!({"access": ["x"], "label": "only"}))).unwrap();
        let Some(AccessTokenRequests::Single(one)) = &request.access_token else {
            panic!("single expected");
        };
        assert_eq!(one.label.as_deref(), Some("only"));
        let request = parse(with_tokens(json!([{"access": ["x"], "label": "only"}]))).unwrap();
        assert!(matches!(
            request.access_token,
            Some(AccessTokenRequests::Multiple(_))
        ));
        assert_eq!(request.access_token.unwrap().as_slice().len(), 1);
    }

    #[test]
    fn too_many_tokens_or_none_are_refused() {
        let many: Vec<Value> = (0..=MAX_ACCESS_TOKENS)
            .map(|i| json!({"label": format!("t{i}"), "access": ["x"]}))
            .collect();
        let err = parse(with_tokens(json!(many))).unwrap_err();
        assert_eq!(
            err.reason(),
            Reason::TooMany {
                max: MAX_ACCESS_TOKENS
            }
        );
        assert_eq!(
            parse(with_tokens(json!([]))).unwrap_err().reason(),
            Reason::Empty
        );
        let err = parse(with_tokens(json!("x"))).unwrap_err();
        assert_eq!(err.field(), "access_token");
    }

    #[test]
    fn access_is_required_in_each_token() {
        let err = parse(with_tokens(json!({"label": "a"}))).unwrap_err();
        assert_eq!(
            (err.field(), err.reason()),
            ("access_token.access", Reason::Missing)
        );
    }

    #[test]
    fn bearer_is_the_only_request_flag() {
        let request = parse(with_tokens(json!({"access": ["x"], "flags": ["bearer"]}))).unwrap();
        let Some(AccessTokenRequests::Single(one)) = &request.access_token else {
            panic!("single expected");
        };
        assert!(one.wants_bearer());

        for flag in ["durable", "Bearer", "split"] {
            let err = parse(with_tokens(
                json!({"access": ["x"], "flags": ["bearer", flag]}),
            ))
            .unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidFlag, "{flag}");
            assert_eq!(err.field(), "access_token.flags[1]");
            assert_eq!(err.reason(), Reason::UnsupportedFlag);
        }
        let err = parse(with_tokens(json!({"access": ["x"], "flags": "bearer"}))).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn a_repeated_flag_is_invalid_flag() {
        let err = parse(with_tokens(
            json!({"access": ["x"], "flags": ["bearer", "bearer"]}),
        ))
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidFlag);
        assert_eq!(err.reason(), Reason::DuplicateFlag);
        assert_eq!(err.field(), "access_token.flags[1]");
    }

    #[test]
    fn display_uris_must_be_absolute() {
        for (display, field) in [
            (json!({"uri": "/about"}), "client.display.uri"),
            (json!({"logo_uri": "logo.png"}), "client.display.logo_uri"),
            (json!({"name": 1}), "client.display.name"),
        ] {
            let mut client = ed25519_client();
            client["display"] = display;
            let err =
                parse(json!({"access_token": {"access": ["x"]}, "client": client})).unwrap_err();
            assert_eq!(err.field(), field);
        }
        // A data: logo of a few KiB is fine.
        let mut client = ed25519_client();
        client["display"]["logo_uri"] =
            json!(format!("data:image/png;base64,{}", "A".repeat(8 * 1024)));
        assert!(parse(json!({"access_token": {"access": ["x"]}, "client": client})).is_ok());
    }

    #[test]
    fn unknown_members_are_ignored_known_ones_of_the_wrong_type_are_not() {
        let mut wire = with_tokens(json!({"access": ["x"], "x-ext": 1}));
        wire["x-extension"] = json!({"anything": true});
        assert!(parse(wire).is_ok());
        for (member, value) in [
            ("subject", json!([])),
            ("user", json!(1)),
            ("interact", json!("redirect")),
        ] {
            let mut wire = with_tokens(json!({"access": ["x"]}));
            wire[member] = value;
            let err = parse(wire).unwrap_err();
            assert_eq!(err.field(), member);
            assert_eq!(err.code(), ErrorCode::InvalidRequest);
        }
    }

    #[test]
    fn errors_inside_tokens_name_the_path() {
        let err = parse(with_tokens(json!([
            {"label": "a", "access": ["x"]},
            {"label": "b", "access": [{"type": "photo-api", "actions": [1]}]}
        ])))
        .unwrap_err();
        assert_eq!(err.field(), "access_token[1].access[0].actions[0]");
        assert_eq!(
            err.to_string(),
            "`access_token[1].access[0].actions[0]`: expected string"
        );
    }

    #[test]
    fn a_stored_request_that_the_parser_would_refuse_does_not_deserialize() {
        assert!(serde_json::from_value::<GrantRequest>(json!({"client": CLIENT})).is_err());
        assert!(serde_json::from_value::<GrantRequest>(json!([])).is_err());
    }

    #[test]
    fn references_and_objects_survive_in_order() {
        let request = parse(with_tokens(json!({"access": [
            "mcp:github",
            {"type": "mcp", "identifier": "fs", "actions": ["tools/call"], "tools": ["read_file"]}
        ]})))
        .unwrap();
        let tokens = request.access_token.unwrap();
        let access = &tokens.as_slice()[0].access;
        assert_eq!(access[0], AccessRight::Reference("mcp:github".into()));
        assert!(matches!(&access[1], AccessRight::Object(o) if o.is_mcp()));
    }

    /// Test helper: replaces the `client` member.
    trait MergeClient {
        fn merge_client(self, client: Value) -> Value;
    }

    impl MergeClient for Value {
        fn merge_client(mut self, client: Value) -> Value {
            self["client"] = client;
            self
        }
    }
}
