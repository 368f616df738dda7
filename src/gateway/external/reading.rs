//! An external AS's introspection response (RFC 7662 §2.2), read into the
//! token record the gateway's shared path decides on (sans I/O).
//!
//! [`read`] takes the JSON apart; [`view`] checks it against this gateway
//! and this call: active, from the configured issuer, for this resource
//! (RFC 8707 `aud`), unexpired, with `mcp:` scopes gnapd's grammar reads,
//! and bound to a DPoP key (RFC 9449 §6.2 `cnf.jkt`) or to nothing. The
//! record it makes is an OAuth token record like the OAuth face's own, so
//! rights, step-up and credentials are decided exactly as for those.

use serde_json::Value;

use crate::proto::gnap::AccessRight;
use crate::proto::oauth::scope;
use crate::store::{GrantId, KeyBinding, OAuthToken, RECORD_VERSION, TokenHash, TokenRecord};

/// What an active introspection response says, the members the gateway
/// uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Introspected {
    /// `iss`, when the AS sends it.
    pub(crate) iss: Option<String>,
    /// `aud`: a string or an array of strings, read as a list.
    pub(crate) aud: Vec<String>,
    /// `exp`: required here, so no answer is believed (or cached) forever.
    pub(crate) exp: Option<i64>,
    /// `iat`.
    pub(crate) iat: Option<i64>,
    /// `scope`, space-delimited; empty when absent.
    pub(crate) scope: String,
    /// `client_id`.
    pub(crate) client_id: Option<String>,
    /// `sub`.
    pub(crate) sub: Option<String>,
    /// The token's binding: `None` without `cnf`.
    pub(crate) cnf: Option<Binding>,
}

/// What `cnf` binds the token to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Binding {
    /// `cnf.jkt`: the DPoP key's RFC 7638 thumbprint.
    Dpop(String),
    /// Some other confirmation (a certificate, `x5t#S256`), which the
    /// gateway cannot check: the token is refused.
    Other,
}

/// What the AS answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `"active": true`.
    Active(Box<Introspected>),
    /// `"active": false`: unknown, expired, revoked, or not for this caller.
    Inactive,
}

/// The answer is not an introspection response at all: the AS is not
/// working as configured, which says nothing about the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the introspection response is not a JSON object with a boolean `active`")]
pub(crate) struct Malformed;

/// Why an active answer does not let the token in (for the log; the agent
/// hears `invalid_token` either way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unfit {
    /// Not active.
    #[error("the token is not active")]
    Inactive,
    /// `iss` names another issuer.
    #[error("the token is from another issuer")]
    Issuer,
    /// `aud` does not contain this resource.
    #[error("the token is for another resource")]
    Audience,
    /// No `exp`, or it has passed.
    #[error("the token has no expiry or has expired")]
    Expired,
    /// An `mcp:` scope gnapd's grammar does not read.
    #[error("the token's scope does not read: {0}")]
    Scope(scope::ScopeError),
    /// A binding other than a DPoP key.
    #[error("the token is bound to something other than a DPoP key")]
    Binding,
}

/// Reads an introspection response body.
pub(crate) fn read(body: &[u8]) -> Result<Answer, Malformed> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err(Malformed);
    };
    match map.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Ok(Answer::Inactive),
        _ => return Err(Malformed),
    }
    let text = |name: &str| map.get(name).and_then(Value::as_str).map(str::to_owned);
    let aud = match map.get("aud") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let cnf = match map.get("cnf") {
        None | Some(Value::Null) => None,
        Some(Value::Object(cnf)) => Some(match cnf.get("jkt").and_then(Value::as_str) {
            Some(jkt) if !jkt.is_empty() => Binding::Dpop(jkt.to_owned()),
            _ => Binding::Other,
        }),
        Some(_) => Some(Binding::Other),
    };
    Ok(Answer::Active(Box::new(Introspected {
        iss: text("iss"),
        aud,
        exp: map.get("exp").and_then(Value::as_i64),
        iat: map.get("iat").and_then(Value::as_i64),
        scope: text("scope").unwrap_or_default(),
        client_id: text("client_id"),
        sub: text("sub"),
        cnf,
    })))
}

/// The token record an introspected token stands for at `resource` (the
/// URL called, which gnapd's own OAuth tokens are checked against too),
/// or why it is refused. `token` is the token's value: the record is found
/// by nothing, but carries its hash as the other records do.
pub(crate) fn view(
    answer: &Answer,
    issuer: &str,
    resource: &str,
    token: &str,
    now: i64,
) -> Result<TokenRecord, Unfit> {
    let Answer::Active(token_info) = answer else {
        return Err(Unfit::Inactive);
    };
    let info = token_info.as_ref();
    if info.iss.as_deref().is_some_and(|iss| iss != issuer) {
        return Err(Unfit::Issuer);
    }
    let names = crate::proto::oauth::resource::names;
    if !info.aud.iter().any(|aud| names(aud, resource)) {
        return Err(Unfit::Audience);
    }
    let exp = info.exp.filter(|exp| *exp > now).ok_or(Unfit::Expired)?;
    let jkt = match &info.cnf {
        None => None,
        Some(Binding::Dpop(jkt)) => Some(jkt.clone()),
        Some(Binding::Other) => return Err(Unfit::Binding),
    };
    let access = rights(&info.scope).map_err(Unfit::Scope)?;
    // Sessions of a bearer token belong to its grant: one client's
    // authorization by one person at this issuer, kept across refreshes.
    let who = format!(
        "{issuer}\0{}\0{}",
        info.client_id.as_deref().unwrap_or_default(),
        info.sub.as_deref().unwrap_or_default()
    );
    let grant = match (&info.client_id, &info.sub) {
        (Some(_), Some(_)) => TokenHash::of(&who),
        // Nothing names the grant: the token is its own.
        _ => TokenHash::of(token),
    };
    Ok(TokenRecord {
        v: RECORD_VERSION,
        grant: GrantId(format!(
            "external:{}",
            crate::proto::b64::encode_url(&grant.0)
        )),
        label: None,
        access,
        key: KeyBinding {
            thumbprint: jkt.clone().unwrap_or_default(),
            // The key itself comes with each DPoP proof.
            jwk: Value::Null,
            method: crate::proto::gnap::ProofKind::HttpSig,
        },
        manage: TokenHash::of(token),
        bearer: false,
        issued_at: info.iat.unwrap_or(now),
        expires_at: exp,
        credential_sets: Vec::new(),
        oauth: Some(OAuthToken {
            client_id: info.client_id.clone().unwrap_or_default(),
            audience: resource.to_owned(),
            dpop: jkt.is_some(),
        }),
    })
}

/// The rights the token's `mcp:` scopes give. Other scopes are the
/// external AS's own business (`openid`, another resource's) and give
/// nothing here; an `mcp:` scope gnapd cannot read is refused rather than
/// skipped, since skipping a narrower scope could not grant more but a
/// misread one might.
fn rights(scope_text: &str) -> Result<Vec<AccessRight>, scope::ScopeError> {
    let mcp: Vec<&str> = scope_text
        .split(' ')
        .filter(|s| s.starts_with("mcp:"))
        .collect();
    scope::to_access(&mcp.join(" "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://as.example";
    const RESOURCE: &str = "https://gw.example/mcp/gh";
    const NOW: i64 = 1_000_000;

    fn answer(body: Value) -> Answer {
        read(body.to_string().as_bytes()).unwrap()
    }

    fn active() -> Value {
        json!({
            "active": true,
            "iss": ISSUER,
            "aud": RESOURCE,
            "exp": NOW + 60,
            "iat": NOW - 1,
            "scope": "mcp:gh:tool:echo openid",
            "client_id": "agent",
            "sub": "alice",
        })
    }

    fn with(member: &str, value: Value) -> Answer {
        let mut body = active();
        body[member] = value;
        answer(body)
    }

    fn without(member: &str) -> Answer {
        let mut body = active();
        body.as_object_mut().unwrap().remove(member);
        answer(body)
    }

    fn view_of(answer: &Answer) -> Result<TokenRecord, Unfit> {
        view(answer, ISSUER, RESOURCE, "tok", NOW)
    }

    #[test]
    fn an_active_bearer_token_for_this_resource_becomes_an_oauth_record() {
        let record = view_of(&answer(active())).unwrap();
        let oauth = record.oauth.unwrap();
        assert_eq!(oauth.audience, RESOURCE);
        assert_eq!(oauth.client_id, "agent");
        assert!(!oauth.dpop);
        assert_eq!(record.expires_at, NOW + 60);
        assert_eq!(record.access, scope::to_access("mcp:gh:tool:echo").unwrap());
        assert!(record.grant.0.starts_with("external:"));
        assert!(record.credential_sets.is_empty());
    }

    #[test]
    fn an_inactive_answer_is_refused_and_a_non_answer_is_malformed() {
        assert_eq!(answer(json!({"active": false})), Answer::Inactive);
        assert_eq!(view_of(&Answer::Inactive).unwrap_err(), Unfit::Inactive);
        for body in [
            b"not json".as_slice(),
            b"[]",
            b"{}",
            br#"{"active": "true"}"#,
        ] {
            assert_eq!(read(body), Err(Malformed));
        }
    }

    #[test]
    fn a_token_from_another_issuer_is_refused_and_one_without_iss_is_not() {
        let other = with("iss", json!("https://evil.example"));
        assert_eq!(view_of(&other).unwrap_err(), Unfit::Issuer);
        assert!(view_of(&without("iss")).is_ok());
    }

    #[test]
    fn a_token_for_another_resource_or_none_is_refused() {
        for aud in [json!("https://gw.example/mcp/other"), json!([]), json!(7)] {
            assert_eq!(view_of(&with("aud", aud)).unwrap_err(), Unfit::Audience);
        }
        assert_eq!(view_of(&without("aud")).unwrap_err(), Unfit::Audience);
        // A list that contains this resource is enough.
        let many = with("aud", json!(["https://other.example", RESOURCE]));
        assert!(view_of(&many).is_ok());
        // Written as a client may have sent it (MCP: a trailing slash, the
        // case of scheme and host), it is still this resource.
        let slash = with("aud", json!("HTTPS://GW.example/mcp/gh/"));
        assert!(view_of(&slash).is_ok());
        let longer = with("aud", json!("https://gw.example/mcp/gh2"));
        assert_eq!(view_of(&longer).unwrap_err(), Unfit::Audience);
    }

    #[test]
    fn an_expired_token_or_one_without_exp_is_refused() {
        assert_eq!(
            view_of(&with("exp", json!(NOW))).unwrap_err(),
            Unfit::Expired
        );
        assert_eq!(view_of(&without("exp")).unwrap_err(), Unfit::Expired);
    }

    #[test]
    fn cnf_jkt_makes_a_dpop_token_and_another_confirmation_is_refused() {
        let bound = view_of(&with("cnf", json!({"jkt": "thumb"}))).unwrap();
        assert!(bound.oauth.unwrap().dpop);
        assert_eq!(bound.key.thumbprint, "thumb");
        for cnf in [json!({"x5t#S256": "cert"}), json!({}), json!("jkt")] {
            assert_eq!(view_of(&with("cnf", cnf)).unwrap_err(), Unfit::Binding);
        }
    }

    #[test]
    fn only_mcp_scopes_give_rights_and_a_misread_one_is_refused() {
        let none = view_of(&with("scope", json!("openid read:all"))).unwrap();
        assert!(none.access.is_empty());
        let bad = with("scope", json!("mcp:gh:nonsense:x"));
        assert!(matches!(view_of(&bad).unwrap_err(), Unfit::Scope(_)));
    }

    #[test]
    fn bearer_tokens_of_one_client_and_person_share_a_grant() {
        let a = view_of(&answer(active())).unwrap();
        let b = view(&answer(active()), ISSUER, RESOURCE, "other-token", NOW).unwrap();
        assert_eq!(a.grant, b.grant);
        let other = view_of(&with("sub", json!("bob"))).unwrap();
        assert_ne!(a.grant, other.grant);
    }
}
