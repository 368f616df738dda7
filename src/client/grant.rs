//! The grant negotiation, sans I/O: the request bodies an agent sends
//! (RFC 9635 §2, §5, §6) and what it makes of the AS's answers (§3).
//!
//! [`interpret`] turns a grant or continuation response into one
//! [`Outcome`]: a token, a pending grant (with what the person has to do, if
//! the AS asked for interaction), or a refusal with a message a person can
//! act on.

use serde_json::{Value, json};

use crate::proto::gnap::interact::{InteractResponse, StartMode};
use crate::proto::gnap::token::TokenValue;
use crate::proto::gnap::{AccessToken, Continue, ErrorCode, GrantError, GrantResponse, Manage};
use crate::proto::jwk::SigningKey;

/// What to ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum AccessSpec {
    /// The reference the resource server's challenge named (e.g.
    /// `mcp:github`), or one given by hand.
    Reference(String),
    /// An explicit `access` array (§8), as given.
    Explicit(Vec<Value>),
    /// An `mcp` right on one upstream narrowed to some tools.
    Tools {
        /// The upstream name (`identifier`).
        upstream: String,
        /// The tools `tools/call` may name.
        tools: Vec<String>,
    },
}

impl AccessSpec {
    /// The `access` array of the token request.
    pub fn to_access(&self) -> Value {
        match self {
            Self::Reference(name) => json!([name]),
            Self::Explicit(items) => Value::Array(items.clone()),
            Self::Tools { upstream, tools } => {
                json!([{"type": "mcp", "identifier": upstream, "tools": tools}])
            }
        }
    }
}

/// The upstream an `mcp:NAME` reference names.
pub fn upstream_of_reference(reference: &str) -> Option<&str> {
    reference.strip_prefix("mcp:").filter(|n| !n.is_empty())
}

/// The upstream a gateway URL `…/mcp/NAME` names.
pub fn upstream_of_url(url: &str) -> Option<&str> {
    let path = url.split(['?', '#']).next()?;
    let (_, name) = path.rsplit_once("/mcp/")?;
    let name = name.trim_end_matches('/');
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// The interaction start modes this agent can carry out: it prints a URL
/// (and can open a browser) and it prints a code.
pub const SUPPORTED_START_MODES: [&str; 3] = ["redirect", "user_code", "user_code_uri"];

/// The start modes to offer: those the AS lists in its discovery document
/// that this agent supports, in this agent's order; all of them when the
/// AS's capabilities are unknown.
pub fn start_modes(advertised: Option<&[StartMode]>) -> Vec<&'static str> {
    match advertised {
        None => SUPPORTED_START_MODES.to_vec(),
        Some(list) => SUPPORTED_START_MODES
            .into_iter()
            .filter(|m| list.iter().any(|a| a.name() == Some(*m)))
            .collect(),
    }
}

/// A grant request (§2) for one token with `access`, presenting `key` by
/// value with `display` as the client's name, offering `modes` for
/// interaction (none: no `interact` member) and, with `finish` (URI and
/// nonce), a redirect finish (§2.5.2).
pub fn grant_request(
    key: &SigningKey,
    display: &str,
    access: &AccessSpec,
    modes: &[&str],
    finish: Option<(&str, &str)>,
) -> Value {
    let mut body = json!({
        "access_token": {"access": access.to_access()},
        "client": {
            "key": {"proof": "httpsig", "jwk": key.verifying_key().public_jwk()},
            "display": {"name": display},
        },
    });
    if !modes.is_empty()
        && let Some(map) = body.as_object_mut()
    {
        let mut interact = json!({"start": modes});
        if let Some((uri, nonce)) = finish {
            interact["finish"] = json!({"method": "redirect", "uri": uri, "nonce": nonce});
        }
        map.insert("interact".into(), interact);
    }
    body
}

/// An issued access token and what manages it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The token value.
    pub token: TokenValue,
    /// Its management API (§6), if the AS gave one.
    pub manage: Option<Manage>,
    /// Seconds it lives, if the AS said.
    pub expires_in: Option<u64>,
    /// The rights granted, if the AS said.
    pub access: Option<Value>,
}

impl Issued {
    fn from(token: &AccessToken) -> Self {
        Self {
            token: token.value.clone(),
            manage: token.manage.clone(),
            expires_in: token.expires_in,
            access: token
                .access
                .as_ref()
                .and_then(|a| serde_json::to_value(a).ok()),
        }
    }
}

/// What the person must do for a pending grant (§3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interaction {
    /// Open this URI in a browser (§3.3.1).
    pub redirect: Option<String>,
    /// Launch this application URI (§3.3.2).
    pub app: Option<String>,
    /// Type this code at the AS's code page (§3.3.3).
    pub user_code: Option<String>,
    /// Type this code at this short URI (§3.3.4).
    pub user_code_uri: Option<(String, String)>,
    /// Seconds until these stop working.
    pub expires_in: Option<u64>,
    /// The AS's nonce for the interaction hash, when it accepted the
    /// agent's `finish` (§3.3.5).
    pub finish: Option<String>,
}

impl Interaction {
    fn from(response: &InteractResponse) -> Self {
        Self {
            redirect: response.redirect.clone(),
            app: response.app.clone(),
            user_code: response.user_code.clone(),
            user_code_uri: response
                .user_code_uri
                .as_ref()
                .map(|u| (u.code.clone(), u.uri.clone())),
            expires_in: response.expires_in,
            finish: response.finish.clone(),
        }
    }

    /// True if there is something a person can do.
    pub fn actionable(&self) -> bool {
        self.redirect.is_some() || self.user_code.is_some() || self.user_code_uri.is_some()
    }

    /// The URI to open in a browser: the redirect, else the code page.
    pub fn browser_uri(&self) -> Option<&str> {
        self.redirect
            .as_deref()
            .or(self.user_code_uri.as_ref().map(|(_, uri)| uri.as_str()))
    }

    /// Lines telling a person what to do (for stderr, never stdout).
    pub fn instructions(&self, program: &str) -> Vec<String> {
        let mut lines = vec![format!(
            "{program}: the authorization server asks a person to approve this agent."
        )];
        // The AS wrote these: no escape sequence of its reaches the terminal.
        use crate::proto::text::escape;
        if let Some(uri) = &self.redirect {
            lines.push(format!("  Open this URL to approve: {}", escape(uri)));
        }
        if let Some((code, uri)) = &self.user_code_uri {
            lines.push(format!(
                "  Or go to {} and enter the code: {}",
                escape(uri),
                escape(code)
            ));
        }
        if let Some(code) = &self.user_code {
            lines.push(format!(
                "  Or enter this code at the authorization server's code page: {}",
                escape(code)
            ));
        }
        if let Some(seconds) = self.expires_in {
            lines.push(format!("  (this expires in {seconds} s)"));
        }
        lines.push("  Waiting for approval…".into());
        lines
    }
}

/// A grant waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Where and how to continue (§3.1).
    pub continue_: Continue,
    /// What the person must do, if the AS asked for interaction.
    pub interaction: Option<Interaction>,
}

/// What a grant or continuation response means for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A token was issued.
    Approved {
        /// The token.
        issued: Issued,
        /// The grant's continuation, for deleting it later.
        continue_: Option<Continue>,
    },
    /// The grant waits for a person or for the AS.
    Pending(Pending),
    /// The AS refused.
    Refused(Refusal),
}

/// A refusal, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The §3.6 code, if the AS sent a known one.
    pub code: Option<ErrorCode>,
    /// What to tell the person.
    pub message: String,
    /// A continuation the AS kept open (§3.6), if any.
    pub continue_: Option<Continue>,
}

impl Refusal {
    /// A refusal not from the AS's error object.
    pub fn other(message: impl Into<String>) -> Self {
        Self {
            code: None,
            message: message.into(),
            continue_: None,
        }
    }

    fn from_error(error: &GrantError, continue_: Option<Continue>) -> Self {
        let code = error.code;
        let what = match code {
            ErrorCode::UserDenied => "the person denied the request",
            ErrorCode::RequestDenied => "the authorization server denied the request",
            ErrorCode::TooFast => "the agent polled too fast",
            ErrorCode::InvalidInteraction => {
                "the request needs interaction this agent and the authorization server cannot agree on"
            }
            ErrorCode::InvalidClient => "the authorization server does not accept this agent's key",
            ErrorCode::InvalidContinuation => {
                "the grant is no longer pending (expired or finished)"
            }
            _ => "the authorization server refused the request",
        };
        let message = match error.description.as_deref() {
            Some(d) => format!("{what} ({code}: {d})"),
            None => format!("{what} ({code})"),
        };
        Self {
            code: Some(code),
            message,
            continue_,
        }
    }
}

/// Reads a grant (§3) or continuation (§5) response body. `status` is the
/// HTTP status; a body that is not a grant response is a refusal naming it.
pub fn interpret(status: u16, body: &[u8]) -> Outcome {
    let response: GrantResponse = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Refused(Refusal::other(format!(
                "the authorization server answered HTTP {status} with an unreadable grant response: {e}"
            )));
        }
    };
    interpret_response(status, response)
}

/// [`interpret`] on a parsed response.
pub fn interpret_response(status: u16, response: GrantResponse) -> Outcome {
    if let Some(error) = &response.error {
        return Outcome::Refused(Refusal::from_error(error, response.continue_));
    }
    if !(200..300).contains(&status) {
        return Outcome::Refused(Refusal::other(format!(
            "the authorization server answered HTTP {status} without an error object"
        )));
    }
    if let Some(tokens) = &response.access_token {
        // One token is asked for; the first one is it.
        if let Some(token) = tokens.as_slice().first() {
            if token.is_bearer() {
                return Outcome::Refused(Refusal::other(
                    "the authorization server issued a bearer token, which this agent did not ask for",
                ));
            }
            return Outcome::Approved {
                issued: Issued::from(token),
                continue_: response.continue_,
            };
        }
    }
    match response.continue_ {
        Some(continue_) => Outcome::Pending(Pending {
            continue_,
            interaction: response.interact.as_ref().map(Interaction::from),
        }),
        None => Outcome::Refused(Refusal::other(
            "the authorization server issued no token and left no way to continue",
        )),
    }
}

/// A rotation response that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("the rotation response is unreadable: {0}")]
pub struct RotationError(serde_json::Error);

/// The token from a rotation response (§6.1: `{"access_token": {…}}`).
pub fn rotated(body: &[u8]) -> Result<Issued, RotationError> {
    #[derive(serde::Deserialize)]
    struct Rotated {
        access_token: AccessToken,
    }
    let rotated: Rotated = serde_json::from_slice(body).map_err(RotationError)?;
    Ok(Issued::from(&rotated.access_token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::httpsig::Algorithm;

    fn outcome(value: Value) -> Outcome {
        interpret(200, &serde_json::to_vec(&value).unwrap())
    }

    #[test]
    fn grant_request_presents_the_key_display_access_and_modes() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let body = grant_request(
            &key,
            "gnapd connect",
            &AccessSpec::Reference("mcp:github".into()),
            &["redirect", "user_code"],
            None,
        );
        assert_eq!(body["access_token"]["access"], json!(["mcp:github"]));
        assert_eq!(body["client"]["key"]["proof"], "httpsig");
        assert_eq!(
            &body["client"]["key"]["jwk"],
            key.verifying_key().public_jwk().unwrap()
        );
        assert!(body["client"]["key"]["jwk"].get("d").is_none());
        assert_eq!(body["client"]["display"]["name"], "gnapd connect");
        assert_eq!(
            body["interact"],
            json!({"start": ["redirect", "user_code"]})
        );
        // It is a request the AS's own parser accepts.
        crate::proto::gnap::parse_grant_request(&serde_json::to_vec(&body).unwrap()).unwrap();
        let none = grant_request(
            &key,
            "x",
            &AccessSpec::Tools {
                upstream: "github".into(),
                tools: vec!["search_issues".into()],
            },
            &[],
            None,
        );
        assert!(none.get("interact").is_none());
        assert_eq!(
            none["access_token"]["access"],
            json!([{"type": "mcp", "identifier": "github", "tools": ["search_issues"]}])
        );
        crate::proto::gnap::parse_grant_request(&serde_json::to_vec(&none).unwrap()).unwrap();
        let finish = grant_request(
            &key,
            "x",
            &AccessSpec::Reference("mcp:github".into()),
            &["redirect"],
            Some(("http://127.0.0.1:9/gnap-finish/abc", "NONCE1")),
        );
        assert_eq!(
            finish["interact"]["finish"],
            json!({"method": "redirect", "uri": "http://127.0.0.1:9/gnap-finish/abc", "nonce": "NONCE1"})
        );
        crate::proto::gnap::parse_grant_request(&serde_json::to_vec(&finish).unwrap()).unwrap();
    }

    #[test]
    fn start_modes_follow_discovery() {
        assert_eq!(start_modes(None), SUPPORTED_START_MODES);
        assert!(start_modes(Some(&[])).is_empty());
        assert_eq!(
            start_modes(Some(&[
                StartMode::UserCode,
                StartMode::App,
                StartMode::Redirect
            ])),
            ["redirect", "user_code"]
        );
    }

    #[test]
    fn upstream_names_from_reference_and_url() {
        assert_eq!(upstream_of_reference("mcp:github"), Some("github"));
        assert_eq!(upstream_of_reference("github"), None);
        assert_eq!(
            upstream_of_url("http://127.0.0.1:8470/mcp/github"),
            Some("github")
        );
        assert_eq!(
            upstream_of_url("https://gw.example/x/mcp/fs/?a=b"),
            Some("fs")
        );
        assert_eq!(upstream_of_url("https://gw.example/mcp/"), None);
    }

    #[test]
    fn interaction_response_redirect_section_3() {
        // RFC 9635 §3, first example (its trailing comma removed).
        let Outcome::Pending(pending) = outcome(json!({
            "interact": {
                "redirect": "https://server.example.com/interact/4CF492MLVMSW9MKMXKHQ",
                "finish": "MBDOFXG4Y5CVJCX821LH"
            },
            "continue": {
                "access_token": {"value": "80UPRY5NM33OMUKMKSKU"},
                "uri": "https://server.example.com/tx"
            }
        })) else {
            panic!("not pending")
        };
        assert_eq!(pending.continue_.wait_seconds(), 5);
        let interaction = pending.interaction.unwrap();
        assert!(interaction.actionable());
        assert_eq!(
            interaction.browser_uri(),
            Some("https://server.example.com/interact/4CF492MLVMSW9MKMXKHQ")
        );
        let text = interaction.instructions("gnapd").join("\n");
        assert!(text.contains("https://server.example.com/interact/4CF492MLVMSW9MKMXKHQ"));
    }

    #[test]
    fn interaction_response_user_code_and_user_code_uri() {
        // RFC 9635 §3.3.3 and §3.3.4 shapes, with a continuation (§3.1).
        let Outcome::Pending(pending) = outcome(json!({
            "interact": {
                "user_code": "A1BC3DFF",
                "user_code_uri": {"code": "A1BC3DFF", "uri": "https://srv.ex/device"},
                "expires_in": 600
            },
            "continue": {
                "access_token": {"value": "80UPRY5NM33OMUKMKSKU"},
                "uri": "https://server.example.com/continue",
                "wait": 30
            }
        })) else {
            panic!("not pending")
        };
        assert_eq!(pending.continue_.wait_seconds(), 30);
        let interaction = pending.interaction.unwrap();
        assert_eq!(interaction.browser_uri(), Some("https://srv.ex/device"));
        let text = interaction.instructions("gnapd").join("\n");
        assert!(text.contains("A1BC3DFF") && text.contains("https://srv.ex/device"));
        assert!(text.contains("600 s"));
        // The object form of `user_code` (a stale draft example) is refused.
        assert!(matches!(
            outcome(
                json!({"interact": {"user_code": {"code": "A1"}}, "continue": {"access_token": {"value": "x"}, "uri": "https://a/c"}})
            ),
            Outcome::Refused(_)
        ));
    }

    #[test]
    fn an_authorization_servers_escape_sequences_reach_the_terminal_escaped() {
        let Outcome::Pending(pending) = outcome(json!({
            "interact": {
                "user_code": "A1B\u{1b}[2K\rC3DF",
                "user_code_uri": {"code": "X\u{9b}1A", "uri": "https://srv.ex/\u{202e}device"},
                "redirect": "https://srv.ex/\u{1b}]0;title\u{7}"
            },
            "continue": {"access_token": {"value": "x"}, "uri": "https://a/c"}
        })) else {
            panic!("not pending")
        };
        let lines = pending.interaction.unwrap().instructions("gnapd");
        for line in &lines {
            assert!(!line.chars().any(crate::proto::text::is_hidden), "{line:?}");
        }
        assert!(lines.iter().any(|l| l.contains("A1B\\u{1b}[2K\\u{d}C3DF")));
    }

    #[test]
    fn interaction_response_without_interaction_is_plain_polling() {
        let Outcome::Pending(pending) = outcome(json!({
            "continue": {"access_token": {"value": "80UPRY5NM33OMUKMKSKU"}, "uri": "https://a/c", "wait": 7}
        })) else {
            panic!("not pending")
        };
        assert!(pending.interaction.is_none());
        assert_eq!(pending.continue_.wait, Some(7));
    }

    #[test]
    fn interaction_denied_and_other_errors_are_clear() {
        let Outcome::Refused(refusal) = interpret(
            400,
            br#"{"error": {"code": "user_denied", "description": "no"}}"#,
        ) else {
            panic!()
        };
        assert_eq!(refusal.code, Some(ErrorCode::UserDenied));
        assert!(refusal.message.contains("denied"), "{}", refusal.message);
        let Outcome::Refused(refusal) = interpret(400, br#"{"error": "request_denied"}"#) else {
            panic!()
        };
        assert_eq!(refusal.code, Some(ErrorCode::RequestDenied));
        for (status, body) in [(500, &b"oops"[..]), (500, b"{}"), (200, b"{}")] {
            assert!(matches!(interpret(status, body), Outcome::Refused(_)));
        }
    }

    #[test]
    fn approved_response_yields_the_token_and_manage() {
        let Outcome::Approved { issued, continue_ } = outcome(json!({
            "access_token": {
                "value": "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0",
                "manage": {"uri": "https://server.example.com/token/PRY5NM33O",
                           "access_token": {"value": "B8CDFONP21-4TB8N6.BW7ONM"}},
                "access": ["mcp:github"],
                "expires_in": 3600
            },
            "continue": {"access_token": {"value": "80UPRY5NM33OMUKMKSKU"}, "uri": "https://a/c"}
        })) else {
            panic!()
        };
        assert_eq!(
            issued.token.expose(),
            "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0"
        );
        assert_eq!(issued.expires_in, Some(3600));
        assert_eq!(issued.access, Some(json!(["mcp:github"])));
        assert!(issued.manage.is_some() && continue_.is_some());
        assert!(matches!(
            outcome(json!({"access_token": {"value": "abc", "flags": ["bearer"]}})),
            Outcome::Refused(_)
        ));
        let rotated = rotated(br#"{"access_token": {"value": "new", "expires_in": 5}}"#).unwrap();
        assert_eq!(rotated.token.expose(), "new");
        assert!(super::rotated(b"{}").is_err());
    }
}
